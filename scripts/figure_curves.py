from tileprobe import jobs
from tileprobe.runner import job

with job(snakemake):
    jobs.figure_curves(
        list(snakemake.input.metrics),
        list(snakemake.input.predictions),
        snakemake.params.metric,
        snakemake.output.curves,
        snakemake.output.confusion,
    )
