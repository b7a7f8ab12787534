# Manifest (the checked sheet) and tissue-only tiling with a QC picture per slide.


rule manifest:
    input:
        SAMPLE_SHEET,
    output:
        MANIFEST,
    params:
        tasks=TASKS,
    log:
        f"{RESULTS}/logs/manifest.log",
    benchmark:
        f"{RESULTS}/benchmarks/manifest.tsv"
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
        tiles=f"{RESULTS}/tiles/{{tiling}}/{{slide}}.parquet",
        qc=report(
            f"{RESULTS}/qc/{{tiling}}/{{slide}}.png",
            caption="../report/qc.rst",
            category="5. Quality control",
            subcategory="{tiling}",
            labels={"tiling": "{tiling}", "slide": "{slide}"},
        ),
    params:
        tiling=lambda wc: TILINGS[wc.tiling],
        mpp=slide_mpp,
    log:
        f"{RESULTS}/logs/tile/{{tiling}}/{{slide}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tile/{{tiling}}/{{slide}}.tsv"
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
        tiles=lambda wc: [f"{RESULTS}/tiles/{t}/{s}.parquet" for t, s in tiled_slides()],
        qc=lambda wc: qc_pictures(),
    output:
        TILING_MANIFEST,
    log:
        f"{RESULTS}/logs/tiling_manifest.log",
    benchmark:
        f"{RESULTS}/benchmarks/tiling_manifest.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/tiling_manifest.py"
