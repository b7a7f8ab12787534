# The one expensive pass: a frozen backbone over every tile of a slide, streamed into a Zarr store.
# Keyed by tiling and backbone only, so every task that shares them reuses the store.


rule embed:
    input:
        slide=slide_path,
        tiles=f"{RESULTS}/tiles/{{tiling}}/{{slide}}.parquet",
    output:
        directory(f"{RESULTS}/embeddings/{{tiling}}/{{backbone}}/{{slide}}.zarr"),
    params:
        backbone=lambda wc: BACKBONES[wc.backbone],
        tiling=lambda wc: TILINGS[wc.tiling],
        mpp=slide_mpp,
        # View 0 is the tile itself; views 1.. are seeded image-space augmentations, embedded in the same pass.
        views=config.get("views", 1),
    log:
        f"{RESULTS}/logs/embed/{{tiling}}/{{backbone}}/{{slide}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{tiling}}/{{backbone}}/{{slide}}.tsv"
    # On a cluster, group components let many slides share one GPU job (see profiles/slurm).
    group:
        "embed"
    threads: embed_threads
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/embed.py"
