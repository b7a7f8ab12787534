"""Hand-written heads of every kind: metrics.json dicts and out-of-fold predictions as the training code writes
them (issue 15's contract), for report tests that need a regression or survival head without training one."""

import numpy as np
import pandas as pd

REGRESSION_METRICS = ("r2", "mae", "rmse", "pearson", "spearman")
SURVIVAL_METRICS = ("c_index", "c_index_uno")


def head_record(task, kind, backbone="resnet18", head="logreg", **overall):
    """A metrics.json dict of one head: `overall` scores as given; std 0.05 and a CI of ±0.1 around each."""
    chance = {
        "regression": {"r2": -0.02, "mae": 1.0, "rmse": 1.2, "pearson": 0.0, "spearman": 0.0},
        "survival": {"c_index": 0.5, "c_index_uno": 0.5},
    }.get(kind, {"balanced_accuracy": 0.5, "auroc": 0.5, "macro_f1": 0.5})
    return {
        "task": task, "level": "slide", "kind": kind, "backbone": backbone, "layer": "final",
        "augmentation": "none", "head": head, "n_samples": 40, "n_groups": 20,
        "classes": ["no", "yes"] if kind in ("binary", "multiclass", "multilabel") else [],
        "chance": chance, "overall": dict(overall), "mean": dict(overall),
        "std": {k: 0.05 for k in overall}, "ci": {k: [v - 0.1, v + 0.1] for k, v in overall.items()},
        "folds": [],
    }


def regression_predictions(n=50, noise=0.3, seed=0, repeats=1):
    """Out-of-fold predictions of a regression head: y_pred = y_true + noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for repeat in range(repeats):
        truth = rng.normal(size=n) * 2 + 5
        frames.append(pd.DataFrame({
            "slide": [f"s{i}" for i in range(n)], "patient": [f"p{i}" for i in range(n)], "repeat": repeat,
            "fold": np.arange(n) % 3, "y_true": truth, "y_pred": truth + rng.normal(size=n) * noise}))
    return pd.concat(frames, ignore_index=True)


def survival_predictions(n=80, separation=2.0, seed=0, repeats=1):
    """Out-of-fold predictions of a survival head: half the rows (risk above the threshold) die `separation`
    times faster; about a fifth are censored."""
    rng = np.random.default_rng(seed)
    frames = []
    for repeat in range(repeats):
        high = np.arange(n) % 2 == 1
        risk = np.where(high, 1.0, -1.0) + rng.normal(size=n) * 0.1
        time = rng.exponential(np.where(high, 1.0, separation)) + 0.01
        event = (rng.random(n) > 0.2).astype(int)
        frames.append(pd.DataFrame({
            "slide": [f"s{i}" for i in range(n)], "patient": [f"p{i}" for i in range(n)], "repeat": repeat,
            "fold": np.arange(n) % 3, "time": time, "event": event, "risk": risk, "risk_threshold": 0.0}))
    return pd.concat(frames, ignore_index=True)


def class_predictions(classes=("no", "yes"), n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(classes, dtype=object)[np.arange(n) % len(classes)]
    proba = rng.dirichlet(np.ones(len(classes)), size=n)
    proba[np.arange(n), np.arange(n) % len(classes)] += 1
    proba /= proba.sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"slide": [f"s{i}" for i in range(n)], "patient": [f"p{i}" for i in range(n)],
                          "repeat": 0, "fold": np.arange(n) % 3, "y_true": y,
                          "y_pred": np.array(classes, dtype=object)[proba.argmax(axis=1)]})
    for j, c in enumerate(classes):
        frame[f"prob_{c}"] = proba[:, j]
    return frame


def mixed_records():
    """Two heads each of a binary, a regression and a survival task, the worse one first."""
    return [
        head_record("tumour", "binary", backbone="noise", balanced_accuracy=0.55, auroc=0.6, macro_f1=0.5),
        head_record("tumour", "binary", balanced_accuracy=0.85, auroc=0.9, macro_f1=0.8),
        head_record("age", "regression", backbone="noise", r2=-0.1, mae=1.1, rmse=1.3, pearson=0.05, spearman=0.02),
        head_record("age", "regression", r2=0.6, mae=0.5, rmse=0.7, pearson=0.8, spearman=0.78),
        head_record("os", "survival", backbone="noise", c_index=0.52, c_index_uno=0.5),
        head_record("os", "survival", c_index=0.71, c_index_uno=0.69),
    ]
