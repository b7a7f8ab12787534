from tileprobe.embed.provenance import check_stores
from tileprobe.workflow import jobs
from tileprobe.workflow.runner import job

# A LocalCluster starts its workers by re-importing this file: only the parent may do the work.
if __name__ == "__main__":
    with job(snakemake):
        check_stores({snakemake.wildcards.backbone: snakemake.input.embeddings}, snakemake.params.made_by)
        jobs.augment(
            snakemake.wildcards.augmentation,
            snakemake.params.spec,
            dict(zip(snakemake.params.units, snakemake.input.embeddings)),
            list(snakemake.params.layers),
            snakemake.params.dask,
            snakemake.output[0],
        )
