"""Train one head on one task: cross-validate, refit on all labelled data, write the three outputs.

`metrics.json` is written last, so its presence means the directory is complete.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

import tileprobe
from tileprobe.atomic import atomic_path
from tileprobe.jsonable import jsonable
from tileprobe.learn.data import VALUE_KINDS, TaskData, all_terms, per_term, term_matrix
from tileprobe.learn import calibration
from tileprobe.learn.evaluate import Augment, encode_classes, cross_validate, fit_head, refit_seed, settings
from tileprobe.learn.metrics import expected_calibration_error
from tileprobe.threads import limited_threads

ATTENTION_FILE = "attention.parquet"  # MIL heads: slide ids, tile index in the slide, repeat, fold, attention
FOLDS_DIR = "folds"  # finished folds of a resumable run, until its metrics.json exists
META_KEYS = ("task", "backbone", "layer", "augmentation", "head", "level", "kind")


def chance(y: np.ndarray, kind: str = "multiclass") -> dict[str, float]:
    """What a head that learnt nothing would score: uniform guessing, or always the majority class
    (multilabel: per term, always its majority outcome)."""
    if kind == "multilabel":
        Y = term_matrix(y, all_terms(y))
        majority = np.broadcast_to(Y.mean(axis=0) > 0.5, Y.shape)
        f1 = lambda avg: float(f1_score(Y, majority, average=avg, zero_division=0))  # noqa: E731
        return {"balanced_accuracy": 0.5, "auroc": 0.5, "micro_auroc": 0.5,
                "macro_f1": f1("macro"), "micro_f1": f1("micro")}
    classes, counts = np.unique(y.astype(str), return_counts=True)
    majority = np.full(len(y), classes[np.argmax(counts)], dtype=object)
    return {
        "balanced_accuracy": 1.0 / len(classes),
        "auroc": 0.5,
        "macro_f1": float(f1_score(y.astype(str), majority, labels=list(classes), average="macro",
                                   zero_division=0)),
    }


def _describe_values(data: TaskData) -> dict:
    """Regression: the target's spread; survival: events and censoring. The regression baseline (the training
    folds' mean) comes from cross-validation, which knows the folds; survival's is a coin toss."""
    base = {"n_samples": int(len(data)), "n_groups": int(len(set(data.groups))), "classes": []}
    if data.kind == "regression":
        y = np.asarray(data.y, dtype=np.float64)
        return {**base, "target": {"mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()),
                                   "max": float(y.max())}}
    time, event = data.y[:, 0], data.y[:, 1].astype(bool)
    return {**base, "events": int(event.sum()), "censored": int((~event).sum()),
            "median_time": float(np.median(time)), "chance": {"c_index": 0.5, "c_index_uno": 0.5}}


def _describe(data: TaskData) -> dict:
    if data.kind in VALUE_KINDS:
        return _describe_values(data)
    table = pd.DataFrame({"y": data.y, "g": data.groups})
    if data.kind == "multilabel":  # counts per term
        table = per_term(table)
    counts = table["y"].value_counts().sort_index()
    patients = table.groupby("y")["g"].nunique()
    return {
        "n_samples": int(len(data)),
        "n_groups": int(len(set(data.groups))),
        "classes": data.classes,
        "class_counts": {str(c): int(n) for c, n in counts.items()},
        "class_groups": {str(c): int(n) for c, n in patients.items()},
        "chance": chance(data.y, data.kind),
    }


def _calibration(method: str, data: TaskData, predictions: pd.DataFrame) -> tuple[dict, dict]:
    """Calibration parameters fitted on every repeat's out-of-fold probabilities, and what they do to the ECE
    there (in sample: the same predictions they were fitted on)."""
    if data.kind not in ("binary", "multiclass"):
        raise ValueError(f"`calibrate` is for binary and multiclass tasks, not {data.kind}")
    classes = data.classes
    proba = predictions[[f"prob_{c}" for c in classes]].to_numpy(np.float64)
    truth = encode_classes(predictions["y_true"].to_numpy(), classes)
    params = calibration.fit(method, truth, proba)
    keep = ~np.isnan(proba).any(axis=1)
    before = expected_calibration_error(truth[keep], proba[keep])
    after = expected_calibration_error(truth[keep], calibration.apply(params, proba[keep]))
    return params, {**params, "ece_out_of_fold": before, "ece_after_in_sample": after}


def run_task(data: TaskData, head_name: str, evaluation: dict | None, out_dir: str | Path, meta: dict,
             augment: Augment | None = None, *, threads: int = 1, options: dict | None = None,
             resume: bool = False, calibrate: str | None = None) -> dict:
    """Cross-validate `head_name` on `data`, refit it on everything, and write the outputs to `out_dir`.

    `augment(X, y, groups, seed)` (optional) transforms the training part of each fold and, for the refit,
    all labelled data. Writes `predictions.parquet`, `model/` (`model.json`, plus `weights.safetensors` for
    heads with arrays) and `metrics.json`; returns the record in metrics.json. `options` go to the head
    (fine-tuning: its backbone and settings); with `resume`, finished folds are kept in `out_dir/folds/` and a
    rerun after a kill starts after the last of them (the directory goes once metrics.json is written). With
    `calibrate` (temperature, platt), the refit head's probabilities are calibrated on the out-of-fold ones
    (`model/calibration.json`, used by `predict:`).
    """
    out_dir = Path(out_dir)
    cfg = settings(evaluation)
    fold_cache = out_dir / FOLDS_DIR if resume else None

    start = time.perf_counter()
    predictions, result = cross_validate(data, head_name, cfg, augment=augment, threads=threads, options=options,
                                         resume=fold_cache)
    cv_seconds = time.perf_counter() - start

    start = time.perf_counter()
    with limited_threads(threads):
        final = fit_head(head_name, data, np.arange(len(data)), cfg["seed"], augment, refit_seed(cfg["seed"]),
                         options)
    fit_seconds = time.perf_counter() - start

    with atomic_path(out_dir / "predictions.parquet") as tmp:
        predictions.to_parquet(tmp, index=False)
    attention = result.pop("attention", None)
    if attention is not None:  # each tile's attention weight out of fold, for the heatmaps
        with atomic_path(out_dir / ATTENTION_FILE) as tmp:
            attention.to_parquet(tmp, index=False)
    calibration_record = None
    with atomic_path(out_dir / "model") as tmp:
        tmp.mkdir()
        final.save(tmp)
        if calibrate:
            params, calibration_record = _calibration(calibrate, data, predictions)
            calibration.save(params, tmp)

    record = {
        **{k: meta.get(k) for k in META_KEYS},
        **{k: v for k, v in meta.items() if k not in META_KEYS},
        **_describe(data),
        "evaluation": cfg,
        **result,
        "fit_seconds": fit_seconds,  # the final refit on all data
        "cv_seconds": cv_seconds,
        # what training one fold's head took: the cost side of the trade-off figure
        "train_seconds": float(np.mean([f["fit_seconds"] for f in result["folds"]])) if result["folds"] else None,
        "tileprobe_version": tileprobe.__version__,
        **({"calibration": calibration_record} if calibration_record else {}),
    }
    record = jsonable(record)
    with atomic_path(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, allow_nan=False))
    if fold_cache is not None:
        shutil.rmtree(fold_cache, ignore_errors=True)
    return record
