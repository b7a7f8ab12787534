import json

import numpy as np
import pandas as pd
import pytest

from tileprobe.report.summary import COLUMNS, summarize, write_summary


def record(task, head, ba, ba_std, auroc=0.9, classes=("a", "b")):
    return {
        "task": task, "level": "slide", "kind": "binary", "backbone": "resnet18", "layer": "final",
        "augmentation": "none", "head": head, "n_samples": 40, "n_groups": 20, "classes": list(classes),
        "chance": {"balanced_accuracy": 1 / len(classes), "auroc": 0.5, "macro_f1": 0.33},
        "overall": {"balanced_accuracy": ba, "macro_f1": 0.8, "auroc": auroc},
        "mean": {"balanced_accuracy": ba, "macro_f1": 0.8, "auroc": auroc},
        "std": {"balanced_accuracy": ba_std, "macro_f1": 0.05, "auroc": None},
        "folds": [],
    }


@pytest.fixture
def metrics_files(tmp_path):
    records = [
        record("tumour", "logreg", 0.7, 0.1),
        record("grade", "logreg", 0.61234, 0.0456, auroc=None, classes=("x", "y", "z")),
        record("tumour", "knn", 0.91234, 0.03121),
    ]
    paths = []
    for i, r in enumerate(records):
        path = tmp_path / f"run{i}" / "metrics.json"
        path.parent.mkdir()
        path.write_text(json.dumps(r))
        paths.append(path)
    return paths


def test_summary_rows_sorted_by_task_then_score(metrics_files):
    df = summarize(metrics_files)
    assert list(df.columns) == COLUMNS
    assert df[["task", "head"]].values.tolist() == [["grade", "logreg"], ["tumour", "knn"], ["tumour", "logreg"]]
    row = df.iloc[0]
    assert row["n_classes"] == 3 and row["n_samples"] == 40 and row["n_groups"] == 20
    assert row["balanced_accuracy"] == pytest.approx(0.61234)
    assert row["balanced_accuracy_std"] == pytest.approx(0.0456)
    assert row["chance_balanced_accuracy"] == pytest.approx(1 / 3)
    assert np.isnan(row["auroc"])  # JSON null stays a number column
    assert df["auroc"].dtype == np.float64


def test_empty_summary_has_columns():
    assert list(summarize([]).columns) == COLUMNS


def test_write_summary(tmp_path, metrics_files):
    df = summarize(metrics_files)
    out = tmp_path / "report"
    write_summary(df, out / "summary.parquet", out / "summary.md")
    assert sorted(p.name for p in out.iterdir()) == ["summary.md", "summary.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary.parquet"), df, check_dtype=False)

    text = (out / "summary.md").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# ")
    assert "out-of-fold" in text and "patient" in text and "chance" in text
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(df)  # header, rule, one line per row
    assert all(line.count("|") == table[0].count("|") for line in table)
    knn = next(line for line in table if "knn" in line)
    assert "0.912 ± 0.031" in knn and "0.500" in knn and "0.900" in knn and "0.800 ± 0.050" in knn
    grade = next(line for line in table if "grade" in line)
    assert "0.612 ± 0.046" in grade and "0.333" in grade and "nan" not in grade.lower()


def test_confidence_intervals_are_read_in_either_shape(tmp_path):
    r = record("tumour", "logreg", 0.7, 0.1)
    r["ci"] = {"balanced_accuracy": [0.6, 0.8], "auroc": {"low": 0.85, "high": 0.95}, "macro_f1": "odd"}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(r))
    row = summarize([path]).iloc[0]
    assert (row["balanced_accuracy_ci_low"], row["balanced_accuracy_ci_high"]) == (0.6, 0.8)
    assert (row["auroc_ci_low"], row["auroc_ci_high"]) == (0.85, 0.95)
    assert np.isnan(row["macro_f1_ci_low"]) and np.isnan(row["macro_f1_ci_high"])  # unknown shape: no CI


def test_summary_html_has_a_row_per_head(tmp_path, metrics_files):
    df = summarize(metrics_files)
    out = tmp_path / "report"
    write_summary(df, out / "summary.parquet", out / "summary.md", out / "summary.html")
    html = (out / "summary.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("</tr>") == 1 + len(df)
    assert "0.912 ± 0.031" in html and "nan" not in html.lower()


def test_summary_has_and_sorts_by_each_accepted_metric(trained, metric, tmp_path):
    df = summarize(trained.paths, metric)
    assert list(df.columns[:len(COLUMNS)]) == COLUMNS  # the usual columns stay, in their order
    filled = [metric, f"{metric}_std", f"{metric}_ci_low", f"{metric}_ci_high"]
    assert df[filled].notna().all().all() and (df[filled].dtypes == np.float64).all()
    assert (df[f"{metric}_ci_low"] <= df[f"{metric}_ci_high"]).all()
    written = {(r["task"], r["backbone"]): r for r in (json.loads(p.read_text()) for p in trained.paths)}
    for _, row in df.iterrows():
        record = written[(row["task"], row["backbone"])]
        assert row[metric] == pytest.approx(record["overall"][metric])
        assert [row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]] == pytest.approx(record["ci"][metric])
    for _, frame in df.groupby("task"):
        assert frame[metric].is_monotonic_decreasing and frame["backbone"].iloc[0] == "good"
    assert df["task"].tolist() == ["tissue"] * 3 + ["tumour"] * 3

    write_summary(df, tmp_path / "summary.parquet", tmp_path / "summary.md", tmp_path / "summary.html")
    best = df.iloc[0]
    shown = f"{best[metric]:.3f} ± {best[f'{metric}_std']:.3f}"
    assert shown in (tmp_path / "summary.md").read_text() and shown in (tmp_path / "summary.html").read_text()


def test_default_summary_keeps_its_columns_and_order(trained):
    df = summarize(trained.paths)
    assert list(df.columns) == COLUMNS and "auprc" not in df
    pd.testing.assert_frame_equal(df, summarize(trained.paths, "balanced_accuracy"))
    assert df.groupby("task")["balanced_accuracy"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_summary_refuses_a_metric_it_cannot_sort_by(trained):
    with pytest.raises(ValueError, match="metric 'micro_f1' is unknown"):
        summarize(trained.paths, "micro_f1")


def test_summary_knows_every_metric_the_config_check_accepts():
    from tileprobe.learn.select import SELECTION_METRICS
    from tileprobe.report.summary import METRICS

    assert METRICS == SELECTION_METRICS  # both from learn.metrics, which needs no scikit-learn
