from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    jobs.predict_heatmaps(
        snakemake.wildcards.task,
        snakemake.params.task,
        dict(snakemake.params.slide),
        snakemake.input.prediction,
        snakemake.input.model,
        snakemake.input.tiles,
        {snakemake.params.unit: snakemake.input.embeddings},
        snakemake.params.layer,
        snakemake.output[0],
    )
