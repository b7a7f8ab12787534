# Small heads on frozen embeddings: patient-grouped cross-validation, then a refit on all labelled data.

# What names one head, as wildcards: its outputs, directory, log and benchmark all take these five.
HEAD_WILDCARDS = ("{task}", "{backbone}", "{layer}", "{augmentation}", "{head}")


rule head:
    input:
        unpack(head_inputs),
    output:
        metrics=PATHS.head_file("metrics", *HEAD_WILDCARDS),
        predictions=PATHS.head_file("predictions", *HEAD_WILDCARDS),
        model=directory(PATHS.head_file("model", *HEAD_WILDCARDS)),
    params:
        out_dir=PATHS.head_dir(*HEAD_WILDCARDS),
        task=lambda wc: TASKS[wc.task],
        samples=task_samples,
        units=lambda wc: task_units(wc.task),
        evaluation=config["evaluation"],
        augmentation=lambda wc: AUGMENT_SPECS.get(wc.augmentation),
        # What the stores must have been made with: a shared results dir may hold another config's stores.
        made_by=lambda wc: made_by(TASKS[wc.task]["tiling"], [wc.backbone]),
    wildcard_constraints:
        head=r"(?!finetune_)[A-Za-z0-9_-]+",  # fine-tuned networks come from rule finetune
    log:
        PATHS.log("head", *HEAD_WILDCARDS),
    benchmark:
        PATHS.benchmark("head", *HEAD_WILDCARDS)
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/head.py"
