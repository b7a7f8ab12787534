from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.figure_heatmaps(snakemake.wildcards.task, snakemake.input[0], snakemake.output[0])
