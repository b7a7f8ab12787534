from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.embed_shard(
        snakemake.input.tiles,
        snakemake.wildcards.tiling,
        snakemake.params.tiling,
        snakemake.params.backbone,
        snakemake.output[0],
        snakemake.threads,
        views=snakemake.params.views,
    )
