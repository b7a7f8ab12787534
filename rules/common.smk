# Config and sample-sheet checks (before any job runs), wildcard constraints and input functions.

import os

import pandas as pd

from snakemake.utils import validate

from tileprobe import demo as tp_demo
from tileprobe.config import check_config
from tileprobe.data import samples_for_task
from tileprobe.heads import HEADS
from tileprobe.samples import check_sheet, read_samples


# Friendly checks first (one line per problem, naming the key); then Snakemake's own validation.
check_config(config, known_heads=HEADS)


validate(config, "../config/schema/config.schema.yaml")


RESULTS = config["results"].rstrip("/")
MANIFEST = f"{RESULTS}/manifest.parquet"
SUMMARY = [f"{RESULTS}/report/summary.parquet", f"{RESULTS}/report/summary.md"]
TILINGS = config["tilings"]
BACKBONES = config["backbones"]
TASKS = config["tasks"]
AUGMENTATIONS = ["none"]
NAME = "[A-Za-z0-9_-]+"


wildcard_constraints:
    slide="[A-Za-z0-9._-]+",
    tiling=NAME,
    backbone=NAME,
    task=NAME,
    layer=NAME,
    augmentation=NAME,
    head=NAME,


if "demo" in config:
    DEMO_DIR = f"{RESULTS}/demo"
    SAMPLE_SHEET = f"{DEMO_DIR}/samples.tsv"
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


def task_slides(task):
    return samples_for_task(TASKS[task], SAMPLES)


def slide_path(wildcards):
    return SAMPLES.at[wildcards.slide, "path"]


def slide_mpp(wildcards):
    mpp = SAMPLES.at[wildcards.slide, "mpp"]
    return None if pd.isna(mpp) else float(mpp)


def slide_annotations(wildcards):
    """The GeoJSON of a slide, when a grid tiling should label its tiles."""
    path = SAMPLES.at[wildcards.slide, "annotations"]
    if TILINGS[wildcards.tiling]["mode"] != "grid" or pd.isna(path):
        return []
    return [path]


def tiled_slides():
    """(tiling, slide) pairs some task needs: only these are tiled and embedded."""
    return sorted({(t["tiling"], s) for name, t in TASKS.items() for s in task_slides(name)})


def qc_pictures():
    return [f"{RESULTS}/qc/{tiling}/{slide}.png" for tiling, slide in tiled_slides()]


def head_dirs():
    return [
        f"{RESULTS}/heads/{task}/{backbone}/{layer}/{augmentation}/{head}"
        for task, spec in TASKS.items()
        for backbone in spec["backbones"]
        for layer in BACKBONES[backbone]["layers"]
        for augmentation in AUGMENTATIONS
        for head in spec["heads"]
    ]


def head_outputs(kind):
    suffix = {"metrics": "metrics.json", "predictions": "predictions.parquet"}[kind]
    return [f"{d}/{suffix}" for d in head_dirs()]


def head_inputs(wildcards):
    task = TASKS[wildcards.task]
    slides = task_slides(wildcards.task)
    tiling, backbone = task["tiling"], wildcards.backbone
    return {
        "tiles": [f"{RESULTS}/tiles/{tiling}/{s}.parquet" for s in slides],
        "embeddings": [f"{RESULTS}/embeddings/{tiling}/{backbone}/{s}.zarr" for s in slides],
    }


def task_samples(wildcards):
    """The sheet rows a task learns from, as params: a head reruns when its labels change, not other rows."""
    task = TASKS[wildcards.task]
    columns = ["slide", "patient", "annotations", "group"]
    if task["level"] != "tile":
        columns.append(task["label"])
    rows = SAMPLES.loc[task_slides(wildcards.task), columns]
    return rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
