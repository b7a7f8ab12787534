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
    params:
        metric=METRIC,
    log:
        PATHS.log("report"),
    benchmark:
        PATHS.benchmark("report")
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
        # one figure per task: score against training time, heads and fine-tuned networks
        tradeoff=[figure(f"tradeoff_{task}", "tradeoff", "2. Scores", task=task) for task in TASKS],
    params:
        layers={name: spec["layers"] for name, spec in BACKBONES.items()},
        metric=METRIC,
        tasks=list(TASKS),
    log:
        PATHS.log("figures", "scores"),
    benchmark:
        PATHS.benchmark("figures", "scores")
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
        reliability=figure("reliability", "reliability", "3. Predictions"),
    params:
        metric=METRIC,
    log:
        PATHS.log("figures", "curves"),
    benchmark:
        PATHS.benchmark("figures", "curves")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_curves.py"


rule figure_outcomes:
    # Regression and survival heads: predicted against true values, Kaplan-Meier curves of the risk halves. Each
    # figure says so when no task is of its kind, so the report always has both.
    input:
        metrics=lambda wc: head_outputs("metrics"),
        predictions=lambda wc: head_outputs("predictions"),
    output:
        scatter=figure("predicted_vs_true", "predicted_vs_true", "3. Predictions"),
        km=figure("kaplan_meier", "kaplan_meier", "3. Predictions"),
    log:
        PATHS.log("figures", "outcomes"),
    benchmark:
        PATHS.benchmark("figures", "outcomes")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_outcomes.py"


rule figure_embedding:
    input:
        unpack(embedding_inputs),
    output:
        figure("embedding_{task}", "embedding", "4. Embeddings", task="{task}"),
    params:
        task=lambda wc: TASKS[wc.task],
        samples=task_samples,
        units=lambda wc: task_units(wc.task),
        embeddings=lambda wc: task_embeddings(wc.task, candidate_backbones(wc.task)),
        candidates=lambda wc: task_candidates(wc.task),
        made_by=lambda wc: made_by(TASKS[wc.task]["tiling"], candidate_backbones(wc.task)),
        evaluation=config["evaluation"],
    log:
        PATHS.log("figures", "embedding_{task}"),
    benchmark:
        PATHS.benchmark("figures", "embedding_{task}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_embedding.py"


rule figure_qc:
    # At most 48 JPEG thumbnails, every flagged slide (from the tiling manifest) among them: the report's only
    # QC picture, so it stays light however many slides there are.
    input:
        qc=qc_pictures(),
        manifest=TILING_MANIFEST,
    output:
        report(
            PATHS.figure("qc_gallery", "jpg"),
            caption="../report/qc_gallery.rst",
            category="5. Quality control",
        ),
    log:
        PATHS.log("figures", "qc_gallery"),
    benchmark:
        PATHS.benchmark("figures", "qc_gallery")
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
            selection=PATHS.selection(PROXY_TASK),
            summary=SUMMARY[0],
        output:
            agreement=PATHS.selection_agreement(),
            figure=figure("selection", "selection", "6. Backbone selection"),
        params:
            metric=METRIC,
        log:
            PATHS.log("figures", "selection"),
        benchmark:
            PATHS.benchmark("figures", "selection")
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
        benchmarks=PATHS.benchmark_dir(),
    log:
        PATHS.log("figures", "timing"),
    benchmark:
        PATHS.benchmark("figures", "timing")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_timing.py"


rule figure_heatmaps:
    # The report shows a task's heatmaps as one JPEG of thumbnails (at most 48); the full-size maps stay files.
    input:
        PATHS.heatmaps("{task}"),
    output:
        report(
            PATHS.figure("heatmaps_{task}", "jpg"),
            caption="../report/heatmaps.rst",
            category="3. Predictions",
            labels={"task": "{task}"},
        ),
    wildcard_constraints:
        task=name_pattern(HEATMAP_TASKS) if HEATMAP_TASKS else "(?!)",
    log:
        PATHS.log("figures", "heatmaps_{task}"),
    benchmark:
        PATHS.benchmark("figures", "heatmaps_{task}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/figure_heatmaps.py"
