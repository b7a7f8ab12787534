"""Metric bars per trained head, and metric against layer depth per backbone, one panel per task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

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
        frame = summary[summary["task"] == task].sort_values(metric, na_position="first").reset_index(drop=True)
        bars, what = error_bars(frame, metric)
        ax.barh(np.arange(len(frame)), frame[metric].fillna(0), xerr=np.nan_to_num(bars), capsize=3,
                color=[colours[b] for b in frame["backbone"]])
        ax.set_yticks(np.arange(len(frame)), [config_label(r) for _, r in frame.iterrows()], fontsize=8)
        chance = f"chance_{metric}"
        if chance in frame and frame[chance].notna().any():
            ax.axvline(float(frame[chance].dropna().iloc[0]), color="grey", linestyle="--", label="chance")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlim(0, 1.05)
        ax.set_title(f"task {task}", loc="left", fontsize=10)
        ax.set_xlabel(f"{metric} (error bars: {what})", fontsize=8)
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
        for (backbone, head), group in frame.groupby(["backbone", "head"], sort=True):
            order = layers.get(backbone) or sorted(group["layer"].unique())
            order = [x for x in order if x != "final"] + ["final"]  # `final` is the deepest wherever it is listed
            means = group.groupby("layer")[metric].mean()
            depth = [(order.index(layer), means[layer]) for layer in means.index if layer in order]
            depth.sort()
            ax.plot([d for d, _ in depth], [v for _, v in depth], marker="o", color=colours[backbone],
                    label=f"{backbone} / {head}")
            for d, _ in depth:
                ax.annotate(order[d], (d, 0.02), fontsize=7, rotation=90, xycoords=("data", "axes fraction"))
        ax.set_ylim(0, 1.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer depth (configured order)")
        ax.set_ylabel(metric)
        ax.set_title(f"task {task}", fontsize=10)
        ax.legend(fontsize=7)
    return save(fig, path)
