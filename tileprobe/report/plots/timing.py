"""Time per workflow stage, from the benchmark files Snakemake writes for every job (`benchmark:`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tileprobe.report.plots import Drawn, empty, plt, save


def stage_times(benchmarks: str | Path) -> pd.DataFrame:
    """One row per stage (the rule: the first folder under benchmarks/, or the file name for single jobs):
    jobs, total and max wall-clock seconds, summed CPU seconds, peak memory."""
    root = Path(benchmarks)
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        stage = tsv.relative_to(root).parts[0]
        stage = stage[:-4] if stage.endswith(".tsv") else stage
        table = pd.read_csv(tsv, sep="\t")
        for _, r in table.iterrows():  # one line per repeat of the job
            rows.append({"stage": stage, "s": float(r.get("s", np.nan)),
                         "cpu_time": pd.to_numeric(r.get("cpu_time", np.nan), errors="coerce"),
                         "max_rss": pd.to_numeric(r.get("max_rss", np.nan), errors="coerce")})
    columns = ["stage", "jobs", "total_s", "max_s", "cpu_s", "max_rss_mb"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    out = frame.groupby("stage").agg(jobs=("s", "size"), total_s=("s", "sum"), max_s=("s", "max"),
                                     cpu_s=("cpu_time", "sum"), max_rss_mb=("max_rss", "max")).reset_index()
    return out.sort_values("total_s", ascending=False, kind="stable").reset_index(drop=True)[columns]


def timing(benchmarks: str | Path, path: str | Path) -> Drawn:
    times = stage_times(benchmarks)
    if times.empty:
        return empty(path, f"no benchmark files under {benchmarks}")
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(times) + 1.2))
    order = times.iloc[::-1]
    ax.barh(order["stage"], order["total_s"], color="tab:blue")
    for y, (_, r) in enumerate(order.iterrows()):
        ax.text(r["total_s"], y, f"  {r['total_s']:.1f} s, {int(r['jobs'])} job(s)", va="center", fontsize=8)
    ax.set_xlabel("wall-clock seconds, summed over jobs")
    ax.set_xlim(0, times["total_s"].max() * 1.4 or 1)
    ax.set_title("time per stage (Snakemake benchmark files)", fontsize=10)
    return save(fig, path)
