# Backbone selection by proxy task: every backbone x layer of `selection.proxy_task`, scored with a quick fixed
# protocol (kNN and logistic regression on one patient-grouped held-out split) and ranked. A checkpoint, because
# tasks with `backbones: best` only know which heads to train once the ranking exists.


if PROXY_TASK:

    checkpoint select:
        input:
            unpack(selection_inputs),
        output:
            PATHS.selection("{task}"),
        params:
            task=lambda wc: TASKS[wc.task],
            samples=task_samples,
            units=lambda wc: task_units(wc.task),
            embeddings=lambda wc: task_embeddings(wc.task, TASKS[wc.task]["backbones"]),
            candidates=lambda wc: task_candidates(wc.task),
            made_by=lambda wc: made_by(TASKS[wc.task]["tiling"], TASKS[wc.task]["backbones"]),
            metric=METRIC,
            evaluation=config["evaluation"],
        wildcard_constraints:
            task=PROXY_TASK,
        log:
            PATHS.log("select", "{task}"),
        benchmark:
            PATHS.benchmark("select", "{task}")
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../envs/tileprobe.yaml"
        script:
            "../scripts/select.py"
