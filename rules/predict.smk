# Deployment: each task's refit head applied to the new slides of the `predict` sheet, through the same tiling
# and embeddings as the training slides.


rule predict:
    input:
        unpack(predict_inputs),
    output:
        PATHS.predict("{task}", "{slide}"),
    params:
        task=lambda wc: TASKS[wc.task],
        layer=lambda wc: predict_deployed(wc.task)["layer"],
        unit=predict_unit,
        made_by=lambda wc: made_by(TASKS[wc.task]["tiling"], [predict_deployed(wc.task)["backbone"]]),
    log:
        PATHS.log("predict", "{task}", "{slide}"),
    benchmark:
        PATHS.benchmark("predict", "{task}", "{slide}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/predict.py"
