from tileprobe.embed.provenance import check_stores
from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    check_stores(snakemake.params.embeddings, snakemake.params.made_by)
    jobs.figure_embedding(
        snakemake.wildcards.task,
        snakemake.params.task,
        snakemake.params.samples,
        dict(zip(snakemake.params.units, snakemake.input.tiles)),
        {b: dict(stores) for b, stores in snakemake.params.embeddings.items()},
        [tuple(c) for c in snakemake.params.candidates],
        snakemake.params.evaluation,
        snakemake.output[0],
    )
