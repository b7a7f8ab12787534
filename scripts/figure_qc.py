from tileprobe.plots.gallery import qc_gallery
from tileprobe.runner import job

with job(snakemake):
    qc_gallery(list(snakemake.input), snakemake.output[0])
