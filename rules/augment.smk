# Per-tile feature-space augmentation (`views`, `dropout`), precomputed once per tiling x backbone with Dask,
# chunk by chunk over the embedding stores. In-fold augmentations (mixup, ...) need no rule: the head runs them.


rule augment:
    input:
        embeddings=augment_inputs,
    output:
        directory(PATHS.augmented("{tiling}", "{backbone}", "{augmentation}")),
    params:
        units=augment_units,
        spec=lambda wc: AUGMENT_SPECS[wc.augmentation],
        layers=lambda wc: BACKBONES[wc.backbone]["layers"],
        made_by=lambda wc: made_by(wc.tiling, [wc.backbone]),
        dask={"log_directory": PATHS.dask_logs(), **config["dask"]},
    log:
        PATHS.log("augment", "{tiling}", "{backbone}", "{augmentation}"),
    benchmark:
        PATHS.benchmark("augment", "{tiling}", "{backbone}", "{augmentation}")
    # Threaded or local Dask uses `dask.workers` cores here; a SLURM or remote cluster brings its own.
    threads: config["dask"]["workers"]
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/augment.py"
