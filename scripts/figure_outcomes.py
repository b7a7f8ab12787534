from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.figure_outcomes(
        list(snakemake.input.metrics),
        list(snakemake.input.predictions),
        snakemake.output.scatter,
        snakemake.output.km,
    )
