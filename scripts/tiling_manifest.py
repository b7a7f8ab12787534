from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.tiling_manifest(snakemake.params.tiled, list(snakemake.input.tiles), list(snakemake.input.qc), snakemake.output[0])
