from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.report(
        list(snakemake.input.metrics),
        snakemake.input.slides,
        snakemake.output.parquet,
        snakemake.output.markdown,
        snakemake.output.html,
        snakemake.params.metric,
    )
