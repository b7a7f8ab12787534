from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.figure_curves(
        list(snakemake.input.metrics),
        list(snakemake.input.predictions),
        snakemake.params.metric,
        snakemake.output.curves,
        snakemake.output.confusion,
        snakemake.output.reliability,
    )
