from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.figure_scores(
        snakemake.input.summary,
        dict(snakemake.params.layers),
        snakemake.params.metric,
        snakemake.output.bars,
        snakemake.output.depth,
        snakemake.output.tradeoff,
    )
