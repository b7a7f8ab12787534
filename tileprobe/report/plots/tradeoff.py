"""Score against training time, one panel per task: every frozen head and every fine-tuned network, each a point
with its 95% interval, time on a log axis. The trade-off of Nivaggioli et al. (arXiv 2303.05180) on the user's
own data: how much a fine-tuned backbone gains, and what it costs, against a head on frozen embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tileprobe.report.kinds import CHANCE, headline
from tileprobe.report.plots import Drawn, config_label, empty, plt, save
from tileprobe.report.plots.scores import error_bars

FINETUNED = "finetune_"


def tradeoff(summary: pd.DataFrame, metric: str, path: str | Path) -> Drawn:
    """`summary` as tileprobe.report.summary writes it (`train_seconds`: mean wall seconds per fold)."""
    rows = summary[summary["train_seconds"].notna()] if "train_seconds" in summary else summary.iloc[:0]
    if rows.empty:
        return empty(path, "no trained heads with a recorded training time to show")
    tasks = sorted(rows["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.2), squeeze=False, layout="constrained")
    for ax, task in zip(axes[0], tasks):
        frame = rows[rows["task"] == task].reset_index(drop=True)
        score = headline(frame["kind"].iloc[0], metric)
        bars, what = error_bars(frame, score)
        tuned = frame["head"].str.startswith(FINETUNED).to_numpy()
        for mask, marker, label in ((~tuned, "o", "head on frozen embeddings"), (tuned, "*", "fine-tuned")):
            if mask.any():
                ax.errorbar(frame.loc[mask, "train_seconds"], frame.loc[mask, score],
                            yerr=np.nan_to_num(bars[:, mask]), fmt=marker, markersize=9 if marker == "*" else 5,
                            capsize=3, label=label)
        for _, row in frame.iterrows():
            ax.annotate(config_label(row), (row["train_seconds"], row[score]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        chance, column = CHANCE.get(score), f"chance_{score}"
        if chance is None and column in frame and frame[column].notna().any():
            chance = frame[column].dropna().iloc[0]
        if chance is not None:
            ax.axhline(float(chance), color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set(xlabel="training time per fold (s, log scale)", ylabel=f"{score} ({what})")
        ax.set_title(f"task {task}", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    return save(fig, path)
