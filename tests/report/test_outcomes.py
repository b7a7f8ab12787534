"""Figures of regression and survival heads, and the class figures leaving them out."""

import numpy as np
import pandas as pd
import pytest
from sksurv.compare import compare_survival
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

from tests.report.heads import (class_predictions, head_record, mixed_records, regression_predictions,
                                survival_predictions)
from tests.report.test_plots import picture
from tileprobe.report.plots.curves import confusion, roc_pr
from tileprobe.report.plots.outcomes import first_repeat, kaplan_meier, logrank_p, predicted_vs_true, risk_groups
from tileprobe.report.plots.scores import axis_range, layer_depth, metric_bars
from tileprobe.report.summary import summarize


def mixed_heads():
    """Each mixed record with predictions of its kind; the better regression head predicts with less noise."""
    heads = []
    for i, meta in enumerate(mixed_records()):
        good = meta["backbone"] != "noise"
        if meta["kind"] == "regression":
            predictions = regression_predictions(noise=0.3 if good else 3.0, seed=i, repeats=2)
        elif meta["kind"] == "survival":
            predictions = survival_predictions(separation=3.0 if good else 1.0, seed=i, repeats=2)
        else:
            predictions = class_predictions(seed=i)
        heads.append((meta, predictions))
    return heads


def test_predicted_vs_true_draws_each_regression_tasks_best_head(tmp_path, monkeypatch):
    import tileprobe.report.plots.outcomes as outcomes

    heads = mixed_heads()
    second = head_record("weight", "regression", r2=0.3, mae=1, rmse=1, pearson=0.5, spearman=0.5)
    heads.append((second, regression_predictions(seed=9)))
    points = []
    real = outcomes.plt.Axes.scatter
    monkeypatch.setattr(outcomes.plt.Axes, "scatter",
                        lambda ax, x, y, *a, **k: points.append((list(x), list(y))) or real(ax, x, y, *a, **k))
    drawn = predicted_vs_true(heads, tmp_path / "scatter.png")
    assert drawn.panels == ["task age\nresnet18/final/none/logreg\nR² 0.600 (n=50)",
                            "task weight\nresnet18/final/none/logreg\nR² 0.300 (n=50)"]
    # The best age head (r2 0.6, the fourth), repeat 0 only: one point per sample.
    best = first_repeat(heads[3][1])
    assert points[0] == (best["y_true"].tolist(), best["y_pred"].tolist())
    picture(drawn.path)


def test_kaplan_meier_splits_at_the_training_median_and_tests_with_sksurv(tmp_path, monkeypatch):
    import tileprobe.report.plots.outcomes as outcomes

    predictions = survival_predictions(n=120, separation=4.0, seed=1, repeats=2)
    groups = risk_groups(predictions)
    rows = predictions[predictions["repeat"] == 0]
    assert len(groups) == 120 and groups["high"].tolist() == (rows["risk"] > rows["risk_threshold"]).tolist()
    p = logrank_p(groups)
    y = Surv.from_arrays(event=rows["event"].astype(bool), time=rows["time"])
    assert p == compare_survival(y, (rows["risk"] > rows["risk_threshold"]).to_numpy())[1]
    assert p < 1e-4  # well-separated halves
    assert logrank_p(risk_groups(survival_predictions(n=120, separation=1.0, seed=0))) > 0.1  # halves alike

    steps = []
    real = outcomes.plt.Axes.step
    monkeypatch.setattr(outcomes.plt.Axes, "step",
                        lambda ax, x, y, *a, **k: steps.append((k["label"], list(x), list(y)))
                        or real(ax, x, y, *a, **k))
    meta = head_record("os", "survival", c_index=0.75, c_index_uno=0.7)
    drawn = kaplan_meier([(meta, predictions)], tmp_path / "km.png")
    assert drawn.panels == [f"task os\nresnet18/final/none/logreg\nc-index 0.750, log-rank p = {p:.1e}"]
    high = rows["risk"] > rows["risk_threshold"]
    events = {"low": int(rows.loc[~high, "event"].sum()), "high": int(rows.loc[high, "event"].sum())}
    assert [label for label, _, _ in steps] == [f"low risk (n={(~high).sum()}, {events['low']} events)",
                                                f"high risk (n={high.sum()}, {events['high']} events)"]
    times, survival = kaplan_meier_estimator(rows.loc[high, "event"].astype(bool), rows.loc[high, "time"])
    assert steps[1][1] == [0.0, *times] and steps[1][2] == pytest.approx([1.0, *survival])
    at = float(np.median(rows["time"]))  # the low-risk half outlives the high-risk half
    low_at, high_at = (y[np.searchsorted(x, at, side="right") - 1] for _, x, y in steps)
    assert low_at > high_at + 0.2
    picture(drawn.path)


def test_kaplan_meier_draws_each_survival_tasks_best_head(tmp_path):
    heads = mixed_heads()
    heads.append((head_record("pfs", "survival", c_index=0.6, c_index_uno=0.6), survival_predictions(seed=5)))
    drawn = kaplan_meier(heads, tmp_path / "km.png")
    assert [t.split("\n")[:2] for t in drawn.panels] == [["task os", "resnet18/final/none/logreg"],
                                                         ["task pfs", "resnet18/final/none/logreg"]]
    assert drawn.panels[0].split("\n")[2].startswith("c-index 0.710, log-rank p = ")


def test_one_risk_group_only_has_no_p_value(tmp_path):
    predictions = survival_predictions(seed=2).assign(risk_threshold=5.0)  # nobody above the threshold
    assert np.isnan(logrank_p(risk_groups(predictions)))
    drawn = kaplan_meier([(head_record("os", "survival", c_index=0.5), predictions)], tmp_path / "km.png")
    assert drawn.panels[0].endswith("log-rank p n/a")


def test_outcome_figures_without_their_kind_still_write_a_picture(tmp_path):
    heads = [(m, p) for m, p in mixed_heads() if m["kind"] == "binary"]
    for draw, name in ((predicted_vs_true, "scatter.png"), (kaplan_meier, "km.png")):
        drawn = draw(heads, tmp_path / name)
        assert drawn.panels == [] and drawn.path.exists()
        assert draw([], tmp_path / name).path.exists()


def test_roc_pr_and_confusion_leave_value_kinds_out(tmp_path):
    heads = mixed_heads()
    drawn = roc_pr(heads, tmp_path / "roc_pr.png")
    assert drawn.panels == ["task tumour: ROC", "task tumour: precision-recall"]
    drawn = confusion(heads, "balanced_accuracy", tmp_path / "confusion.png")
    assert drawn.panels == ["task tumour\nresnet18/final/none/logreg"]
    values = [(m, p) for m, p in heads if m["kind"] != "binary"]
    for draw in (lambda: roc_pr(values, tmp_path / "r.png"), lambda: confusion(values, "auroc", tmp_path / "c.png")):
        drawn = draw()
        assert drawn.panels == [] and drawn.path.exists()


def test_score_figures_draw_r2_and_c_index_for_value_tasks(write_records, tmp_path, monkeypatch):
    import tileprobe.report.plots.scores as scores

    summary = summarize(write_records(mixed_records()), "auroc")
    widths, lines, chances = [], [], []
    real_barh, real_plot, real_axvline = scores.plt.Axes.barh, scores.plt.Axes.plot, scores.plt.Axes.axvline
    monkeypatch.setattr(scores.plt.Axes, "barh",
                        lambda ax, y, w, *a, **k: widths.append(list(w)) or real_barh(ax, y, w, *a, **k))
    monkeypatch.setattr(scores.plt.Axes, "plot",
                        lambda ax, x, y, *a, **k: lines.append(list(y)) or real_plot(ax, x, y, *a, **k))
    monkeypatch.setattr(scores.plt.Axes, "axvline",
                        lambda ax, x, *a, **k: chances.append(x) or real_axvline(ax, x, *a, **k))
    drawn = metric_bars(summary, "auroc", tmp_path / "bars.png")
    assert drawn.panels == ["task age", "task os", "task tumour"]
    assert widths == [[-0.1, 0.6], [0.52, 0.71], [0.6, 0.9]]  # r2, c_index, the configured auroc
    assert chances == [-0.02, 0.5]  # each value kind's chance, from the summary (the summary has no chance AUROC)
    picture(drawn.path)
    drawn = layer_depth(summary, {}, "auroc", tmp_path / "depth.png")
    assert drawn.panels == ["task age", "task os", "task tumour"]
    assert sorted(v for line in lines for v in line) == pytest.approx(sorted([-0.1, 0.6, 0.52, 0.71, 0.6, 0.9]))


def test_a_negative_r2_widens_the_axis_below_zero():
    assert axis_range([0.2, 0.9], [0.1, 0.1]) == (0.0, 1.05)  # scores of 0..1 keep today's axis
    low, high = axis_range([-0.5, 0.6], [0.1, 0.1])
    assert low < -0.6 and high == 1.05
    assert axis_range(pd.Series([np.nan, -0.2]))[0] < -0.2


def test_figure_outcomes_job_reads_value_heads_and_writes_both_figures(tmp_path):
    import json

    from tileprobe.workflow.jobs import figure_outcomes

    metrics, predictions = [], []
    for i, (meta, frame) in enumerate(mixed_heads()):
        folder = tmp_path / f"head{i}"
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps(meta))
        frame.to_parquet(folder / "predictions.parquet")
        metrics.append(str(folder / "metrics.json"))
        predictions.append(str(folder / "predictions.parquet"))
    figure_outcomes(metrics, predictions, str(tmp_path / "out/predicted_vs_true.png"), str(tmp_path / "out/km.png"))
    picture(tmp_path / "out/predicted_vs_true.png")
    picture(tmp_path / "out/km.png")


def test_every_report_figure_rule_is_asked_for_by_the_report():
    """A figure rule in rules/report.smk whose output report_figures() (rules/common.smk) leaves out never runs."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    made = set(re.findall(r'figure\("([a-z_]+)"', (root / "rules/report.smk").read_text()))
    common = (root / "rules/common.smk").read_text()
    body = common[common.index("def report_figures("):]
    listed = set(re.findall(r'"([a-z_]+)"', body[:body.index("return")]))
    assert {"predicted_vs_true", "kaplan_meier"} <= made
    assert made - {"selection"} <= listed, sorted(made - listed)
