from tileprobe import jobs
from tileprobe.runner import job

with job(snakemake):
    jobs.report(
        list(snakemake.input.metrics),
        snakemake.input.slides,
        snakemake.output.parquet,
        snakemake.output.markdown,
        snakemake.output.html,
    )
