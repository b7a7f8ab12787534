# Config and sample-sheet checks (before any job runs), wildcard constraints and input functions.

import functools
import os
import re

import pandas as pd

from tileprobe.demo import synthetic as tp_demo
from tileprobe.embed.checksum import cached_sha256
from tileprobe.config.check import check_config
from tileprobe.learn.data import check_folds, label_columns, samples_for_task, sheet_targets
from tileprobe.learn.heads.registry import head_names
from tileprobe.config.samples import check_sheet, read_samples
from tileprobe.learn import select as tp_select
from tileprobe import augment as tp_augment
from tileprobe.learn import predict as tp_predict
from tileprobe.tiling import shards as tp_shards
from tileprobe.workflow.paths import SUMMARY_FORMATS, ResultPaths


# Checked once against the schema, which also fills every default (one line per problem, naming the key).
check_config(config, known_heads=head_names())
tp_select.check_selection(config)


# Every result path comes from PATHS (tileprobe/workflow/paths.py): called with "{wildcard}"s in rules, values here.
PATHS = ResultPaths(config["results"])
MANIFEST = PATHS.manifest()
TILING_MANIFEST = PATHS.tiling_manifest()
SUMMARY = [PATHS.summary(fmt) for fmt in SUMMARY_FORMATS]
TILINGS = config["tilings"]
BACKBONES = config["backbones"]
TASKS = config["tasks"]
# Each configured augmentation is its own head row beside `none` (names and parameters checked here).
AUGMENT_SPECS = tp_augment.check_augmentations(config["augmentations"])
AUGMENTATIONS = [tp_augment.NONE, *AUGMENT_SPECS]
NAME = "[A-Za-z0-9_-]+"


wildcard_constraints:
    slide="[A-Za-z0-9._-]+",
    shard=tp_shards.PATTERN,
    tiling=NAME,
    backbone=NAME,
    task=NAME,
    layer=NAME,
    augmentation=NAME,
    head=NAME,


if "demo" in config:
    DEMO_DIR = PATHS.demo_dir()
    SAMPLE_SHEET = PATHS.demo_sheet()
    _demo = tp_demo.demo_samples(DEMO_DIR, **config["demo"])
    DEMO_FILES = sorted(
        os.path.normpath(os.path.join(DEMO_DIR, p))
        for p in _demo[["path", "annotations"]].stack().dropna()
        if p
    )
    # The demo's sheet is known before its images exist; its files are made by rule demo_data.
    SAMPLES = check_sheet(_demo, SAMPLE_SHEET, TASKS, pending=DEMO_FILES)
else:
    SAMPLE_SHEET = config["samples"]
    SAMPLES = read_samples(SAMPLE_SHEET, TASKS)


# New slides to predict (config `predict`): tiled and embedded like training slides, never trained on.
PREDICT = (
    tp_predict.predict_sheet(config["predict"], SAMPLES)
    if config.get("predict")
    else SAMPLES.iloc[0:0]
)
# Every slide a tiling or embedding job may be asked for: the training sheet's, then the new ones.
SLIDES = pd.concat([SAMPLES, PREDICT.loc[~PREDICT.index.isin(SAMPLES.index)]])


@functools.cache
def task_slides(task):
    return samples_for_task(TASKS[task], SAMPLES)


def slide_path(wildcards):
    return SLIDES.at[wildcards.slide, "path"]


def slide_mpp(wildcards):
    mpp = SLIDES.at[wildcards.slide, "mpp"]
    return None if pd.isna(mpp) else float(mpp)


def slides_per_job(tiling):
    """How many slides one embedding job of a grid tiling embeds with the model loaded once (the SLURM profile
    raises the default: a GPU job then loads the model once for several slides)."""
    return TILINGS[tiling].get("slides_per_job", config["slides_per_job"])


def shard_size(tiling):
    """Images per shard of a `mode: whole` tiling: one tiling job and one embedding job per shard."""
    return TILINGS[tiling].get("shard_size", config["shard_size"])


def name_pattern(names):
    """A wildcard constraint that matches exactly these names (none: a pattern that matches nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


WHOLE = [t for t in TILINGS if TILINGS[t]["mode"] == "whole"]
GRID = [t for t in TILINGS if t not in WHOLE]
SHARDED_TILINGS = name_pattern(WHOLE)
BATCHED_TILINGS = name_pattern(t for t in GRID if slides_per_job(t) > 1)
SINGLE_TILINGS = name_pattern(t for t in GRID if slides_per_job(t) == 1)


@functools.cache
def needed_slides(tiling):
    """Slides some task on this tiling needs (sheet order), and the new slides to predict through it."""
    needed = {s for t, s in tiled_slides() if t == tiling}
    training = [s for s in SAMPLES.index if s in needed]
    predicting = [t for t, spec in TASKS.items() if spec["tiling"] == tiling
                  and spec["level"] in tp_predict.PREDICTABLE_LEVELS]
    new = [s for s in PREDICT.index if predicting and s not in needed]
    return training, new


@functools.cache
def shards(tiling):
    """{shard: [image, ...]} of a `mode: whole` tiling: each image's shard follows from its id alone, so adding
    images rebuilds only the shards they land in; new images to predict get shards of their own."""
    training, new = needed_slides(tiling)
    size = shard_size(tiling)
    return {**tp_shards.assign_shards(training, size), **tp_shards.assign_shards(new, size, prefix="predict")}


@functools.cache
def shard_of(tiling):
    return {image: shard for shard, images in shards(tiling).items() for image in images}


def units(tiling, slides):
    """The tiling and embedding units that hold `slides`: the slides themselves, or their shards (sorted)."""
    if tiling not in WHOLE:
        return list(slides)
    where = shard_of(tiling)
    return sorted({where[s] for s in slides})


def shard_images(wildcards):
    """The sheet rows of one shard, as its tiling job needs them."""
    return _shard_images(wildcards.tiling, wildcards.shard)


@functools.cache
def _shard_images(tiling, shard):
    return sheet_rows(shards(tiling)[shard])


def sheet_rows(slides):
    """[{"slide", "path", "mpp"}, ...] for these slides, in one vectorised lookup: a cell at a time
    (`SLIDES.at`) made a 100,000-image dry run spend most of its time here."""
    rows = SLIDES.loc[list(slides), ["path", "mpp"]]
    mpp = [None if pd.isna(m) else float(m) for m in rows["mpp"]]
    return [{"slide": s, "path": p, "mpp": m} for s, p, m in zip(rows.index, rows["path"], mpp)]


@functools.cache
def embed_batches(tiling):
    """{batch: [slide, ...]} for a batched grid tiling: the training sheet's slides in sheet order, then the new
    slides to predict in their own batches, so adding slides to predict never re-embeds training slides."""
    training, new = needed_slides(tiling)
    n, batches = slides_per_job(tiling), {}
    for prefix, slides in (("", training), ("predict-", new)):
        for start in range(0, len(slides), n):
            batches[f"{prefix}{start // n:04d}"] = slides[start : start + n]
    return batches


@functools.cache
def batch_index(tiling):
    return {slide: batch for batch, slides in embed_batches(tiling).items() for slide in slides}


def batch_of(wildcards):
    """The batch directory that holds one slide's store until rule embed_from_batch moves it into place."""
    batch = batch_index(wildcards.tiling).get(wildcards.slide)
    if batch is None:
        raise ValueError(f"slide {wildcards.slide} is embedded under no task of tiling {wildcards.tiling}")
    return PATHS.embedding_batch(wildcards.tiling, wildcards.backbone, batch)


def batch_slides(wildcards):
    """The sheet rows of one batch, as the batch job needs them."""
    rows = sheet_rows(embed_batches(wildcards.tiling)[wildcards.batch])
    return [{**row, "tiles": PATHS.tiles(wildcards.tiling, row["slide"])} for row in rows]


def slide_annotations(wildcards):
    """The GeoJSON of a slide, when a grid tiling should label its tiles."""
    path = SLIDES.at[wildcards.slide, "annotations"] if "annotations" in SLIDES.columns else None
    if TILINGS[wildcards.tiling]["mode"] != "grid" or pd.isna(path):
        return []
    return [path]


@functools.cache
def tiled_slides():
    """(tiling, slide) pairs some task needs: only these are tiled and embedded."""
    return sorted({(t["tiling"], s) for name, t in TASKS.items() for s in task_slides(name)})


@functools.cache
def tiled_units():
    """(tiling, slide or shard) pairs: what the tiling jobs make, one tile table and QC picture each."""
    pairs = [pair for pair in tiled_slides() if pair[0] in GRID]
    return pairs + [(t, shard) for t in WHOLE for shard in shards(t) if not shard.startswith("predict")]


def tile_tables():
    return [PATHS.tiles(tiling, unit) for tiling, unit in tiled_units()]


def qc_pictures():
    return [PATHS.qc(tiling, unit) for tiling, unit in tiled_units()]


SELECTION = config["selection"]
PROXY_TASK = SELECTION.get("proxy_task")
METRIC = SELECTION["metric"]


def task_candidates(task):
    """(backbone, layer) pairs a task trains heads on. `backbones: best` is the proxy task's top pair, known
    only once checkpoint `select` has run: call this from input functions, never at parse time."""
    spec = TASKS[task]
    if spec["backbones"] == tp_select.BEST:
        ranked = checkpoints.select.get(task=PROXY_TASK).output[0]
        return [tp_select.best(pd.read_parquet(ranked), ranked)]
    return [(b, layer) for b in spec["backbones"] for layer in BACKBONES[b]["layers"]]


@functools.cache
def task_units(task):
    """The slides, or shards of images, whose stores hold a task's samples."""
    return units(TASKS[task]["tiling"], task_slides(task))


def task_embeddings(task, backbones):
    """Embedding stores of a task's slides or shards, per backbone: {backbone: {unit: store}}."""
    tiling = TASKS[task]["tiling"]
    return {b: {u: PATHS.embeddings(tiling, b, u) for u in task_units(task)} for b in backbones}


# Tasks whose heads are known at parse time, and those (`backbones: best`) that wait for the selection.
BEST_TASKS = [t for t, spec in TASKS.items() if spec["backbones"] == tp_select.BEST]
FIXED_TASKS = [t for t in TASKS if t not in BEST_TASKS]


# Fine-tuned networks sit beside the heads: layer `final` (they train through it), augmentation `none` (their
# image-space augmentation is part of the method), head `finetune_{variant}`.
FINETUNED_LAYER = "final"
FINETUNE_HEAD = "finetune_{variant}"


def head_outputs(kind, tasks=None):
    """Heads' (and fine-tuned networks') `metrics` or `predictions` (all tasks by default). With a task in
    BEST_TASKS, only call it from an input function: it may wait on checkpoint `select`."""
    tasks = list(TASKS if tasks is None else tasks)
    heads = [
        PATHS.head_file(kind, task, backbone, layer, augmentation, head)
        for task in tasks
        for backbone, layer in task_candidates(task)
        for augmentation in tp_augment.for_task(TASKS[task], AUGMENT_SPECS)
        for head in TASKS[task]["heads"]
    ]
    return heads + [
        PATHS.head_file(kind, task, backbone, FINETUNED_LAYER, tp_augment.NONE, FINETUNE_HEAD.format(variant=v))
        for task in tasks
        for backbone in candidate_backbones(task)
        for v in TASKS[task].get("finetune", [])
    ]


def finetune_inputs(wildcards):
    """A fine-tuning job reads what a head reads (its rows come from the stores, so its folds are the heads'
    folds) and the slides or images themselves, for their pixels."""
    return {**_task_inputs(wildcards.task, wildcards.backbone),
            "images": [SAMPLES.at[s, "path"] for s in task_slides(wildcards.task)]}


def heatmap_head(task):
    """The head whose per-tile values a task's heatmaps show: a tile-level class task's first head (its
    out-of-fold tile probabilities), a slide-level task's `abmil` (its attention); None for other tasks."""
    spec = TASKS[task]
    if spec["kind"] not in ("binary", "multiclass"):
        return None
    if spec["level"] == "tile":
        return spec["heads"][0]
    return "abmil" if spec["level"] == "slide" and "abmil" in spec["heads"] else None


HEATMAP_TASKS = [t for t in TASKS if heatmap_head(t)]


def heatmap_inputs(wildcards):
    """The deployed head's metrics (its directory is then complete) and the tile tables of the task's slides."""
    backbone, layer = task_candidates(wildcards.task)[0]
    tiling = TASKS[wildcards.task]["tiling"]
    return {
        "head": PATHS.head_file("metrics", wildcards.task, backbone, layer, tp_augment.NONE,
                                heatmap_head(wildcards.task)),
        "tiles": [PATHS.tiles(tiling, u) for u in task_units(wildcards.task)],
    }


def report_figures(exclude=()):
    """Every figure of the report (selection's only with a proxy task), less the names in `exclude`."""
    names = ["metric_bars", "layer_depth", "roc_pr", "confusion", "reliability", "predicted_vs_true",
             "kaplan_meier", "qc_gallery", "timing"]
    names += [f"embedding_{task}" for task in TASKS] + [f"tradeoff_{task}" for task in TASKS]
    names += [f"heatmaps_{task}" for task in HEATMAP_TASKS]
    if PROXY_TASK:
        names.append("selection")
    # galleries of thumbnails are JPEGs: small whatever the number of slides
    return [PATHS.figure(name, "jpg" if name == "qc_gallery" or name.startswith("heatmaps_") else "png")
            for name in names if name not in exclude]


def task_store_inputs(task, backbones):
    """Tile tables and embedding stores of a task's slides for several backbones (selection, embedding maps)."""
    return {
        "tiles": [PATHS.tiles(TASKS[task]["tiling"], u) for u in task_units(task)],
        "embeddings": [p for stores in task_embeddings(task, backbones).values() for p in stores.values()],
    }


def candidate_backbones(task):
    return sorted({b for b, _ in task_candidates(task)})


def selection_inputs(wildcards):
    return task_store_inputs(wildcards.task, TASKS[wildcards.task]["backbones"])


def figure(name, caption, category, subcategory=None, **labels):
    """A figure output that also goes into the Snakemake report under `category`."""
    return report(
        PATHS.figure(name),
        caption=f"../report/{caption}.rst",
        category=category,
        subcategory=subcategory,
        labels=labels or None,
    )


def embedding_inputs(wildcards):
    return task_store_inputs(wildcards.task, candidate_backbones(wildcards.task))


@functools.cache
def check_task_folds(task):
    """Folds against each class's patients, when the DAG is built: a task whose heads cannot be cross-validated
    stops a run (or dry run) that asks for them before any embedding; a run for tiles or stores only is not
    stopped. Tile-level labels come from annotations, known only once tiled: the head job checks those."""
    spec = TASKS[task]
    if spec["level"] in ("slide", "image"):
        spec = {**spec, "name": task}
        check_folds(spec, *sheet_targets(spec, SAMPLES), config["evaluation"]["folds"])


def _task_inputs(task, backbone):
    check_task_folds(task)
    tiling, found = TASKS[task]["tiling"], task_units(task)
    return {
        "tiles": [PATHS.tiles(tiling, u) for u in found],
        "embeddings": [PATHS.embeddings(tiling, backbone, u) for u in found],
    }


def head_inputs(wildcards):
    inputs = _task_inputs(wildcards.task, wildcards.backbone)
    spec = AUGMENT_SPECS.get(wildcards.augmentation)
    if spec and tp_augment.is_per_tile(spec):
        inputs["augmented"] = PATHS.augmented(TASKS[wildcards.task]["tiling"], wildcards.backbone,
                                              wildcards.augmentation)
    return inputs


def augment_units(wildcards):
    """Slides (or shards) of every task on this tiling: one precomputed store per tiling x backbone serves them
    all."""
    return sorted({u for t, spec in TASKS.items() if spec["tiling"] == wildcards.tiling for u in task_units(t)})


def augment_inputs(wildcards):
    return [PATHS.embeddings(wildcards.tiling, wildcards.backbone, u) for u in augment_units(wildcards)]


def task_samples(wildcards):
    """The sheet rows a task learns from, as params: a head reruns when its labels change, not other rows."""
    task = TASKS[wildcards.task]
    columns = ["slide", "patient", "annotations", "group"]
    if task["level"] != "tile":
        columns += label_columns(task)  # survival: the time and the event
    rows = SAMPLES.loc[task_slides(wildcards.task), columns]
    return rows.astype(object).where(rows.notna(), None).to_dict(orient="records")


def made_by(tiling, backbones):
    """What a job's stores must have been made with, as its `made_by` params: a shared results directory may hold
    stores of another config under the same names (tileprobe/embed/provenance.py)."""
    return {"tiling": tiling, "tiling_spec": TILINGS[tiling], "backbones": {b: BACKBONES[b] for b in backbones}}


# Weights files are hashed here, once per run (and then cached by path, size and mtime), so that no job re-reads a
# large checkpoint to check a store against it.
for _spec in BACKBONES.values():
    if str(_spec.get("weights")) not in ("none", "hub") and os.path.isfile(os.path.expanduser(str(_spec["weights"]))):
        cached_sha256(_spec["weights"])


# Deployment (rules/predict.smk): the new slides of the `predict` sheet through each task's refit head.


def predict_deployed(task):
    """The trained head a task deploys (input functions only: `backbones: best` waits on the selection)."""
    return tp_predict.deployed(TASKS[task], task_candidates(task))


def predict_outputs():
    tasks = [t for t, spec in TASKS.items() if spec["level"] in tp_predict.PREDICTABLE_LEVELS]
    return [PATHS.predict(t, s) for t in tasks for s in PREDICT.index]


def predict_heatmap_outputs():
    """Heatmaps of the new slides for the tasks whose deployed head shows per-tile values (input functions
    only: a `backbones: best` task's deployed head waits on the selection)."""
    tasks = [t for t in HEATMAP_TASKS if TASKS[t]["level"] == "tile" or TASKS[t]["heads"][0] == "abmil"]
    return [PATHS.predict_heatmaps(t, s) for t in tasks for s in PREDICT.index]


def predict_unit(wildcards):
    """The slide, or the shard, whose store holds a slide to predict."""
    return units(TASKS[wildcards.task]["tiling"], [wildcards.slide])[0]


def predict_inputs(wildcards):
    task, chosen = TASKS[wildcards.task], predict_deployed(wildcards.task)
    tiling, backbone, unit = task["tiling"], chosen["backbone"], predict_unit(wildcards)
    return {
        "model": PATHS.head_file("model", wildcards.task, backbone, chosen["layer"], tp_augment.NONE, chosen["head"]),
        "tiles": PATHS.tiles(tiling, unit),
        "embeddings": PATHS.embeddings(tiling, backbone, unit),
    }
