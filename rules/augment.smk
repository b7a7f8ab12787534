# Per-tile feature-space augmentation (`views`, `dropout`), precomputed once per tiling x backbone with Dask,
# chunk by chunk over the embedding stores. In-fold augmentations (mixup, ...) need no rule: the head runs them.


rule augment:
    input:
        embeddings=augment_inputs,
    output:
        directory(f"{RESULTS}/augmented/{{tiling}}/{{backbone}}/{{augmentation}}.zarr"),
    params:
        slides=augment_slides,
        spec=lambda wc: AUGMENT_SPECS[wc.augmentation],
        layers=lambda wc: BACKBONES[wc.backbone]["layers"],
        dask={"log_directory": f"{RESULTS}/logs/dask", **config.get("dask", {})},
    log:
        f"{RESULTS}/logs/augment/{{tiling}}/{{backbone}}/{{augmentation}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/augment/{{tiling}}/{{backbone}}/{{augmentation}}.tsv"
    # Threaded or local Dask uses `dask.workers` cores here; a SLURM or remote cluster brings its own.
    threads: config.get("dask", {}).get("workers", 2)
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/augment.py"
