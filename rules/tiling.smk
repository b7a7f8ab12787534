# Manifest (the checked sheet) and tissue-only tiling with a QC picture per slide.


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
        qc=report(
            PATHS.qc("{tiling}", "{slide}"),
            caption="../report/qc.rst",
            category="5. Quality control",
            subcategory="{tiling}",
            labels={"tiling": "{tiling}", "slide": "{slide}"},
        ),
    params:
        tiling=lambda wc: TILINGS[wc.tiling],
        mpp=slide_mpp,
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


# After tiling: every slide's tile count, resolution and flags (no_tiles), read back from the tile tables.
rule tiling_manifest:
    input:
        tiles=lambda wc: tile_tables(),
        qc=lambda wc: qc_pictures(),
    output:
        TILING_MANIFEST,
    params:
        tiled=lambda wc: tiled_slides(),
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
