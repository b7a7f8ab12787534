from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.manifest(snakemake.input[0], snakemake.params.tasks, snakemake.output[0])
