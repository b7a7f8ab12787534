"""Reliability diagrams: for each binary or multiclass task's best head, the accuracy of its out-of-fold top-class
predictions against their confidence, in the bins of the expected calibration error. On the diagonal, a head's
probabilities can be read as probabilities; below it the head is over-confident."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tileprobe.learn.metrics import CALIBRATION_BINS, expected_calibration_error
from tileprobe.report.kinds import best_per_task
from tileprobe.report.plots import Drawn, config_label, empty, plt, save
from tileprobe.report.plots.curves import PROB

KINDS = ("binary", "multiclass")


def confidence_bins(predictions: pd.DataFrame, n_bins: int = CALIBRATION_BINS):
    """(truth indices, probabilities, per-bin confidence, accuracy, count) of one head's out-of-fold rows."""
    classes = [c[len(PROB):] for c in predictions.columns if c.startswith(PROB)]
    proba = predictions[[PROB + c for c in classes]].to_numpy(float)
    index = {c: j for j, c in enumerate(classes)}
    truth = np.array([index.get(str(v), -1) for v in predictions["y_true"]])
    keep = ~np.isnan(proba).any(axis=1) & (truth >= 0)
    truth, proba = truth[keep], proba[keep]
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == truth
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / count
    return truth, proba, mean_conf, accuracy, count


def reliability(heads: list[tuple[dict, pd.DataFrame]], metric: str, path: str | Path) -> Drawn:
    classed = [(meta, p) for meta, p in heads if meta.get("kind") in KINDS]
    best = best_per_task(classed, metric)
    if not best:
        return empty(path, "no binary or multiclass task: no reliability diagram to draw")
    tasks = sorted(best)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 4.2), squeeze=False, layout="constrained")
    for ax, task in zip(axes[0], tasks):
        meta, predictions = best[task]
        truth, proba, conf, accuracy, count = confidence_bins(predictions)
        edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
        filled = count > 0
        ax.bar(edges[:-1][filled], accuracy[filled], width=1 / CALIBRATION_BINS, align="edge", alpha=0.7,
               edgecolor="black", label="accuracy")
        ax.plot(conf[filled], accuracy[filled], "o", color="black", markersize=3, label="mean confidence")
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="calibrated")
        ece = expected_calibration_error(truth, proba)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top class, out of fold)", ylabel="accuracy")
        ax.set_title(f"task {task}: ECE {ece:.3f}\n{config_label(meta)}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    return save(fig, path)
