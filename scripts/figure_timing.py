from tileprobe.plots.timing import timing
from tileprobe.runner import job

with job(snakemake):
    timing(snakemake.params.benchmarks, snakemake.output[0])
