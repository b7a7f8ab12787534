from tileprobe import jobs
from tileprobe.runner import job

with job(snakemake):
    jobs.demo_data(snakemake.output.sheet, snakemake.params.demo)
