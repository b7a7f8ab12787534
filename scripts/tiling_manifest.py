from tileprobe import jobs
from tileprobe.runner import job

with job(snakemake):
    jobs.tiling_manifest(list(snakemake.input.tiles), list(snakemake.input.qc), snakemake.output[0])
