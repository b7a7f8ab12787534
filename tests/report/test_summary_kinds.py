"""The summary of regression and survival heads beside classification ones: each kind's own columns and table."""

import numpy as np
import pandas as pd
import pytest

from tests.report.heads import head_record, mixed_records
from tileprobe.report.kinds import best_per_task, family, headline, score_of
from tileprobe.report.summary import (COLUMNS, REGRESSION_COLUMNS, SURVIVAL_COLUMNS, columns, summarize,
                                      write_summary)


def tables(text):
    """{section title or None: (header cells, body rows as lists of cells)} of a Markdown summary."""
    found, title, current = {}, None, None
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:]
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if current is None:
                current = found[title] = (cells, [])
            elif not set(line) <= set("|-: "):
                current[1].append(cells)
        else:
            current = None
    return found


def test_mixed_summary_has_each_kinds_columns_filled_for_its_rows(write_records):
    df = summarize(write_records(mixed_records()))
    assert list(df.columns) == COLUMNS + REGRESSION_COLUMNS + SURVIVAL_COLUMNS
    kinds = df.set_index("task")["kind"].groupby(level=0).first().to_dict()
    assert kinds == {"age": "regression", "os": "survival", "tumour": "binary"}
    # Best first in each task: by balanced accuracy, by r2, by c_index.
    assert df[["task", "backbone"]].values.tolist() == [
        ["age", "resnet18"], ["age", "noise"], ["os", "resnet18"], ["os", "noise"],
        ["tumour", "resnet18"], ["tumour", "noise"]]
    age = df[df["task"] == "age"]
    assert age[REGRESSION_COLUMNS].notna().all().all()
    assert age.iloc[0][["r2", "r2_std", "r2_ci_low", "r2_ci_high", "chance_r2"]].tolist() == pytest.approx(
        [0.6, 0.05, 0.5, 0.7, -0.02])
    assert age.iloc[0]["mae"] == pytest.approx(0.5) and age.iloc[0]["spearman_ci_high"] == pytest.approx(0.88)
    assert age[SURVIVAL_COLUMNS + ["balanced_accuracy"]].isna().all().all()
    os = df[df["task"] == "os"]
    assert os[SURVIVAL_COLUMNS].notna().all().all() and (os["chance_c_index"] == 0.5).all()
    assert os[REGRESSION_COLUMNS + ["balanced_accuracy"]].isna().all().all()
    assert (df.loc[df["task"] != "tumour", "n_classes"] == 0).all()
    assert (df[REGRESSION_COLUMNS + SURVIVAL_COLUMNS].dtypes == np.float64).all()


def test_markdown_and_html_have_one_table_per_kind_with_no_empty_column(write_records, tmp_path):
    df = summarize(write_records(mixed_records()))
    out = tmp_path / "report"
    write_summary(df, out / "summary.parquet", out / "summary.md", out / "summary.html")
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary.parquet"), df, check_dtype=False)
    found = tables((out / "summary.md").read_text())
    assert sorted(found) == ["Classification", "Regression", "Survival"]
    for title, task in (("Classification", "tumour"), ("Regression", "age"), ("Survival", "os")):
        header, rows = found[title]
        assert [r[0] for r in rows] == [task, task]  # only this kind's rows
        for i, name in enumerate(header):
            assert all(r[i] not in ("–", "", "nan") for r in rows), (title, name)  # no empty column
    assert found["Regression"][0][8:] == ["R²", "chance R²", "MAE", "RMSE", "Pearson r", "Spearman ρ"]
    assert found["Survival"][0][8:] == ["c-index", "chance", "Uno's c-index"]
    assert "balanced accuracy" in found["Classification"][0] and "R²" not in found["Classification"][0]
    best = found["Regression"][1][0]
    assert best[8:] == ["0.600 ± 0.050", "-0.020", "0.500 ± 0.050", "0.700 ± 0.050", "0.800 ± 0.050",
                        "0.780 ± 0.050"]
    assert found["Survival"][1][0][8:] == ["0.710 ± 0.050", "0.500", "0.690 ± 0.050"]

    page = (out / "summary.html").read_text()
    assert page.count("<table") == 3 and page.count("</tr>") == 3 + len(df)
    for title in ("Classification", "Regression", "Survival"):
        assert f"<h2>{title}</h2>" in page
    assert "–" not in page and "nan" not in page.lower()


def test_class_only_summary_has_no_value_columns_or_sections(write_records, tmp_path):
    records = [r for r in mixed_records() if r["kind"] == "binary"]
    df = summarize(write_records(records))
    assert list(df.columns) == COLUMNS and not {"r2", "c_index", "chance_r2"} & set(df.columns)
    write_summary(df, tmp_path / "s.parquet", tmp_path / "s.md", tmp_path / "s.html")
    text = (tmp_path / "s.md").read_text()
    assert "##" not in text and "R²" not in text and "c-index" not in text
    assert list(tables(text)) == [None]
    assert "<h2>" not in (tmp_path / "s.html").read_text()


def test_value_kinds_alone(write_records, tmp_path):
    df = summarize(write_records([r for r in mixed_records() if r["kind"] == "regression"]))
    assert list(df.columns) == COLUMNS + REGRESSION_COLUMNS and df["backbone"].tolist() == ["resnet18", "noise"]
    write_summary(df, tmp_path / "s.parquet", tmp_path / "s.md", tmp_path / "s.html")
    found = tables((tmp_path / "s.md").read_text())
    assert list(found) == ["Regression"]  # no empty classification table
    df = summarize(write_records([r for r in mixed_records() if r["kind"] == "survival"]), "auprc")
    assert list(df.columns) == columns("auprc") + SURVIVAL_COLUMNS and df["c_index"].tolist() == [0.71, 0.52]


def test_a_missing_score_sorts_last_and_shows_as_a_dash(write_records, tmp_path):
    records = mixed_records()[2:4]
    records[1]["overall"]["r2"] = None
    df = summarize(write_records(records))
    assert df["backbone"].tolist() == ["noise", "resnet18"] and np.isnan(df.iloc[1]["r2"])


def test_kind_families_and_ranking_scores():
    assert [family(k) for k in ("binary", "multiclass", "multilabel", None, "regression", "survival")] == [
        "classification"] * 4 + ["regression", "survival"]
    assert headline("binary", "auroc") == "auroc" and headline("regression", "auroc") == "r2"
    assert headline("survival", "auroc") == "c_index"
    assert score_of({"overall": {"mae": 0.2}}, "mae") > score_of({"overall": {"mae": 0.3}}, "mae")
    assert score_of({"overall": {"r2": None}}, "r2") == -np.inf
    heads = [(head_record("a", "regression", backbone=b, r2=s), None) for b, s in (("x", 0.1), ("y", 0.4))]
    assert best_per_task(heads, "r2")["a"][0]["backbone"] == "y"
