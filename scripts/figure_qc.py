from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.figure_qc(list(snakemake.input.qc), snakemake.input.manifest, snakemake.output[0])
