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
        qc=f"{RESULTS}/qc/{{tiling}}/{{slide}}.png",
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
