"""ROC and precision-recall curves of every trained head, and confusion matrices of each task's best head.

Curves come from the out-of-fold predictions (predictions.parquet), so they show what cross-validation saw.
Binary tasks use the second class (sorted) as positive, as the metrics do; multiclass tasks are drawn
one-vs-rest, micro-averaged (every sample x class pair is one point). Regression and survival heads have no
class probabilities: both figures leave them out (tileprobe.report.plots.outcomes draws them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import auc, confusion_matrix, precision_recall_curve, roc_curve

from tileprobe.report.kinds import CLASSIFICATION, family
from tileprobe.report.plots import Drawn, config_label, empty, plt, save

PROB = "prob_"


def class_heads(heads: list[tuple[dict, pd.DataFrame]]) -> list[tuple[dict, pd.DataFrame]]:
    """The heads of classification tasks, with class probabilities to draw from."""
    return [(meta, predictions) for meta, predictions in heads
            if family(meta.get("kind")) == CLASSIFICATION and any(c.startswith(PROB) for c in predictions.columns)]


def scores_and_truth(predictions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(is-positive, score) pairs for one head's predictions, flattened one-vs-rest for more than two classes."""
    classes = [c[len(PROB):] for c in predictions.columns if c.startswith(PROB)]
    proba = predictions[[PROB + c for c in classes]].to_numpy(float)
    truth = predictions["y_true"].astype(str).to_numpy()
    keep = ~np.isnan(proba).any(axis=1)  # a sample no fold predicted
    proba, truth = proba[keep], truth[keep]
    if len(classes) == 2:
        return truth == classes[1], proba[:, 1]
    onehot = truth[:, None] == np.asarray(classes)[None, :]
    return onehot.ravel(), proba.ravel()


def roc_pr(heads: list[tuple[dict, pd.DataFrame]], path: str | Path) -> Drawn:
    """A row per classification task: ROC (left) and precision-recall (right), one curve per trained head."""
    if not heads:
        return empty(path, "no predictions to draw curves from")
    heads = class_heads(heads)
    if not heads:
        return empty(path, "no classification task: no ROC or precision-recall curves to draw")
    tasks = sorted({meta["task"] for meta, _ in heads})
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 4 * len(tasks)),
                             squeeze=False, layout="constrained")
    for (roc_ax, pr_ax), task in zip(axes, tasks):
        for meta, predictions in sorted((h for h in heads if h[0]["task"] == task), key=lambda h: config_label(h[0])):
            truth, score = scores_and_truth(predictions)
            if truth.all() or not truth.any():
                continue  # one class only: no curve is defined
            fpr, tpr, _ = roc_curve(truth, score)
            precision, recall, _ = precision_recall_curve(truth, score)
            name = config_label(meta)
            roc_ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.2f})")
            pr_ax.plot(recall, precision, label=f"{name} (AP {auc(recall, precision):.2f})")
        roc_ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
        roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"task {task}: ROC")
        pr_ax.set(xlabel="recall", ylabel="precision", title=f"task {task}: precision-recall", ylim=(0, 1.05))
        for ax in (roc_ax, pr_ax):
            ax.legend(fontsize=7, loc="lower right" if ax is roc_ax else "lower left")
    return save(fig, path)


def confusion(heads: list[tuple[dict, pd.DataFrame]], metric: str, path: str | Path) -> Drawn:
    """One panel per classification task: the confusion matrix (rows: true, normalised; numbers: counts) of its
    best head."""
    if not heads:
        return empty(path, "no predictions to draw confusion matrices from")
    heads = class_heads(heads)
    if not heads:
        return empty(path, "no classification task: no confusion matrix to draw")
    best: dict[str, tuple[dict, pd.DataFrame]] = {}
    for meta, predictions in heads:
        score = meta.get("overall", {}).get(metric)
        current = best.get(meta["task"])
        if current is None or (score is not None and score > (current[0].get("overall", {}).get(metric) or -1)):
            best[meta["task"]] = (meta, predictions)
    tasks = sorted(best)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4.2),
                             squeeze=False, layout="constrained")
    for ax, task in zip(axes[0], tasks):
        meta, predictions = best[task]
        classes = [c[len(PROB):] for c in predictions.columns if c.startswith(PROB)]
        counts = confusion_matrix(predictions["y_true"].astype(str), predictions["y_pred"].astype(str),
                                  labels=classes)
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                        color="white" if rates[i, j] > 0.5 else "black", fontsize=9)
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set(xlabel="predicted", ylabel="true")
        ax.set_title(f"task {task}\n{config_label(meta)}", fontsize=9)
    return save(fig, path)
