"""Backbone selection by proxy task: score every backbone x layer quickly, rank them, pick the top one.

The protocol is fixed so scores are comparable across backbones and runs: one held-out split grouped by patient
(no patient on both sides), two cheap probes on standardised features (k-nearest neighbours and logistic
regression), confidence intervals from a bootstrap over the held-out patients. A backbone x layer's proxy score
is the mean over probes; rank 1 is the best. `agreement` then asks how well this ranking predicted the ranking
that the full cross-validated heads produced on each real task (Spearman's rho).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tileprobe.errors import TileprobeError
from tileprobe.learn.data import VALUE_KINDS, TaskData
from tileprobe.learn.evaluate import (
    METRICS,
    MULTILABEL_METRICS,
    aligned_proba,
    bootstrap_ci,
    metrics,
)
from tileprobe.learn.metrics import HEADLINE

BEST = "best"
# What `selection.metric` accepts: the scores every task kind reports (the summary sorts and the figures plot by
# it) and that the single-label proxy probes compute. micro_f1 and micro_auroc exist for multilabel tasks only.
SELECTION_METRICS = tuple(METRICS)
PROTOCOL = {"test_fraction": 0.25, "knn_k": 10, "bootstrap": 200, "seed": 0}
PROXY_PERCENTILES = (2.5, 97.5)  # exactly; evaluate's CI_PERCENTILES differ in the 15th digit (published bounds)
COLUMNS = ["task", "backbone", "layer", "probe", "metric", "score", "ci_low", "ci_high", "n_train", "n_test",
           "proxy_score", "rank"]


class SelectionError(TileprobeError):
    """Backbone selection is misconfigured or its result cannot be used; the message names the key and the fix."""


def _metric_error(where: str, metric) -> SelectionError:
    why = ("exists for multilabel tasks only, so binary and multiclass tasks and the proxy probes have no value "
           "to rank by" if metric in MULTILABEL_METRICS else "is unknown")
    return SelectionError(f"{where}: `selection.metric` {metric!r} {why}; use one of "
                          f"{', '.join(SELECTION_METRICS)}.")


def check_selection(config: dict) -> None:
    """Checks the schema cannot express: a known metric, and `backbones: best` only with a proxy task."""
    selection = config.get("selection") or {}
    metric = selection.get("metric", "balanced_accuracy")
    if metric not in SELECTION_METRICS:
        raise _metric_error("config", metric)
    proxy = selection.get("proxy_task")
    if proxy in config["tasks"] and config["tasks"][proxy].get("kind") in VALUE_KINDS:
        raise SelectionError(
            f"config: `selection.proxy_task` {proxy!r} is a {config['tasks'][proxy]['kind']} task; the proxy probes "
            "rank backbones by a class metric, so name a binary, multiclass or multilabel task there."
        )
    for name, task in config["tasks"].items():
        if task.get("backbones") != BEST:
            continue
        if proxy is None:
            raise SelectionError(
                f"config: task `{name}` has `backbones: best` but no proxy task ranks them; set "
                "`selection: {proxy_task: TASK}` to a task that lists its backbones."
            )
        if name == proxy:
            raise SelectionError(
                f"config: task `{name}` is `selection.proxy_task`, so it cannot use `backbones: best`; list the "
                "backbones to compare in its `backbones`."
            )


def _probes(k: int, seed: int) -> dict:
    return {
        "knn": lambda n: make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=max(1, min(k, n)))),
        "logreg": lambda n: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)),
    }


def held_out_split(data: TaskData, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One patient-grouped, class-stratified split: the first fold of a grouped k-fold is the held-out part."""
    folds = max(2, round(1 / test_fraction))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # too few patients per class for `folds`: still one split
        train, test = next(splitter.split(np.zeros((len(data), 1)), data.y, data.groups))
    return train, test


def score_candidate(data: TaskData, metric: str, protocol: dict | None = None) -> list[dict]:
    """Both probes on one backbone x layer's features for the proxy task: score and CI per probe."""
    cfg = {**PROTOCOL, **(protocol or {})}
    train, test = held_out_split(data, cfg["test_fraction"], cfg["seed"])
    classes, y_test = data.classes, data.y[test]
    rows = []
    for probe, make in _probes(cfg["knn_k"], cfg["seed"]).items():
        model = make(len(train)).fit(data.X[train], data.y[train])
        proba = aligned_proba(model, data.X[test], classes)
        score = metrics(y_test, proba, classes)[metric]
        ci = bootstrap_ci(lambda idx: {metric: METRICS[metric](y_test[idx], proba[idx], classes)},
                          data.groups[test], cfg["bootstrap"], cfg["seed"], PROXY_PERCENTILES)
        low, high = ci.get(metric, (float("nan"), float("nan")))
        rows.append({"probe": probe, "metric": metric, "score": score, "ci_low": low, "ci_high": high,
                     "n_train": int(len(train)), "n_test": int(len(test))})
    return rows


def rank(scores: pd.DataFrame) -> pd.DataFrame:
    """Add `proxy_score` (mean over probes) and `rank` (1 = best; ties share a rank) per backbone x layer."""
    scores = scores.copy()
    scores["proxy_score"] = scores.groupby(["backbone", "layer"])["score"].transform("mean")
    per_candidate = scores.drop_duplicates(["backbone", "layer"]).set_index(["backbone", "layer"])["proxy_score"]
    ranks = per_candidate.rank(ascending=False, method="min", na_option="bottom").astype(int)
    scores["rank"] = [ranks[(b, l)] for b, l in zip(scores["backbone"], scores["layer"])]
    return scores.sort_values(["rank", "backbone", "layer", "probe"], kind="stable").reset_index(drop=True)


def select(task: str, candidates: dict[tuple[str, str], TaskData], metric: str = "balanced_accuracy",
           protocol: dict | None = None) -> pd.DataFrame:
    """Score and rank every (backbone, layer) in `candidates` on the proxy task `task`."""
    if metric not in SELECTION_METRICS:
        raise _metric_error("selection", metric)
    rows = [
        {"task": task, "backbone": backbone, "layer": layer, **row}
        for (backbone, layer), data in candidates.items()
        for row in score_candidate(data, metric, protocol)
    ]
    return rank(pd.DataFrame(rows, columns=COLUMNS[:-2]))[COLUMNS]


def best(selection: pd.DataFrame, source: str = "selection") -> tuple[str, str]:
    """The top-ranked (backbone, layer); ties go to the first by name, so the choice is stable."""
    if selection.empty:
        raise SelectionError(f"{source} ranks no backbone; check that the proxy task lists backbones with "
                             "embeddings and labelled samples.")
    top = selection.sort_values(["rank", "backbone", "layer"], kind="stable").iloc[0]
    return str(top["backbone"]), str(top["layer"])


def agreement(selection: pd.DataFrame, summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Spearman's rho between the proxy score and each task's score, over the backbone x layers both have.

    A task's score for a backbone x layer is its mean over heads and augmentations: `metric` for class tasks,
    R² for regression and the c-index for survival. rho is NaN with fewer than two shared backbone x layers (or
    constant scores): there is no ranking to agree with.
    """
    if metric not in summary:
        raise SelectionError(f"the summary has no {metric!r} column to compare the proxy ranking with; rerun the "
                             "report with the same `selection.metric`.")
    proxy = selection.drop_duplicates(["backbone", "layer"]).set_index(["backbone", "layer"])["proxy_score"]
    rows = []
    for task, frame in summary.groupby("task", sort=True):
        name = HEADLINE.get(frame["kind"].iloc[0], metric) if "kind" in frame else metric
        task_scores = frame.groupby(["backbone", "layer"])[name].mean()
        shared = task_scores.index.intersection(proxy.index)
        rho = float("nan")
        if len(shared) >= 2:
            # Spearman = Pearson on ranks (pandas, ties averaged); NaN when either side is constant. No p-value:
            # with a handful of backbones it would say little.
            rho = float(proxy[shared].reset_index(drop=True).corr(task_scores[shared].reset_index(drop=True),
                                                                  method="spearman"))
        rows.append({"task": task, "metric": name, "n_candidates": int(len(shared)), "spearman_rho": rho})
    return pd.DataFrame(rows, columns=["task", "metric", "n_candidates", "spearman_rho"])
