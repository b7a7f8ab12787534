from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.tile_shard(
        snakemake.params.images,
        snakemake.wildcards.shard,
        snakemake.params.tiling,
        snakemake.output.tiles,
        snakemake.output.qc,
    )
