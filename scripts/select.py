from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.select(
        snakemake.wildcards.task,
        snakemake.params.task,
        snakemake.params.samples,
        list(snakemake.input.tiles),
        dict(snakemake.params.embeddings),
        [tuple(c) for c in snakemake.params.candidates],
        snakemake.params.metric,
        snakemake.params.evaluation,
        snakemake.output[0],
    )
