"""Backbone selection in pictures: proxy scores with confidence intervals, and how the proxy ranking agreed
with each task's own ranking (Spearman's rho)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tileprobe.report.plots import Drawn, empty, plt, save


def selection_figure(selection: pd.DataFrame, summary: pd.DataFrame, agreement: pd.DataFrame,
                     path: str | Path) -> Drawn:
    if selection.empty:
        return empty(path, "backbone selection ranked nothing")
    metric = str(selection["metric"].iloc[0])
    task = str(selection["task"].iloc[0])
    n_candidates = len(selection.drop_duplicates(["backbone", "layer"]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.5 * n_candidates + 3.5), layout="constrained")
    # Left: every probe's held-out score, best-ranked backbone x layer at the top.
    candidates = selection.drop_duplicates(["backbone", "layer"]).sort_values("rank", ascending=False)
    names = [f"#{r} {b}/{l}" for b, l, r in zip(candidates["backbone"], candidates["layer"], candidates["rank"])]
    probes = sorted(selection["probe"].unique())
    height = 0.8 / len(probes)
    for i, probe in enumerate(probes):
        rows = candidates[["backbone", "layer"]].merge(selection[selection["probe"] == probe], how="left")
        score = rows["score"].to_numpy(float)
        low, high = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
        bars = np.nan_to_num(np.vstack([score - low, high - score]))
        left.barh(np.arange(len(rows)) + (i - (len(probes) - 1) / 2) * height, np.nan_to_num(score), height,
                  xerr=np.clip(bars, 0, None), capsize=3, label=probe)
    left.set_yticks(np.arange(len(names)), names, fontsize=8)
    left.set_xlim(0, 1.05)
    left.set_xlabel(f"{metric} on the held-out patients (95% bootstrap CI)")
    left.set_title(f"proxy task {task}: rank by mean over probes", fontsize=10)
    left.legend(fontsize=8)
    # Right: proxy score against each task's cross-validated score, with Spearman's rho per task.
    proxy = selection.drop_duplicates(["backbone", "layer"]).set_index(["backbone", "layer"])["proxy_score"]
    for _, row in agreement.iterrows():
        frame = summary[summary["task"] == row["task"]].groupby(["backbone", "layer"])[metric].mean()
        shared = frame.index.intersection(proxy.index)
        rho = "n/a (fewer than 2 shared)" if pd.isna(row["spearman_rho"]) else f"{row['spearman_rho']:.2f}"
        right.scatter(proxy[shared], frame[shared], label=f"{row['task']}: rho {rho}, n={len(shared)}")
    right.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    right.set(xlim=(0, 1.05), ylim=(0, 1.05), xlabel=f"proxy score ({task})",
              ylabel=f"{metric} of the task's heads (mean over heads)")
    right.set_title("does the proxy ranking agree with the tasks? (Spearman)", fontsize=10)
    right.legend(fontsize=8, loc="lower right")
    return save(fig, path)
