"""tileprobe: embed biomedical images once with a pretrained backbone, then train many small heads on the features.

    snakemake --profile profiles/local                          # the built-in demo (config/config.yaml)
    snakemake --profile profiles/local --configfile my.yaml     # your own slides and tasks

Data flow: samples sheet -> manifest -> tiles -> embeddings -> heads -> report. See README.md and docs/.
"""

from snakemake.utils import min_version

min_version("9.0")


# Snakemake deep-merges a `configfile:` directive with --configfile, which would graft the demo's tasks onto a
# user's config; so the demo config is only the fallback when no config file is given (--config still applies on
# top of it), and a given config file must be complete on its own.
if workflow.overwrite_configfiles:
    from tileprobe.config.check import check_given_config

    check_given_config(config, workflow.overwrite_configfiles)
else:
    from snakemake.utils import update_config
    import yaml

    with open(workflow.source_path("config/config.yaml")) as demo_config:
        _given = config.copy()
        config.clear()
        config.update(yaml.safe_load(demo_config))
        update_config(config, _given)


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/results.smk"
include: "rules/demo.smk"
include: "rules/tiling.smk"
include: "rules/embed.smk"
include: "rules/augment.smk"
include: "rules/heads.smk"
include: "rules/finetune.smk"
include: "rules/heatmaps.smk"
include: "rules/predict.smk"
include: "rules/select.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        MANIFEST,
        TILING_MANIFEST,
        qc_pictures(),
        head_outputs("metrics", FIXED_TASKS),
        # A function: heads of `backbones: best` tasks are known only after checkpoint `select`.
        lambda wc: head_outputs("metrics", BEST_TASKS),
        SUMMARY,
        report_figures(),
        [PATHS.heatmaps(task) for task in HEATMAP_TASKS],
        predict_outputs(),
        lambda wc: predict_heatmap_outputs(),
