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
