import pandas as pd

from tileprobe.report.plots.gallery import qc_gallery
from tileprobe.workflow.runner import job

with job(snakemake):
    qc_gallery(list(snakemake.input.qc), snakemake.output[0], pd.read_parquet(snakemake.input.manifest))
