from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.tile(
        snakemake.input.slide,
        snakemake.params.mpp,
        snakemake.params.tiling,
        list(snakemake.input.annotations),
        snakemake.output.tiles,
        snakemake.output.qc,
    )
