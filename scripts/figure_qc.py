from tileprobe.report.plots.gallery import qc_gallery
from tileprobe.workflow.runner import job

with job(snakemake):
    qc_gallery(list(snakemake.input), snakemake.output[0])
