# Heatmaps: where the deployed head looks on each slide, from stored tables only (no slide is re-embedded).


rule heatmaps:
    input:
        unpack(heatmap_inputs),
    output:
        directory(PATHS.heatmaps("{task}")),
    params:
        task=lambda wc: TASKS[wc.task],
        head_dir=lambda wc: os.path.dirname(heatmap_inputs(wc)["head"]),
        units=lambda wc: task_units(wc.task),
        slides=lambda wc: {row["slide"]: row for row in sheet_rows(task_slides(wc.task))},
    wildcard_constraints:
        task=name_pattern(HEATMAP_TASKS) if HEATMAP_TASKS else "(?!)",
    log:
        PATHS.log("heatmaps", "{task}"),
    benchmark:
        PATHS.benchmark("heatmaps", "{task}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/heatmaps.py"


# A new slide under `predict:`: its deployed head's tile probabilities, or its abmil attention.
rule predict_heatmaps:
    input:
        unpack(predict_inputs),
        prediction=PATHS.predict("{task}", "{slide}"),
    output:
        directory(PATHS.predict_heatmaps("{task}", "{slide}")),
    params:
        task=lambda wc: TASKS[wc.task],
        layer=lambda wc: predict_deployed(wc.task)["layer"],
        unit=predict_unit,
        slide=lambda wc: sheet_rows([wc.slide])[0],
    wildcard_constraints:
        task=name_pattern(HEATMAP_TASKS) if HEATMAP_TASKS else "(?!)",
    log:
        PATHS.log("heatmaps", "predict", "{task}", "{slide}"),
    benchmark:
        PATHS.benchmark("heatmaps", "predict", "{task}", "{slide}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/predict_heatmaps.py"
