# Small heads on frozen embeddings: patient-grouped cross-validation, then a refit on all labelled data.


rule head:
    input:
        unpack(head_inputs),
    output:
        metrics=f"{RESULTS}/heads/{{task}}/{{backbone}}/{{layer}}/{{augmentation}}/{{head}}/metrics.json",
        predictions=f"{RESULTS}/heads/{{task}}/{{backbone}}/{{layer}}/{{augmentation}}/{{head}}/predictions.parquet",
        model=directory(f"{RESULTS}/heads/{{task}}/{{backbone}}/{{layer}}/{{augmentation}}/{{head}}/model"),
    params:
        task=lambda wc: TASKS[wc.task],
        samples=task_samples,
        evaluation=config["evaluation"],
        augmentation=lambda wc: AUGMENT_SPECS.get(wc.augmentation),
        # What the stores must have been made with: a shared results dir may hold another config's stores.
        made_by=lambda wc: {
            "backbone": wc.backbone,
            "backbone_spec": BACKBONES[wc.backbone],
            "tiling": TASKS[wc.task]["tiling"],
            "tiling_spec": TILINGS[TASKS[wc.task]["tiling"]],
        },
    log:
        f"{RESULTS}/logs/head/{{task}}/{{backbone}}/{{layer}}/{{augmentation}}/{{head}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/head/{{task}}/{{backbone}}/{{layer}}/{{augmentation}}/{{head}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/tileprobe.yaml"
    script:
        "../scripts/head.py"
