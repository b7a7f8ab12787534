"""Honest evaluation: out-of-fold predictions from stratified k-fold cross-validation grouped by patient.

Every sample is predicted once per repeat by a head that never saw its patient. Metrics are reported on all
out-of-fold predictions of a repeat ("overall", averaged over repeats) and per fold (mean and std).
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from tileprobe.data import TaskData
from tileprobe.heads import make_head

log = logging.getLogger(__name__)

DEFAULTS = {"folds": 5, "repeats": 1, "seed": 0}


def _predicted(proba: np.ndarray, classes) -> np.ndarray:
    return np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]


def balanced_accuracy(y_true, proba, classes) -> float:
    with warnings.catch_warnings():
        # A fold may predict a class its test part lacks; sklearn warns, the score is still defined.
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y_true, _predicted(proba, classes)))


def macro_f1(y_true, proba, classes) -> float:
    return float(f1_score(y_true, _predicted(proba, classes), labels=list(classes), average="macro",
                          zero_division=0))


def auroc(y_true, proba, classes) -> float:
    """Binary: positive class is classes[1]. Multiclass: macro mean of one-vs-rest AUROCs.

    NaN when a class is absent from y_true (a small fold): the curve is undefined, not zero.
    """
    y_true = np.asarray(y_true)
    if not set(classes) <= set(y_true):
        return float("nan")
    if len(classes) == 2:
        return float(roc_auc_score(y_true == classes[1], proba[:, 1]))
    return float(np.mean([roc_auc_score(y_true == c, proba[:, i]) for i, c in enumerate(classes)]))


# name -> f(y_true, proba (n, classes), classes) -> float; later metrics (multilabel, ...) add entries here.
METRICS: dict[str, Callable[..., float]] = {
    "balanced_accuracy": balanced_accuracy,
    "macro_f1": macro_f1,
    "auroc": auroc,
}


def metrics(y_true, proba, classes) -> dict[str, float]:
    """Every metric in METRICS on one set of predictions; `proba` columns follow `classes`."""
    classes = list(classes)
    proba = np.asarray(proba, dtype=np.float64)
    return {name: fn(np.asarray(y_true, dtype=object), proba, classes) for name, fn in METRICS.items()}


def settings(evaluation: dict | None) -> dict:
    """Evaluation settings with defaults filled in."""
    merged = {**DEFAULTS, **{k: v for k, v in (evaluation or {}).items() if v is not None}}
    return {k: int(merged[k]) for k in DEFAULTS}


def cv_splits(y, groups, folds: int, repeats: int, seed: int) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train indices, test indices); each repeat reshuffles with seed + repeat."""
    X_dummy = np.zeros((len(y), 1))
    for repeat in range(repeats):
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
        with warnings.catch_warnings():
            # data.task_dataset already checked patients per class; sklearn's own warning would repeat it.
            warnings.simplefilter("ignore", UserWarning)
            for fold, (train, test) in enumerate(splitter.split(X_dummy, y, groups)):
                yield repeat, fold, train, test


def aligned_proba(head, X: np.ndarray, classes: list) -> np.ndarray:
    """Probabilities with one column per task class, zeros for a class the head never saw in its fold."""
    proba = head.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    for j, c in enumerate(head.classes_):
        out[:, classes.index(c)] = proba[:, j]
    return out


def _summary(rows: list[dict]) -> tuple[dict, dict]:
    table = pd.DataFrame(rows)[list(METRICS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, which is what we want
        mean = {m: float(np.nanmean(table[m])) for m in METRICS}
        # Sample std (ddof=1) over folds; NaN with fewer than two defined folds.
        std = {m: float(table[m].std(ddof=1, skipna=True)) for m in METRICS}
    return mean, std


def cross_validate(data: TaskData, head_name: str, evaluation: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Out-of-fold predictions and metrics for one head on one task dataset."""
    cfg = settings(evaluation)
    classes = data.classes
    proba = np.full((cfg["repeats"], len(data), len(classes)), np.nan)
    fold_of = np.full((cfg["repeats"], len(data)), -1)
    fold_rows = []
    for repeat, fold, train, test in cv_splits(data.y, data.groups, cfg["folds"], cfg["repeats"], cfg["seed"]):
        if len(test) == 0:
            log.warning("repeat %d fold %d has no test samples; skipped", repeat, fold)
            continue
        head = make_head(head_name, seed=cfg["seed"] + repeat).fit(data.X[train], data.y[train])
        proba[repeat, test] = aligned_proba(head, data.X[test], classes)
        fold_of[repeat, test] = fold
        fold_rows.append({"repeat": repeat, "fold": fold, "n_test": int(len(test)),
                          **metrics(data.y[test], proba[repeat, test], classes)})

    per_repeat = [metrics(data.y, proba[r], classes) for r in range(cfg["repeats"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = {m: float(np.nanmean([r[m] for r in per_repeat])) for m in METRICS}
    mean, std = _summary(fold_rows)
    result = {"overall": overall, "folds": fold_rows, "mean": mean, "std": std}
    return _predictions(data, classes, proba, fold_of), result


def _predictions(data: TaskData, classes: list, proba: np.ndarray, fold_of: np.ndarray) -> pd.DataFrame:
    """One row per sample per repeat, in sample order within each repeat."""
    frames = []
    for repeat in range(proba.shape[0]):
        frame = data.ids.reset_index(drop=True).copy()
        frame["patient"] = data.groups
        frame["repeat"] = repeat
        frame["fold"] = fold_of[repeat]
        frame["y_true"] = data.y
        frame["y_pred"] = _predicted(proba[repeat], classes)
        for j, c in enumerate(classes):
            frame[f"prob_{c}"] = proba[repeat, :, j]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
