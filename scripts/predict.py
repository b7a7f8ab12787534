from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.predict(
        snakemake.wildcards.task,
        snakemake.params.task,
        snakemake.wildcards.slide,
        snakemake.input.model,
        snakemake.input.tiles,
        {snakemake.params.unit: snakemake.input.embeddings},
        snakemake.params.layer,
        snakemake.output[0],
    )
