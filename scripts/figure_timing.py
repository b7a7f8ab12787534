from tileprobe.report.plots.timing import timing
from tileprobe.workflow.runner import job

with job(snakemake):
    timing(snakemake.params.benchmarks, snakemake.output[0])
