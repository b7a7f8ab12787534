"""Summary of every trained head: one row per metrics.json, as Parquet and as a Markdown table."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pandas as pd

from tileprobe.atomic import atomic_path
from tileprobe.learn.metrics import SINGLE_LABEL
from tileprobe.report.kinds import (CLASSIFICATION, FAMILIES, REGRESSION, REGRESSION_METRICS, SURVIVAL,
                                    SURVIVAL_METRICS, family, headline)

COLUMNS = [
    "task", "level", "kind", "backbone", "layer", "augmentation", "head",
    "n_samples", "n_groups", "n_classes",
    "balanced_accuracy", "balanced_accuracy_std", "chance_balanced_accuracy",
    "auroc", "auroc_std", "macro_f1", "macro_f1_std",
    # Confidence intervals, when metrics.json has a `ci` entry (bootstrap); NaN otherwise.
    "balanced_accuracy_ci_low", "balanced_accuracy_ci_high", "auroc_ci_low", "auroc_ci_high",
    "macro_f1_ci_low", "macro_f1_ci_high",
    # Wall seconds training one fold's head took (mean over folds): the cost side of the trade-off figure.
    "train_seconds",
    # Expected calibration error of binary and multiclass heads (lower is better), with its interval.
    "ece", "ece_std", "ece_ci_low", "ece_ci_high",
]
CI_METRICS = ("balanced_accuracy", "auroc", "macro_f1")

COUNTS = {"n_samples", "n_groups", "n_classes"}
TEXT = set(COLUMNS[:COLUMNS.index("n_samples")])
# Every metric `selection.metric` accepts; one outside CI_METRICS adds its value, std and CI columns.
METRICS = SINGLE_LABEL
HEADERS = {"auprc": "AUPRC"}


def metric_columns(metric: str) -> list[str]:
    return [metric, f"{metric}_std", f"{metric}_ci_low", f"{metric}_ci_high"]


def _family_columns(metrics: tuple[str, ...]) -> list[str]:
    """Value, std and CI of each metric; chance beside the first (the family's headline score)."""
    first, *rest = metrics
    return metric_columns(first) + [f"chance_{first}"] + [c for m in rest for c in metric_columns(m)]


# Columns a family of value kinds adds, only to a summary that has a row of that family.
REGRESSION_COLUMNS = _family_columns(REGRESSION_METRICS)
SURVIVAL_COLUMNS = _family_columns(SURVIVAL_METRICS)
FAMILY_COLUMNS = {REGRESSION: REGRESSION_COLUMNS, SURVIVAL: SURVIVAL_COLUMNS}


def columns(metric: str = "balanced_accuracy", families=()) -> list[str]:
    """The summary's columns: COLUMNS, plus the configured metric's when COLUMNS lacks it (so the default
    summary keeps its shape), plus the regression and survival columns when `families` has them."""
    if metric not in METRICS:
        raise ValueError(f"summary: metric {metric!r} is unknown; use one of {', '.join(METRICS)}.")
    names = COLUMNS if metric in CI_METRICS else COLUMNS + metric_columns(metric)
    return names + [c for f in (REGRESSION, SURVIVAL) if f in families for c in FAMILY_COLUMNS[f]]


# Markdown columns: (header, value column, std column or None).
_IDS = [
    ("task", "task", None), ("level", "level", None), ("backbone", "backbone", None), ("layer", "layer", None),
    ("augmentation", "augmentation", None), ("head", "head", None), ("n", "n_samples", None),
    ("patients", "n_groups", None),
]
_SHOWN = _IDS + [
    ("classes", "n_classes", None),
    ("balanced accuracy", "balanced_accuracy", "balanced_accuracy_std"),
    ("chance", "chance_balanced_accuracy", None),
    ("AUROC", "auroc", "auroc_std"), ("macro F1", "macro_f1", "macro_f1_std"),
]
_ECE = ("ECE", "ece", "ece_std")  # shown when some head has one (binary, multiclass; older files have none)
# Each value family's table: its own scores only, so no column stays empty for its rows.
_FAMILY_SHOWN = {
    REGRESSION: _IDS + [
        ("R²", "r2", "r2_std"), ("chance R²", "chance_r2", None), ("MAE", "mae", "mae_std"),
        ("RMSE", "rmse", "rmse_std"), ("Pearson r", "pearson", "pearson_std"),
        ("Spearman ρ", "spearman", "spearman_std"),
    ],
    SURVIVAL: _IDS + [
        ("c-index", "c_index", "c_index_std"), ("chance", "chance_c_index", None),
        ("Uno's c-index", "c_index_uno", "c_index_uno_std"),
    ],
}
# What each family's table says above it, when the summary has more than classification.
_TITLES = {CLASSIFICATION: "Classification", REGRESSION: "Regression", SURVIVAL: "Survival"}
_NOTES = {
    CLASSIFICATION: "Chance is the balanced accuracy of a head that learnt nothing; ECE is the expected "
                    "calibration error of the top class's probability (0: calibrated; lower is better).",
    REGRESSION: "Chance R² is what predicting the training folds' mean scores (about 0); higher R², Pearson r and "
                "Spearman ρ are better, lower MAE and RMSE are better.",
    SURVIVAL: "Harrell's c-index and Uno's (weighted by the inverse probability of censoring) of the predicted "
              "risk against the observed times; 0.5 is chance.",
}


def ci_bounds(ci, metric: str) -> tuple[float | None, float | None]:
    """(low, high) of `metric` from a metrics.json `ci` entry written as {metric: [low, high]} or
    {metric: {low|lower, high|upper}}; (None, None) when absent or in a shape not known here."""
    value = ci.get(metric) if isinstance(ci, dict) else None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value[0], value[1]
    if isinstance(value, dict):
        return value.get("low", value.get("lower")), value.get("high", value.get("upper"))
    return None, None


def _train_seconds(record: dict) -> float | None:
    """Seconds training one fold took; a metrics.json from before it was kept gives its cross-validation time
    per fold instead (training plus a prediction, close enough on a log axis)."""
    if record.get("train_seconds") is not None:
        return record["train_seconds"]
    folds = record.get("folds") or []
    return record["cv_seconds"] / len(folds) if record.get("cv_seconds") and folds else None


def _row(record: dict, metric: str) -> dict:
    overall, std = record.get("overall", {}), record.get("std", {})
    values = {}  # every value-family column; summarize keeps those of the families present
    for name, cols in ((m, metric_columns(m)) for m in REGRESSION_METRICS + SURVIVAL_METRICS):
        values.update(zip(cols, (overall.get(name), std.get(name), *ci_bounds(record.get("ci"), name))))
    for name in ("r2", "c_index"):
        values[f"chance_{name}"] = record.get("chance", {}).get(name)
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
        "train_seconds": _train_seconds(record),
        **dict(zip(metric_columns("ece"), (overall.get("ece"), std.get("ece"), *ci_bounds(record.get("ci"), "ece")))),
        **extra,
        **values,
    }


def summarize(metrics_paths, metric: str = "balanced_accuracy") -> pd.DataFrame:
    """One row per metrics.json, best first within each task: by `metric` (the configured `selection.metric`) for
    classification, by r2 for regression, by c_index for survival. Regression and survival columns are there
    only when some row is of that kind."""
    records = [json.loads(Path(p).read_text()) for p in metrics_paths]
    names = columns(metric, {family(r.get("kind")) for r in records})
    df = pd.DataFrame([_row(r, metric) for r in records], columns=names)
    for col in names[names.index("balanced_accuracy"):]:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")  # JSON null -> NaN
    rank = pd.Series([df.at[i, headline(df.at[i, "kind"], metric)] for i in df.index], index=df.index,
                     dtype="float64")
    order = df.assign(_rank=rank).sort_values(["task", "_rank"], ascending=[True, False], na_position="last",
                                              kind="stable").index
    return df.loc[order].reset_index(drop=True)


def families(df: pd.DataFrame) -> list[str]:
    """The kind families of the summary's rows, in FAMILIES order; classification alone for an empty one."""
    present = {family(k) for k in df["kind"]} if len(df) else {CLASSIFICATION}
    return [f for f in FAMILIES if f in present]


def _rows_of(df: pd.DataFrame, fam: str) -> pd.DataFrame:
    return df[[family(k) == fam for k in df["kind"]]] if len(df) else df


def _shown(df: pd.DataFrame, fam: str = CLASSIFICATION) -> list[tuple[str, str, str | None]]:
    """The Markdown/HTML columns of `fam`'s table: for classification the usual ones, plus any further metric the
    summary carries."""
    if fam != CLASSIFICATION:
        return _FAMILY_SHOWN[fam]
    extra = [m for m in METRICS if m not in CI_METRICS and m in df.columns]
    ece = [_ECE] if "ece" in df.columns and df["ece"].notna().any() else []
    return _SHOWN + ece + [(HEADERS.get(m, m), m, f"{m}_std") for m in extra]


def _tables(df: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame, list]]:
    """(title, rows, shown columns) per family present; no title when classification is all there is, so that
    summary looks as it always did."""
    present = families(df)
    titled = present != [CLASSIFICATION]
    return [(fam if titled else None, _rows_of(df, fam), _shown(df, fam)) for fam in present]


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
    lines = ["", "## Slides", "", f"{len(slides)} tiled ({counts}); {len(bad)} flagged.", "",
             "Full-size QC pictures (one per slide, a contact sheet per shard of images; the report shows only "
             "thumbnails): " + ", ".join(f"[{d}]({d})" for d in qc_dirs(slides, report_dir)) + "."]
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


def qc_dirs(slides: pd.DataFrame, report_dir: str | None = None) -> list[str]:
    """The folders of the QC pictures (results/qc/{tiling}/), relative to `report_dir` when given."""
    dirs = dict.fromkeys(os.path.dirname(str(qc)) for qc in slides["qc"].dropna())
    return [(os.path.relpath(d, report_dir) if report_dir else d) + "/" for d in dirs]


def slides_html(slides: pd.DataFrame) -> str:
    bad = slides[slides["flags"].fillna("") != ""]
    text = (f"<h2>Slides</h2><p>{len(slides)} tiled; {len(bad)} flagged.</p><p>Full-size QC pictures (one per "
            "slide, a contact sheet per shard of images) are not in this report, which shows only the QC gallery's "
            "thumbnails: they are under " + ", ".join(f"<code>{html.escape(d)}</code>" for d in qc_dirs(slides))
            + ".</p>")
    if len(bad):
        rows = "".join(
            f"<tr><td>{html.escape(r['tiling'])}</td><td>{html.escape(r['slide'])}</td><td>{r['n_tiles']}</td>"
            f"<td>{html.escape(_flag_text(r))}</td><td>{html.escape(str(r['qc']))}"
            "</td></tr>" for _, r in bad.iterrows())
        text += ("<p>Flagged slides are skipped by every task; the QC gallery shows each of them, marked.</p>"
                 "<table class='flagged'><tr><th>tiling</th><th>slide</th><th>tiles</th><th>flags</th>"
                 f"<th>QC picture</th></tr>{rows}</table>")
    return text


def to_markdown(df: pd.DataFrame) -> str:
    """A table per kind family present (classification, regression, survival), each with its own scores only."""
    found = _tables(df)
    lines = [
        "# tileprobe summary",
        "",
        "Scores are out-of-fold, from cross-validation grouped by patient (no patient in both train and test); "
        + ("± is the std over folds, and chance is shown beside balanced accuracy." if found[0][0] is None
           else "± is the std over folds; each kind has its own table, with chance beside its first score."),
    ]
    for fam, rows, shown in found:
        if fam is not None:
            lines += ["", f"## {_TITLES[fam]}", "", _NOTES[fam]]
        lines += [
            "",
            "| " + " | ".join(h for h, _, _ in shown) + " |",
            "|" + "|".join("---" if c in ("task", "level", "backbone", "layer", "augmentation", "head")
                           else "---:" for _, c, _ in shown) + "|",
        ]
        for _, row in rows.iterrows():
            lines.append("| " + " | ".join(_cell(row, c, s) for _, c, s in shown) + " |")
    return "\n".join(lines) + "\n"


def _html_table(rows: pd.DataFrame, shown: list) -> str:
    table = pd.DataFrame([{h: _cell(row, c, s) for h, c, s in shown} for _, row in rows.iterrows()],
                         columns=[h for h, _, _ in shown])
    return table.to_html(index=False, border=0, classes="summary")


def to_html(df: pd.DataFrame, extra: str = "") -> str:
    """The Markdown tables' rows as a standalone HTML page, for the Snakemake report (which shows HTML inline)."""
    tables = "".join(
        (f"<h2>{_TITLES[fam]}</h2><p>{html.escape(_NOTES[fam])}</p>" if fam is not None else "")
        + _html_table(rows, shown) for fam, rows, shown in _tables(df))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>tileprobe summary</title>"
        "<style>body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} td:nth-child(-n+6){text-align:left}</style>"
        "</head><body><h1>tileprobe summary</h1><p>Scores are out-of-fold, from cross-validation grouped by "
        "patient; &plusmn; is the std over folds; chance is shown beside balanced accuracy.</p>"
        + tables + extra + "</body></html>\n"
    )


def write_summary(df: pd.DataFrame, parquet_path, markdown_path, html_path=None,
                  slides: pd.DataFrame | None = None) -> None:
    """Write the summary table as Parquet, Markdown and (optionally) HTML, each atomically; `slides` (the tiling
    manifest) adds a section that counts the tiled slides and lists the flagged ones."""
    with atomic_path(parquet_path) as tmp:
        df.to_parquet(tmp, index=False)
    with atomic_path(markdown_path) as tmp:
        slides_part = slides_markdown(slides, os.path.dirname(markdown_path)) if slides is not None else ""
        tmp.write_text(to_markdown(df) + slides_part)
    if html_path is not None:
        with atomic_path(html_path) as tmp:
            tmp.write_text(to_html(df, slides_html(slides) if slides is not None else ""))
