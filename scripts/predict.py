from tileprobe.embed.provenance import check_stores
from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    check_stores({b: [snakemake.input.embeddings] for b in snakemake.params.made_by["backbones"]},
                 snakemake.params.made_by)
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
