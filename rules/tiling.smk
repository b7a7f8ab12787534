# Manifest (the checked sheet); tissue-only tiling with a QC picture per slide, or, for an image collection
# (`mode: whole`), one job per shard of images: a shard table (one row per image) and a contact sheet.
# QC pictures are not flagged for the report (about 1 MB each, they made it grow by that much per slide): they
# stay under results/qc/{tiling}/, and the report shows the bounded thumbnail gallery of rule figure_qc.


rule manifest:
    input:
        SAMPLE_SHEET,
    output:
        MANIFEST,
    params:
        tasks=TASKS,
    log:
        PATHS.log("manifest"),
    benchmark:
        PATHS.benchmark("manifest")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/manifest.py"


rule tile:
    input:
        slide=slide_path,
        annotations=slide_annotations,
    output:
        tiles=PATHS.tiles("{tiling}", "{slide}"),
        qc=PATHS.qc("{tiling}", "{slide}"),
    params:
        tiling=lambda wc: TILINGS[wc.tiling],
        mpp=slide_mpp,
    wildcard_constraints:
        tiling=name_pattern(GRID),
    log:
        PATHS.log("tile", "{tiling}", "{slide}"),
    benchmark:
        PATHS.benchmark("tile", "{tiling}", "{slide}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/tile.py"


# Every image of a shard read once: its size, or its error (an unreadable image is flagged, not fatal).
rule tile_shard:
    input:
        # Orders the job after whatever makes the sheet (rule demo_data makes the demo's images with it);
        # ancient: editing the sheet reruns only the shards whose members change (params), not every shard.
        sheet=ancient(SAMPLE_SHEET),
    output:
        tiles=PATHS.tiles("{tiling}", "{shard}"),
        qc=PATHS.qc("{tiling}", "{shard}"),
    # The images are params, not inputs: a shard reruns when its members change (params are a rerun trigger),
    # and a dry run of 100,000 images does not stat each one (that alone took most of a minute). A missing or
    # damaged image is the job's to flag, not the DAG's to refuse. An image edited in place keeps its shard:
    # force its table (README).
    params:
        images=shard_images,
        tiling=lambda wc: TILINGS[wc.tiling],
    wildcard_constraints:
        tiling=SHARDED_TILINGS,
    log:
        PATHS.log("tile", "{tiling}", "{shard}"),
    benchmark:
        PATHS.benchmark("tile", "{tiling}", "{shard}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/tile_shard.py"


# After tiling: every slide's tile count, resolution and flags (no_tiles), read back from the tile tables.
rule tiling_manifest:
    input:
        tiles=lambda wc: tile_tables(),
        qc=lambda wc: qc_pictures(),
    output:
        TILING_MANIFEST,
    params:
        tiled=lambda wc: tiled_units(),
    log:
        PATHS.log("tiling_manifest"),
    benchmark:
        PATHS.benchmark("tiling_manifest")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/tiling_manifest.py"
