from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.figure_scores(
        snakemake.input.summary,
        dict(snakemake.params.layers),
        snakemake.params.metric,
        snakemake.output.bars,
        snakemake.output.depth,
        dict(zip(snakemake.params.tasks, snakemake.output.tradeoff, strict=True)),
    )
