"""What value heads predict, against what happened: predicted against true values for regression tasks, and
Kaplan-Meier curves of the predicted low- and high-risk halves for survival tasks.

Both draw each task's best head from its out-of-fold predictions (predictions.parquet), first repeat only, so
every sample is one point, predicted by a head that did not train on it. A survival row is high risk when its
risk is above `risk_threshold`: the median risk its fold's head gave its own training part, so the split uses
no test label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tileprobe.report.kinds import REGRESSION, SURVIVAL, best_per_task, family
from tileprobe.report.plots import Drawn, config_label, empty, plt, save


def first_repeat(predictions: pd.DataFrame) -> pd.DataFrame:
    """The rows of the first repeat (each sample once), or all rows of a table without repeats."""
    if "repeat" not in predictions or predictions.empty:
        return predictions
    return predictions[predictions["repeat"] == predictions["repeat"].min()]


def _of_kind(heads, kind: str) -> list[tuple[dict, pd.DataFrame]]:
    return [(meta, predictions) for meta, predictions in heads if family(meta.get("kind")) == kind]


def _score(meta: dict, metric: str) -> str:
    value = meta.get("overall", {}).get(metric)
    return "n/a" if value is None or not np.isfinite(float(value)) else f"{float(value):.3f}"


def _grid(n: int, width: float = 4.4, height: float = 4.2):
    columns = min(n, 3)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()[:n]


def predicted_vs_true(heads: list[tuple[dict, pd.DataFrame]], path: str | Path) -> Drawn:
    """One panel per regression task: out-of-fold y_pred against y_true of its best head (by overall r2), with
    the identity line."""
    best = best_per_task(_of_kind(heads, REGRESSION), "r2")
    if not best:
        return empty(path, "no regression task: no predicted against true values to draw")
    tasks = sorted(best)
    fig, axes = _grid(len(tasks))
    for ax, task in zip(axes, tasks):
        meta, predictions = best[task]
        rows = first_repeat(predictions)
        truth, pred = rows["y_true"].to_numpy(float), rows["y_pred"].to_numpy(float)
        keep = np.isfinite(truth) & np.isfinite(pred)  # a sample no fold predicted
        truth, pred = truth[keep], pred[keep]
        ax.scatter(truth, pred, s=14, alpha=0.7, edgecolor="none")
        if keep.any():
            low, high = min(truth.min(), pred.min()), max(truth.max(), pred.max())
            pad = 0.05 * (high - low or 1.0)
            ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", linestyle="--", linewidth=0.8,
                    label="predicted = true")
            ax.legend(fontsize=7, loc="upper left")
        ax.set(xlabel="true value", ylabel="predicted value (out of fold)")
        ax.set_title(f"task {task}\n{config_label(meta)}\nR² {_score(meta, 'r2')} (n={int(keep.sum())})",
                     fontsize=9)
    return save(fig, path)


def risk_groups(predictions: pd.DataFrame) -> pd.DataFrame:
    """time, event (bool) and high (risk above the fold's training median) of the first repeat's rows that have
    a time, an event and a risk."""
    rows = first_repeat(predictions)
    frame = pd.DataFrame({
        "time": pd.to_numeric(rows["time"], errors="coerce").to_numpy(float),
        "event": pd.to_numeric(rows["event"], errors="coerce").to_numpy(float),
        "risk": pd.to_numeric(rows["risk"], errors="coerce").to_numpy(float),
        "threshold": pd.to_numeric(rows["risk_threshold"], errors="coerce").to_numpy(float),
    })
    frame = frame[np.isfinite(frame).all(axis=1)]
    return pd.DataFrame({"time": frame["time"].to_numpy(), "event": frame["event"].to_numpy() > 0,
                         "high": (frame["risk"] > frame["threshold"]).to_numpy()})


def logrank_p(groups: pd.DataFrame) -> float:
    """The log-rank p-value (scikit-survival's compare_survival) of high against low risk; NaN when one group is
    empty or there is no event to compare."""
    from sksurv.compare import compare_survival
    from sksurv.util import Surv

    if groups["high"].nunique() < 2 or not groups["event"].any():
        return float("nan")
    y = Surv.from_arrays(event=groups["event"].to_numpy(bool), time=groups["time"].to_numpy(float))
    _, p_value = compare_survival(y, groups["high"].to_numpy())
    return float(p_value)


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "log-rank p n/a"
    return f"log-rank p = {p:.2g}" if p >= 1e-4 else f"log-rank p = {p:.1e}"


def kaplan_meier(heads: list[tuple[dict, pd.DataFrame]], path: str | Path) -> Drawn:
    """One panel per survival task: Kaplan-Meier curves of its best head's (by overall c_index) predicted high-
    and low-risk halves, out of fold, with the log-rank p-value in the title."""
    from sksurv.nonparametric import kaplan_meier_estimator

    best = best_per_task(_of_kind(heads, SURVIVAL), "c_index")
    if not best:
        return empty(path, "no survival task: no Kaplan-Meier curves to draw")
    tasks = sorted(best)
    fig, axes = _grid(len(tasks))
    for ax, task in zip(axes, tasks):
        meta, predictions = best[task]
        groups = risk_groups(predictions)
        for high, name, colour in ((False, "low risk", "tab:blue"), (True, "high risk", "tab:red")):
            part = groups[groups["high"] == high]
            if part.empty:
                continue
            times, survival = kaplan_meier_estimator(part["event"].to_numpy(bool), part["time"].to_numpy(float))
            # Start at (0, 1): every curve begins with everyone alive.
            ax.step(np.r_[0.0, times], np.r_[1.0, survival], where="post", color=colour,
                    label=f"{name} (n={len(part)}, {int(part['event'].sum())} events)")
        ax.set(xlabel="time", ylabel="survival probability", ylim=(0, 1.05))
        ax.set_xlim(left=0)
        if len(groups):
            ax.legend(fontsize=7, loc="lower left")
        ax.set_title(f"task {task}\n{config_label(meta)}\nc-index {_score(meta, 'c_index')}, "
                     f"{_p_text(logrank_p(groups))}", fontsize=9)
    return save(fig, path)
