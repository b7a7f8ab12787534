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


CALIBRATION_BINS = 15  # equal-width confidence bins of the expected calibration error


def expected_calibration_error(truth: np.ndarray, proba: np.ndarray, n_bins: int = CALIBRATION_BINS) -> float:
    """Top-label ECE (Guo et al., ICML 2017): rows binned by their highest probability into `n_bins` equal-width
    bins [k/n, (k+1)/n) (a confidence of 1 in the last); the gap between accuracy and mean confidence of each bin,
    weighted by its share of rows. 0 is perfectly calibrated; NaN without rows."""
    if len(truth) == 0:
        return float("nan")
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = (np.argmax(proba, axis=1) == truth).astype(np.float64)
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    gaps = np.bincount(bins, weights=correct, minlength=n_bins) - np.bincount(bins, weights=confidence,
                                                                            minlength=n_bins)
    return float(np.abs(gaps).sum() / len(truth))


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


# ---------------------------------------------------------------- regression and survival

# Regression scores in report order; r2, pearson and spearman grow with quality, mae and rmse shrink.
REGRESSION = ("r2", "mae", "rmse", "pearson", "spearman")
# Survival: Harrell's concordance of risk with observed times, and Uno's, which weights pairs by the inverse
# probability of censoring and so stays unbiased where many patients are censored.
SURVIVAL = ("c_index", "c_index_uno")
LOWER_IS_BETTER = frozenset({"mae", "rmse", "ece"})
# The score that ranks heads of a value kind (summary order, score figures, selection agreement); class tasks
# are ranked by the configured `selection.metric`.
HEADLINE = {"regression": "r2", "survival": "c_index"}
PAIR_BLOCK = 2048
TIED_RISK = 1e-8  # risks closer than this are tied (scikit-survival's tied_tol), so float noise is no ranking


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def regression_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R² (1 - SSE/SST, sklearn's r2_score), MAE, RMSE and Pearson and Spearman correlation; a score that is
    undefined (a constant truth or prediction) is NaN."""
    truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    error = pred - truth
    total = ((truth - truth.mean()) ** 2).sum()
    return {
        "r2": float(1 - (error * error).sum() / total) if total > 0 else float("nan"),
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error * error).mean())),
        "pearson": _correlation(truth, pred),
        "spearman": _correlation(_average_ranks(truth), _average_ranks(pred)),
    }


def harrell_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance index: of the pairs where the shorter time ends in an event, the share whose
    risk is higher for the shorter time (ties in risk count one half). As in scikit-survival's
    concordance_index_censored, an event is also comparable with a censoring at the same time, and two events
    at one time are not comparable; NaN without a comparable pair."""
    time, risk = np.asarray(time, dtype=np.float64), np.asarray(risk, dtype=np.float64)
    event = np.asarray(event, dtype=bool)
    pairs = concordant = 0.0
    for start in range(0, len(time), PAIR_BLOCK):  # blocks of rows: memory stays bounded for 10,000 slides
        rows = slice(start, start + PAIR_BLOCK)
        t, e = time[rows, None], event[rows, None]
        # comparable[i, j]: i had the event before j's time (or at it, when j is censored then)
        comparable = e & ((t < time[None, :]) | ((t == time[None, :]) & ~event[None, :]))
        difference = risk[rows, None] - risk[None, :]
        pairs += comparable.sum()
        concordant += ((difference > TIED_RISK) & comparable).sum() + 0.5 * (
            (np.abs(difference) <= TIED_RISK) & comparable).sum()
    return float(concordant / pairs) if pairs else float("nan")


def uno_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Uno's IPCW concordance (scikit-survival), with the censoring distribution estimated on the same rows;
    NaN where it is undefined (no event, or every time censored at the end)."""
    from sksurv.metrics import concordance_index_ipcw
    from sksurv.util import Surv

    event = np.asarray(event, dtype=bool)
    if not event.any():
        return float("nan")
    outcome = Surv.from_arrays(event, np.asarray(time, dtype=np.float64))
    # tau: the last event time, so the censoring survival estimate stays positive where it is used
    tau = float(np.max(outcome["time"][event]))
    try:
        return float(concordance_index_ipcw(outcome, outcome, np.asarray(risk, dtype=np.float64), tau=tau)[0])
    except (ValueError, ZeroDivisionError):
        return float("nan")


def survival_metrics(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> dict[str, float]:
    return {"c_index": harrell_c(time, event, risk), "c_index_uno": uno_c(time, event, risk)}
