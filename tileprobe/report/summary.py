"""Summary of every trained head: one row per metrics.json, as Parquet and as a Markdown table."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pandas as pd

from tileprobe.atomic import atomic_path
from tileprobe.learn.metrics import SINGLE_LABEL

COLUMNS = [
    "task", "level", "kind", "backbone", "layer", "augmentation", "head",
    "n_samples", "n_groups", "n_classes",
    "balanced_accuracy", "balanced_accuracy_std", "chance_balanced_accuracy",
    "auroc", "auroc_std", "macro_f1", "macro_f1_std",
    # Confidence intervals, when metrics.json has a `ci` entry (bootstrap); NaN otherwise.
    "balanced_accuracy_ci_low", "balanced_accuracy_ci_high", "auroc_ci_low", "auroc_ci_high",
    "macro_f1_ci_low", "macro_f1_ci_high",
]
CI_METRICS = ("balanced_accuracy", "auroc", "macro_f1")

COUNTS = {"n_samples", "n_groups", "n_classes"}
TEXT = set(COLUMNS[:COLUMNS.index("n_samples")])
# Every metric `selection.metric` accepts; one outside CI_METRICS adds its value, std and CI columns.
METRICS = SINGLE_LABEL
HEADERS = {"auprc": "AUPRC"}


def metric_columns(metric: str) -> list[str]:
    return [metric, f"{metric}_std", f"{metric}_ci_low", f"{metric}_ci_high"]


def columns(metric: str = "balanced_accuracy") -> list[str]:
    """The summary's columns: COLUMNS, plus the configured metric's when COLUMNS lacks it (so the default
    summary keeps its shape)."""
    if metric not in METRICS:
        raise ValueError(f"summary: metric {metric!r} is unknown; use one of {', '.join(METRICS)}.")
    return COLUMNS if metric in CI_METRICS else COLUMNS + metric_columns(metric)


# Markdown columns: (header, value column, std column or None).
_SHOWN = [
    ("task", "task", None), ("level", "level", None), ("backbone", "backbone", None), ("layer", "layer", None),
    ("augmentation", "augmentation", None), ("head", "head", None), ("n", "n_samples", None),
    ("patients", "n_groups", None), ("classes", "n_classes", None),
    ("balanced accuracy", "balanced_accuracy", "balanced_accuracy_std"),
    ("chance", "chance_balanced_accuracy", None),
    ("AUROC", "auroc", "auroc_std"), ("macro F1", "macro_f1", "macro_f1_std"),
]


def ci_bounds(ci, metric: str) -> tuple[float | None, float | None]:
    """(low, high) of `metric` from a metrics.json `ci` entry written as {metric: [low, high]} or
    {metric: {low|lower, high|upper}}; (None, None) when absent or in a shape not known here."""
    value = ci.get(metric) if isinstance(ci, dict) else None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value[0], value[1]
    if isinstance(value, dict):
        return value.get("low", value.get("lower")), value.get("high", value.get("upper"))
    return None, None


def _row(record: dict, metric: str) -> dict:
    overall, std = record.get("overall", {}), record.get("std", {})
    cis = {}
    for name in CI_METRICS:
        cis[f"{name}_ci_low"], cis[f"{name}_ci_high"] = ci_bounds(record.get("ci"), name)
    extra = {}
    if metric not in CI_METRICS:
        low, high = ci_bounds(record.get("ci"), metric)
        extra = dict(zip(metric_columns(metric), (overall.get(metric), std.get(metric), low, high)))
    return {
        **{k: record.get(k) for k in ("task", "level", "kind", "backbone", "layer", "augmentation", "head",
                                      "n_samples", "n_groups")},
        "n_classes": len(record.get("classes", [])),
        "balanced_accuracy": overall.get("balanced_accuracy"),
        "balanced_accuracy_std": std.get("balanced_accuracy"),
        "chance_balanced_accuracy": record.get("chance", {}).get("balanced_accuracy"),
        "auroc": overall.get("auroc"),
        "auroc_std": std.get("auroc"),
        "macro_f1": overall.get("macro_f1"),
        "macro_f1_std": std.get("macro_f1"),
        **cis,
        **extra,
    }


def summarize(metrics_paths, metric: str = "balanced_accuracy") -> pd.DataFrame:
    """One row per metrics.json, best `metric` (the configured `selection.metric`) first within each task."""
    names = columns(metric)
    rows = [_row(json.loads(Path(p).read_text()), metric) for p in metrics_paths]
    df = pd.DataFrame(rows, columns=names)
    for col in names[names.index("balanced_accuracy"):]:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")  # JSON null -> NaN
    df = df.sort_values(["task", metric], ascending=[True, False], na_position="last", kind="stable")
    return df.reset_index(drop=True)


def _shown(df: pd.DataFrame) -> list[tuple[str, str, str | None]]:
    """The Markdown/HTML columns: the usual ones, plus any further metric the summary carries."""
    extra = [m for m in METRICS if m not in CI_METRICS and m in df.columns]
    return _SHOWN + [(HEADERS.get(m, m), m, f"{m}_std") for m in extra]


def _cell(row: pd.Series, column: str, std_column: str | None) -> str:
    value = row[column]
    if pd.isna(value):
        return "–"
    if column not in COUNTS and column not in TEXT:  # a score
        text = f"{value:.3f}"
        if std_column and not pd.isna(row[std_column]):
            text += f" ± {row[std_column]:.3f}"
        return text
    if column in COUNTS:
        return str(int(value))
    return str(value).replace("|", "\\|")  # a pipe would split the Markdown cell


def slides_markdown(slides: pd.DataFrame, report_dir: str | None = None) -> str:
    """How many slides each tiling kept, and every flagged one with its QC picture (relative to the report)."""
    counts = ", ".join(f"{t}: {n}" for t, n in slides.groupby("tiling", sort=False).size().items())
    bad = slides[slides["flags"].fillna("") != ""]
    lines = ["", "## Slides", "", f"{len(slides)} tiled ({counts}); {len(bad)} flagged."]
    if len(bad):
        lines += ["", "Flagged slides are skipped by every task (each skip is a warning in that head's log).", "",
                  "| tiling | slide | tiles | flags | QC picture |", "|---|---|---:|---|---|"]
        for _, row in bad.iterrows():
            qc = os.path.relpath(row["qc"], report_dir) if report_dir else row["qc"]
            flags = _flag_text(row).replace("|", "\\|")
            lines.append(f"| {row['tiling']} | {row['slide']} | {row['n_tiles']} | {flags} | [{qc}]({qc}) |")
    return "\n".join(lines) + "\n"


def _flag_text(row) -> str:
    """A flag with its error, where there is one (an unreadable image says why)."""
    error = row.get("error")
    return f"{row['flags']}: {error}" if isinstance(error, str) and error else str(row["flags"])


def slides_html(slides: pd.DataFrame) -> str:
    bad = slides[slides["flags"].fillna("") != ""]
    text = f"<h2>Slides</h2><p>{len(slides)} tiled; {len(bad)} flagged.</p>"
    if len(bad):
        rows = "".join(
            f"<tr><td>{html.escape(r['tiling'])}</td><td>{html.escape(r['slide'])}</td><td>{r['n_tiles']}</td>"
            f"<td>{html.escape(_flag_text(r))}</td><td>{html.escape(str(r['qc']))}"
            "</td></tr>" for _, r in bad.iterrows())
        text += ("<p>Flagged slides are skipped by every task; their QC pictures are in the QC section.</p>"
                 "<table class='flagged'><tr><th>tiling</th><th>slide</th><th>tiles</th><th>flags</th>"
                 f"<th>QC picture</th></tr>{rows}</table>")
    return text


def to_markdown(df: pd.DataFrame) -> str:
    shown = _shown(df)
    headers = [h for h, _, _ in shown]
    lines = [
        "# tileprobe summary",
        "",
        "Scores are out-of-fold, from cross-validation grouped by patient (no patient in both train and test); "
        "± is the std over folds, and chance is shown beside balanced accuracy.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if c in ("task", "level", "backbone", "layer", "augmentation", "head")
                       else "---:" for _, c, _ in shown) + "|",
    ]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_cell(row, c, s) for _, c, s in shown) + " |")
    return "\n".join(lines) + "\n"


def to_html(df: pd.DataFrame, extra: str = "") -> str:
    """The Markdown table's rows as a standalone HTML page, for the Snakemake report (which shows HTML inline)."""
    shown = _shown(df)
    table = pd.DataFrame([{h: _cell(row, c, s) for h, c, s in shown} for _, row in df.iterrows()],
                         columns=[h for h, _, _ in shown])
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>tileprobe summary</title>"
        "<style>body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} td:nth-child(-n+6){text-align:left}</style>"
        "</head><body><h1>tileprobe summary</h1><p>Scores are out-of-fold, from cross-validation grouped by "
        "patient; &plusmn; is the std over folds; chance is shown beside balanced accuracy.</p>"
        + table.to_html(index=False, border=0, classes="summary") + extra + "</body></html>\n"
    )


def write_summary(df: pd.DataFrame, parquet_path, markdown_path, html_path=None,
                  slides: pd.DataFrame | None = None) -> None:
    """Write the summary table as Parquet, Markdown and (optionally) HTML, each atomically; `slides` (the tiling
    manifest) adds a section that counts the tiled slides and lists the flagged ones."""
    with atomic_path(parquet_path) as tmp:
        df.to_parquet(tmp, index=False)
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(to_markdown(df) + (slides_markdown(slides, os.path.dirname(markdown_path)) if slides is not None else ""))
    if html_path is not None:
        with atomic_path(html_path) as tmp:
            tmp.write_text(to_html(df, slides_html(slides) if slides is not None else ""))
