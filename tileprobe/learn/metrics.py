"""Classification metrics in plain numpy, equal to scikit-learn's to rounding error but without its per-call
input checks, which dominate when a bootstrap scores the same predictions a thousand times.

Every function takes integer class indices or 0/1 indicators, never strings: the caller encodes once.
"""

from __future__ import annotations

import numpy as np

# The scores of binary and multiclass tasks, in report order: every stage that names a metric (evaluation, the
# selection check, the summary) takes the names from here, so the report job need not import scikit-learn.
SINGLE_LABEL = ("balanced_accuracy", "macro_f1", "auroc", "auprc")


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Mean recall over the classes present in `truth` (sklearn's balanced_accuracy_score)."""
    support = np.bincount(truth, minlength=n_classes)
    hits = np.bincount(truth[truth == pred], minlength=n_classes)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


def _f1(tp, fp, fn) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(np.shape(tp), dtype=np.float64), where=denominator > 0)


def macro_f1(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Unweighted mean F1 over all classes; 0 for a class neither present nor predicted (zero_division=0)."""
    tp = np.bincount(truth[truth == pred], minlength=n_classes)
    fp = np.bincount(pred, minlength=n_classes) - tp
    fn = np.bincount(truth, minlength=n_classes) - tp
    return float(np.mean(_f1(tp, fp, fn)))


def indicator_f1(Y: np.ndarray, P: np.ndarray, average: str) -> float:
    """F1 of 0/1 matrices (samples x terms): `macro` over terms, or `micro` over all pairs."""
    tp = (Y & P).sum(axis=0)
    fp = (~Y & P).sum(axis=0)
    fn = (Y & ~P).sum(axis=0)
    if average == "micro":
        return float(_f1(tp.sum(), fp.sum(), fn.sum()))
    return float(np.mean(_f1(tp, fp, fn)))


def _average_ranks(score: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank."""
    order = np.argsort(score, kind="mergesort")
    sorted_score = score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_score)) + 1]
    ends = np.r_[starts[1:], len(score)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(score))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def binary_auroc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U / products); NaN without both outcomes."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as sklearn's step sum; NaN without a positive."""
    if not positive.any():
        return float("nan")
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    s, hit = score[order], positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(hit)[last_of_tie]
    precision = tps / (last_of_tie + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
