from tileprobe import jobs
from tileprobe.runner import job

with job(snakemake):
    jobs.figure_scores(
        snakemake.input.summary,
        dict(snakemake.params.layers),
        snakemake.params.metric,
        snakemake.output.bars,
        snakemake.output.depth,
    )
