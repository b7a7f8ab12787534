from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.heatmaps(
        snakemake.wildcards.task,
        snakemake.params.task,
        snakemake.params.head_dir,
        dict(zip(snakemake.params.units, snakemake.input.tiles, strict=True)),
        dict(snakemake.params.slides),
        snakemake.output[0],
    )
