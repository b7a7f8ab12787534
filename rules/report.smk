# The report: one summary table over tasks x backbones x layers x augmentations x heads, and figures under
# results/report/figures/. `snakemake --report results/report/report.html` packs them, with the captions in
# report/, into one self-contained HTML file.


rule report:
    input:
        metrics=lambda wc: head_outputs("metrics"),
        slides=TILING_MANIFEST,
    output:
        parquet=SUMMARY[0],
        markdown=SUMMARY[1],
        html=report(SUMMARY[2], caption="../report/summary.rst", category="1. Summary"),
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


rule figure_scores:
    input:
        summary=SUMMARY[0],
    output:
        bars=figure("metric_bars", "metric_bars", "2. Scores"),
        depth=figure("layer_depth", "layer_depth", "2. Scores"),
    params:
        layers={name: spec["layers"] for name, spec in BACKBONES.items()},
        metric=METRIC,
    log:
        f"{RESULTS}/logs/figures/scores.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/scores.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_scores.py"


rule figure_curves:
    input:
        metrics=lambda wc: head_outputs("metrics"),
        predictions=lambda wc: head_outputs("predictions"),
    output:
        curves=figure("roc_pr", "roc_pr", "3. Predictions"),
        confusion=figure("confusion", "confusion", "3. Predictions"),
    params:
        metric=METRIC,
    log:
        f"{RESULTS}/logs/figures/curves.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/curves.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_curves.py"


rule figure_embedding:
    input:
        unpack(embedding_inputs),
    output:
        figure("embedding_{task}", "embedding", "4. Embeddings", task="{task}"),
    params:
        task=lambda wc: TASKS[wc.task],
        samples=task_samples,
        embeddings=lambda wc: task_embeddings(wc.task, candidate_backbones(wc.task)),
        candidates=lambda wc: task_candidates(wc.task),
        evaluation=config["evaluation"],
    log:
        f"{RESULTS}/logs/figures/embedding_{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/embedding_{{task}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_embedding.py"


rule figure_qc:
    input:
        qc_pictures(),
    output:
        figure("qc_gallery", "qc_gallery", "5. Quality control"),
    log:
        f"{RESULTS}/logs/figures/qc_gallery.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/qc_gallery.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_qc.py"


if PROXY_TASK:

    rule figure_selection:
        input:
            selection=f"{RESULTS}/selection/{PROXY_TASK}.parquet",
            summary=SUMMARY[0],
        output:
            agreement=f"{RESULTS}/report/selection_agreement.parquet",
            figure=figure("selection", "selection", "6. Backbone selection"),
        params:
            metric=METRIC,
        log:
            f"{RESULTS}/logs/figures/selection.log",
        benchmark:
            f"{RESULTS}/benchmarks/figures/selection.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../envs/tileprobe.yaml"
        script:
            "../scripts/figure_selection.py"


rule figure_timing:
    # Runs last: its inputs are every other report output, so their benchmark files exist when it reads them.
    input:
        SUMMARY,
        report_figures(exclude=["timing"]),
    output:
        figure("timing", "timing", "7. Time per stage"),
    params:
        benchmarks=f"{RESULTS}/benchmarks",
    log:
        f"{RESULTS}/logs/figures/timing.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/timing.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_timing.py"
