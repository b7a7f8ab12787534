"""Task kinds as the report groups them: classification (binary, multiclass, multilabel), regression, survival.

Each family has its own metrics, its own headline score (what tables sort by and score figures draw) and its own
chance level; a table or figure of one family never shows another family's (empty) columns.
"""

from __future__ import annotations

import math

# The metric names the training code writes to metrics.json; lower is better for LOWER_IS_BETTER only.
from tileprobe.learn.metrics import HEADLINE, LOWER_IS_BETTER
from tileprobe.learn.metrics import REGRESSION as REGRESSION_METRICS
from tileprobe.learn.metrics import SURVIVAL as SURVIVAL_METRICS

CLASSIFICATION, REGRESSION, SURVIVAL = "classification", "regression", "survival"
FAMILIES = (CLASSIFICATION, REGRESSION, SURVIVAL)
__all__ = ["CHANCE", "CLASSIFICATION", "FAMILIES", "HEADLINE", "LOWER_IS_BETTER", "REGRESSION", "REGRESSION_METRICS",
           "SURVIVAL", "SURVIVAL_METRICS", "best_per_task", "family", "headline", "score_of"]


# What a head that learnt nothing scores on a value family's headline score.
CHANCE = {"r2": 0.0, "c_index": 0.5}


def family(kind) -> str:
    """The family of a metrics.json `kind`; a missing kind (older files) is classification."""
    return kind if kind in (REGRESSION, SURVIVAL) else CLASSIFICATION


def headline(kind, metric: str) -> str:
    """The score that ranks heads of `kind`: the configured class `metric` for classification, r2 for regression,
    c_index for survival."""
    return HEADLINE.get(family(kind), metric)


def score_of(meta: dict, metric: str) -> float:
    """`meta`'s overall `metric` as a float to rank by (higher is better); -inf when absent or null."""
    value = meta.get("overall", {}).get(metric)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return -math.inf
    if math.isnan(value):
        return -math.inf
    return -value if metric in LOWER_IS_BETTER else value


def best_per_task(heads, metric: str) -> dict:
    """{task: (meta, predictions)} of the head with the best overall `metric` in each task (first one on ties)."""
    best: dict = {}
    for meta, predictions in heads:
        current = best.get(meta["task"])
        if current is None or score_of(meta, metric) > score_of(current[0], metric):
            best[meta["task"]] = (meta, predictions)
    return best
