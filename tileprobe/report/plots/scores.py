"""Metric bars per trained head, and metric against layer depth per backbone, one panel per task.

A classification task's panel draws the configured metric; a regression task's draws r2 and a survival task's
c_index (tileprobe.report.kinds), each with its own chance level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from tileprobe.report.kinds import CHANCE, headline
from tileprobe.report.plots import Drawn, config_label, empty, plt, save


def error_bars(frame: pd.DataFrame, metric: str) -> tuple[np.ndarray, str]:
    """(2, n) distances below/above each score: the confidence interval where every row has one, else ± std.

    Returns the bars and what they are, for the axis label.
    """
    score = frame[metric].to_numpy(float)
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if low in frame and high in frame and frame[[low, high]].notna().all().all():
        bars = np.vstack([score - frame[low].to_numpy(float), frame[high].to_numpy(float) - score])
        return np.clip(bars, 0, None), "95% CI"
    std = frame.get(f"{metric}_std", pd.Series(np.nan, index=frame.index)).to_numpy(float)
    return np.vstack([std, std]), "± std over folds"


def panel_metric(frame: pd.DataFrame, metric: str) -> str:
    """The score a task's panel draws: `metric` for classification, r2 for regression, c_index for survival."""
    kind = frame["kind"].iloc[0] if "kind" in frame and len(frame) else None
    shown = headline(kind, metric)
    return shown if shown in frame else metric


def chance_level(frame: pd.DataFrame, metric: str) -> float | None:
    """The panel's chance line: the summary's chance column where it has one, else the known chance of r2 (0) or
    c_index (0.5); None for a metric without one."""
    column = f"chance_{metric}"
    if column in frame and frame[column].notna().any():
        return float(frame[column].dropna().iloc[0])
    return CHANCE.get(metric)


def axis_range(values, below=0.0) -> tuple[float, float]:
    """0 to 1.05; where a score is negative (an r2 worse than the mean's), down to it and its error bar
    (`below`: the distance to the bar's lower end)."""
    values = np.asarray(values, float)
    if not (values < 0).any():
        return 0.0, 1.05
    reach = values - np.nan_to_num(np.broadcast_to(np.asarray(below, float), values.shape))
    return float(np.nanmin(reach)) * 1.05 - 0.02, 1.05


def _colours(names) -> dict:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(sorted(set(names)))}


def metric_bars(summary: pd.DataFrame, metric: str, path: str | Path) -> Drawn:
    """One horizontal bar per backbone x layer x augmentation x head, grouped by task, with error bars and chance."""
    if summary.empty:
        return empty(path, "no trained heads to show")
    tasks = sorted(summary["task"].unique())
    heights = [max(1.5, 0.35 * (summary["task"] == t).sum() + 0.8) for t in tasks]
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, sum(heights)), squeeze=False,
                             layout="constrained", gridspec_kw={"height_ratios": heights})
    colours = _colours(summary["backbone"])
    for ax, task in zip(axes[:, 0], tasks):
        frame = summary[summary["task"] == task]
        shown = panel_metric(frame, metric)
        frame = frame.sort_values(shown, na_position="first").reset_index(drop=True)
        bars, what = error_bars(frame, shown)
        ax.barh(np.arange(len(frame)), frame[shown].fillna(0), xerr=np.nan_to_num(bars), capsize=3,
                color=[colours[b] for b in frame["backbone"]])
        ax.set_yticks(np.arange(len(frame)), [config_label(r) for _, r in frame.iterrows()], fontsize=8)
        chance = chance_level(frame, shown)
        if chance is not None:
            ax.axvline(chance, color="grey", linestyle="--", label="chance")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlim(*axis_range(frame[shown], bars[0]))
        ax.set_title(f"task {task}", loc="left", fontsize=10)
        ax.set_xlabel(f"{shown} (error bars: {what})", fontsize=8)
    return save(fig, path)


def layer_depth(summary: pd.DataFrame, layers: dict[str, list[str]], metric: str, path: str | Path) -> Drawn:
    """Metric against layer position (the order of `layers[backbone]`, shallow to deep, `final` last), a line per
    backbone x head.

    Scores are averaged over augmentations; a backbone with one layer shows as a single point.
    """
    if summary.empty:
        return empty(path, "no trained heads to show")
    tasks = sorted(summary["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6),
                             squeeze=False, layout="constrained")
    colours = _colours(summary["backbone"])
    for ax, task in zip(axes[0], tasks):
        frame = summary[summary["task"] == task]
        shown = panel_metric(frame, metric)
        for (backbone, head), group in frame.groupby(["backbone", "head"], sort=True):
            order = layers.get(backbone) or sorted(group["layer"].unique())
            order = [x for x in order if x != "final"] + ["final"]  # `final` is the deepest wherever it is listed
            means = group.groupby("layer")[shown].mean()
            depth = [(order.index(layer), means[layer]) for layer in means.index if layer in order]
            depth.sort()
            ax.plot([d for d, _ in depth], [v for _, v in depth], marker="o", color=colours[backbone],
                    label=f"{backbone} / {head}")
            for d, _ in depth:
                ax.annotate(order[d], (d, 0.02), fontsize=7, rotation=90, xycoords=("data", "axes fraction"))
        ax.set_ylim(*axis_range(frame[shown]))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer depth (configured order)")
        ax.set_ylabel(shown)
        ax.set_title(f"task {task}", fontsize=10)
        ax.legend(fontsize=7)
    return save(fig, path)
