# Fine-tuning: the task's backbone trained on its tiles' (or images') pixels, with the heads' folds and outputs,
# so the report sets it beside them. A GPU job on SLURM (profiles/slurm); on a CPU it runs, slowly.

FINETUNE_WILDCARDS = ("{task}", "{backbone}", FINETUNED_LAYER, tp_augment.NONE, FINETUNE_HEAD)


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        metrics=PATHS.head_file("metrics", *FINETUNE_WILDCARDS),
        predictions=PATHS.head_file("predictions", *FINETUNE_WILDCARDS),
        model=directory(PATHS.head_file("model", *FINETUNE_WILDCARDS)),
    params:
        out_dir=PATHS.head_dir(*FINETUNE_WILDCARDS),
        task=lambda wc: TASKS[wc.task],
        samples=lambda wc: sheet_rows(task_slides(wc.task)),
        labels=task_samples,
        units=lambda wc: task_units(wc.task),
        backbone_spec=lambda wc: BACKBONES[wc.backbone],
        tiling=lambda wc: TILINGS[TASKS[wc.task]["tiling"]],
        evaluation=config["evaluation"],
        settings=config["finetune"],
        made_by=lambda wc: made_by(TASKS[wc.task]["tiling"], [wc.backbone]),
    wildcard_constraints:
        variant="partial|full|scratch",
    log:
        PATHS.log("finetune", "{task}", "{backbone}", "{variant}"),
    benchmark:
        PATHS.benchmark("finetune", "{task}", "{backbone}", "{variant}")
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/finetune.py"
