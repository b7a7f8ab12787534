# One table over tasks x backbones x layers x augmentations x heads.


rule report:
    input:
        metrics=head_outputs("metrics"),
    output:
        parquet=SUMMARY[0],
        markdown=SUMMARY[1],
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/report.py"
