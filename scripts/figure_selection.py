from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.figure_selection(
        snakemake.input.selection,
        snakemake.input.summary,
        snakemake.params.metric,
        snakemake.output.agreement,
        snakemake.output.figure,
    )
