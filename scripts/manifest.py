from tileprobe import jobs
from tileprobe.runner import job

with job(snakemake):
    jobs.manifest(snakemake.input[0], snakemake.params.tasks, snakemake.output[0])
