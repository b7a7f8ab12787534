# The one expensive pass: a frozen backbone over every tile of a slide, streamed into a Zarr store.
# Keyed by tiling and backbone only, so every task that shares them reuses the store.
# Whole-slide images (`mode: grid`): a tiling's `slides_per_job` picks one job per slide (rule embed, the local
# default) or one job per batch of slides with the model loaded once (rule embed_batch, the SLURM profile's).
# Image collections (`mode: whole`): one job and one store per shard of images (rule embed_shard).


rule embed:
    input:
        slide=slide_path,
        tiles=PATHS.tiles("{tiling}", "{slide}"),
    output:
        directory(PATHS.embeddings("{tiling}", "{backbone}", "{slide}")),
    params:
        backbone=lambda wc: BACKBONES[wc.backbone],
        tiling=lambda wc: TILINGS[wc.tiling],
        mpp=slide_mpp,
        # View 0 is the tile itself; views 1.. are seeded image-space augmentations, embedded in the same pass.
        views=config["views"],
    log:
        PATHS.log("embed", "{tiling}", "{backbone}", "{slide}"),
    benchmark:
        PATHS.benchmark("embed", "{tiling}", "{backbone}", "{slide}")
    wildcard_constraints:
        tiling=SINGLE_TILINGS,
    # On a cluster, group components let many slides share one GPU job (see profiles/slurm).
    group:
        "embed"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/embed.py"


# Many slides, one model load: the stores land in a temporary batch folder, and rule embed_from_batch moves each
# into its usual place, so everything downstream sees one store per slide whichever way it was made.
rule embed_batch:
    input:
        slides=lambda wc: [s["path"] for s in batch_slides(wc)],
        tiles=lambda wc: [s["tiles"] for s in batch_slides(wc)],
    output:
        temp(directory(PATHS.embedding_batch("{tiling}", "{backbone}", "{batch}"))),
    params:
        slides=batch_slides,
        backbone=lambda wc: BACKBONES[wc.backbone],
        tiling=lambda wc: TILINGS[wc.tiling],
        views=config["views"],
    log:
        PATHS.log("embed_batch", "{tiling}", "{backbone}", "{batch}"),
    benchmark:
        PATHS.benchmark("embed", "{tiling}", "{backbone}", "batch-{batch}")
    wildcard_constraints:
        tiling=BATCHED_TILINGS,
        batch="(predict-)?[0-9]+",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/embed_batch.py"


# A rename, not a copy: atomic, instant, and a slide that failed in its batch fails here with the batch's message.
rule embed_from_batch:
    input:
        batch_of,
    output:
        directory(PATHS.embeddings("{tiling}", "{backbone}", "{slide}")),
    log:
        PATHS.log("embed", "{tiling}", "{backbone}", "{slide}"),
    wildcard_constraints:
        tiling=BATCHED_TILINGS,
    localrule: True
    threads: 1
    conda:
        "../envs/tileprobe.yaml"
    shell:
        "if [ -d {input:q}/{wildcards.slide}.zarr ]; then mv {input:q}/{wildcards.slide}.zarr {output:q} "
        "&& echo moved from {input:q} > {log:q}; "
        "else echo 'embedding {wildcards.slide} failed in its batch:' "
        "$(cat {input:q}/{wildcards.slide}.error 2>/dev/null || echo 'no store, no message: see the batch log')"
        " | tee {log:q} >&2; exit 1; fi"


# A shard of images, one model load, one store: rows are the shard's readable images, its ids the `image` coord.
rule embed_shard:
    input:
        # Not the images themselves: the tile table depends on them already, and listing every image again
        # per backbone doubled the files a dry run of a large collection has to check.
        tiles=PATHS.tiles("{tiling}", "{shard}"),
    output:
        directory(PATHS.embeddings("{tiling}", "{backbone}", "{shard}")),
    params:
        backbone=lambda wc: BACKBONES[wc.backbone],
        tiling=lambda wc: TILINGS[wc.tiling],
        views=config["views"],
    wildcard_constraints:
        tiling=SHARDED_TILINGS,
    log:
        PATHS.log("embed", "{tiling}", "{backbone}", "{shard}"),
    benchmark:
        PATHS.benchmark("embed", "{tiling}", "{backbone}", "{shard}")
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/embed_shard.py"
