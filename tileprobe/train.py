"""Train one head on one task: cross-validate, refit on all labelled data, write the three outputs.

`metrics.json` is written last, so its presence means the directory is complete.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

import tileprobe
from tileprobe.atomic import atomic_path
from tileprobe.data import TaskData
from tileprobe.evaluate import cross_validate, settings
from tileprobe.heads import make_head

META_KEYS = ("task", "backbone", "layer", "augmentation", "head", "level", "kind")


def chance(y: np.ndarray) -> dict[str, float]:
    """What a head that learnt nothing would score: uniform guessing, or always the majority class."""
    classes, counts = np.unique(y.astype(str), return_counts=True)
    majority = np.full(len(y), classes[np.argmax(counts)], dtype=object)
    return {
        "balanced_accuracy": 1.0 / len(classes),
        "auroc": 0.5,
        "macro_f1": float(f1_score(y.astype(str), majority, labels=list(classes), average="macro",
                                   zero_division=0)),
    }


def jsonable(value):
    """NaN -> null and numpy scalars -> Python, so json.dumps(allow_nan=False) writes strict JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _describe(data: TaskData) -> dict:
    counts = pd.Series(data.y).value_counts().sort_index()
    patients = pd.DataFrame({"y": data.y, "g": data.groups}).groupby("y")["g"].nunique()
    return {
        "n_samples": int(len(data)),
        "n_groups": int(len(set(data.groups))),
        "classes": data.classes,
        "class_counts": {str(c): int(n) for c, n in counts.items()},
        "class_groups": {str(c): int(n) for c, n in patients.items()},
        "chance": chance(data.y),
    }


def run_task(data: TaskData, head_name: str, evaluation: dict | None, out_dir: str | Path, meta: dict) -> dict:
    """Cross-validate `head_name` on `data`, refit it on everything, and write the outputs to `out_dir`.

    Writes `predictions.parquet`, `model/model.json` and `metrics.json`; returns the record in metrics.json.
    """
    out_dir = Path(out_dir)
    cfg = settings(evaluation)

    start = time.perf_counter()
    predictions, result = cross_validate(data, head_name, cfg)
    cv_seconds = time.perf_counter() - start

    start = time.perf_counter()
    final = make_head(head_name, seed=cfg["seed"]).fit(data.X, data.y)
    fit_seconds = time.perf_counter() - start

    with atomic_path(out_dir / "predictions.parquet") as tmp:
        predictions.to_parquet(tmp, index=False)
    with atomic_path(out_dir / "model") as tmp:
        tmp.mkdir()
        final.save(tmp)

    record = {
        **{k: meta.get(k) for k in META_KEYS},
        **{k: v for k, v in meta.items() if k not in META_KEYS},
        **_describe(data),
        "evaluation": cfg,
        **result,
        "fit_seconds": fit_seconds,  # the final refit on all data
        "cv_seconds": cv_seconds,
        "tileprobe_version": tileprobe.__version__,
    }
    record = jsonable(record)
    with atomic_path(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, allow_nan=False))
    return record
