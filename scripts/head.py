from tileprobe.embed.provenance import check_stores
from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    check_stores({snakemake.wildcards.backbone: snakemake.input.embeddings}, snakemake.params.made_by)
    jobs.head(
        snakemake.wildcards.task,
        snakemake.params.task,
        snakemake.params.samples,
        dict(zip(snakemake.params.units, snakemake.input.tiles, strict=True)),
        dict(zip(snakemake.params.units, snakemake.input.embeddings, strict=True)),
        snakemake.wildcards.backbone,
        snakemake.wildcards.layer,
        snakemake.wildcards.augmentation,
        snakemake.wildcards.head,
        snakemake.params.evaluation,
        snakemake.params.out_dir,
        augmentation_spec=snakemake.params.augmentation,
        augmented=snakemake.input.get("augmented"),
    )
