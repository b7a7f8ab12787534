from tileprobe.embed.provenance import check_stores
from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

with job(snakemake):
    check_stores({snakemake.wildcards.backbone: snakemake.input.embeddings}, snakemake.params.made_by)
    jobs.finetune(
        snakemake.wildcards.task,
        snakemake.params.task,
        snakemake.params.labels,
        snakemake.params.samples,
        dict(zip(snakemake.params.units, snakemake.input.tiles, strict=True)),
        dict(zip(snakemake.params.units, snakemake.input.embeddings, strict=True)),
        snakemake.wildcards.backbone,
        snakemake.params.backbone_spec,
        snakemake.params.tiling,
        snakemake.wildcards.variant,
        snakemake.params.evaluation,
        snakemake.params.settings,
        snakemake.params.out_dir,
        threads=snakemake.threads,
    )
