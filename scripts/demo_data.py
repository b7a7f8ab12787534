from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.demo_data(snakemake.output.sheet, snakemake.params.demo)
