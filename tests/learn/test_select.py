import numpy as np
import pandas as pd
import pytest

from tileprobe.config.check import check_config
from tileprobe.learn.data import TaskData
from tileprobe.learn.heads.registry import head_names
from tileprobe.learn.select import (
    COLUMNS,
    SelectionError,
    agreement,
    best,
    check_selection,
    held_out_split,
    rank,
    score_candidate,
    select,
)


def task_data(signal: float, seed: int = 0, patients: int = 16, per_patient: int = 12, dim: int = 8) -> TaskData:
    """Three classes, one per patient; `signal` scales how far the class means sit apart (0 = pure noise)."""
    rng = np.random.default_rng(seed)
    classes = np.array(["a", "b", "c"])
    y = np.repeat(classes[np.arange(patients) % 3], per_patient).astype(object)
    groups = np.repeat([f"p{i}" for i in range(patients)], per_patient).astype(object)
    centres = rng.normal(size=(3, dim)) * signal
    X = rng.normal(size=(len(y), dim)) + centres[np.searchsorted(classes, y.astype(str))]
    return TaskData(X=X.astype(np.float32), y=y, groups=groups, ids=pd.DataFrame({"slide": groups}))


def test_held_out_split_keeps_patients_apart():
    data = task_data(1.0)
    train, test = held_out_split(data, 0.25, seed=0)
    assert set(data.groups[train]).isdisjoint(data.groups[test])
    assert 0.15 < len(test) / len(data) < 0.35
    assert set(data.y[test]) == {"a", "b", "c"}  # stratified


def test_informative_backbone_ranks_above_noise():
    candidates = {
        ("noise", "final"): task_data(0.0, seed=1),
        ("good", "shallow"): task_data(0.6, seed=2),
        ("good", "deep"): task_data(3.0, seed=3),
    }
    ranked = select("tissue", candidates, "balanced_accuracy")
    assert list(ranked.columns) == COLUMNS
    assert len(ranked) == 6 and set(ranked["probe"]) == {"knn", "logreg"}
    order = ranked.drop_duplicates(["backbone", "layer"])[["backbone", "layer", "rank"]].values.tolist()
    assert order == [["good", "deep", 1], ["good", "shallow", 2], ["noise", "final", 3]]
    assert best(ranked) == ("good", "deep")
    noise = ranked[ranked["backbone"] == "noise"]
    assert (noise["score"] < 0.6).all()  # near chance (1/3) on held-out patients
    deep = ranked[ranked["layer"] == "deep"]
    assert (deep["score"] > 0.9).all()
    # Each CI brackets its score and is a real interval from the patient bootstrap.
    assert (ranked["ci_low"] <= ranked["score"] + 1e-9).all() and (ranked["score"] <= ranked["ci_high"] + 1e-9).all()
    assert (noise["ci_high"] > noise["ci_low"]).all()
    assert np.allclose(ranked.groupby(["backbone", "layer"])["score"].mean().sort_index(),
                       ranked.drop_duplicates(["backbone", "layer"]).set_index(["backbone", "layer"])["proxy_score"]
                       .sort_index())



def test_proxy_intervals_are_unchanged_by_the_shared_bootstrap():
    """The numbers the earlier, separate bootstrap of select.py gave on this data (same seed)."""
    expected = {"balanced_accuracy": [("knn", 0.478125, 0.6666666666666666),
                                      ("logreg", 0.5395833333333333, 0.7916666666666666)],
                "auroc": [("knn", 0.6957947530864197, 0.7399691358024691),
                          ("logreg", 0.7322530864197532, 0.7897376543209876)]}
    for metric, rows in expected.items():
        got = score_candidate(task_data(0.5, seed=4), metric, {"bootstrap": 40, "seed": 2})
        assert [(r["probe"], r["ci_low"], r["ci_high"]) for r in got] == rows, metric


def test_ties_share_a_rank_and_best_is_stable():
    scores = pd.DataFrame({"backbone": ["b", "a", "c"], "layer": ["x", "x", "x"], "probe": "knn",
                           "score": [0.8, 0.8, 0.5]})
    ranked = rank(scores)
    assert ranked["rank"].tolist() == [1, 1, 3]
    assert best(ranked) == ("a", "x")


def test_best_of_empty_selection_names_the_fix():
    with pytest.raises(SelectionError, match="ranks no backbone"):
        best(pd.DataFrame(columns=COLUMNS), "results/selection/tissue.parquet")


def test_unknown_metric_is_refused():
    with pytest.raises(SelectionError, match="selection.metric"):
        select("tissue", {("a", "final"): task_data(1.0)}, "accuracy")


def test_agreement_is_spearman_per_task():
    selection = pd.DataFrame({"backbone": ["a", "b", "c"], "layer": "final", "proxy_score": [0.9, 0.6, 0.3]})
    summary = pd.DataFrame({
        "task": ["same"] * 3 + ["reversed"] * 3 + ["single"],
        "backbone": ["a", "b", "c", "a", "b", "c", "a"],
        "layer": "final",
        "balanced_accuracy": [0.8, 0.7, 0.4, 0.3, 0.5, 0.9, 0.7],
    })
    rho = agreement(selection, summary, "balanced_accuracy").set_index("task")
    assert rho.loc["same", "spearman_rho"] == pytest.approx(1.0)
    assert rho.loc["reversed", "spearman_rho"] == pytest.approx(-1.0)
    assert rho.loc["single", "n_candidates"] == 1 and np.isnan(rho.loc["single", "spearman_rho"])


def test_agreement_of_value_tasks_uses_their_own_score():
    selection = pd.DataFrame({"backbone": ["a", "b", "c"], "layer": "final", "proxy_score": [0.9, 0.6, 0.3]})
    summary = pd.DataFrame({
        "task": ["age"] * 3 + ["os"] * 3, "kind": ["regression"] * 3 + ["survival"] * 3,
        "backbone": ["a", "b", "c"] * 2, "layer": "final", "balanced_accuracy": np.nan,
        "r2": [0.6, 0.4, 0.1, np.nan, np.nan, np.nan], "c_index": [np.nan] * 3 + [0.55, 0.6, 0.7],
    })
    rho = agreement(selection, summary, "balanced_accuracy").set_index("task")
    assert rho.loc["age", "spearman_rho"] == pytest.approx(1.0) and rho.loc["age", "metric"] == "r2"
    assert rho.loc["os", "spearman_rho"] == pytest.approx(-1.0) and rho.loc["os", "metric"] == "c_index"


def demo_like_config(**task_overrides):
    config = {
        "demo": {},
        "tilings": {"wsi": {"mpp": 1.0}},
        "backbones": {"r": {"model": "resnet18"}, "n": {"model": "noise:8"}},
        "tasks": {
            "proxy": {"level": "tile", "label": "tissue", "kind": "multiclass", "tiling": "wsi"},
            "target": {"level": "slide", "label": "tumor", "kind": "binary", "tiling": "wsi", "backbones": "best"},
        },
        "selection": {"proxy_task": "proxy"},
    }
    for task, spec in task_overrides.items():
        config["tasks"][task].update(spec)
    return config


def test_backbones_best_passes_the_config_checks():
    config = check_config(demo_like_config(), known_heads=head_names())
    check_selection(config)
    assert config["tasks"]["target"]["backbones"] == "best"
    assert config["tasks"]["proxy"]["backbones"] == ["n", "r"]
    assert config["selection"]["metric"] == "balanced_accuracy"


def test_backbones_best_without_a_proxy_task_says_the_fix():
    config = demo_like_config()
    del config["selection"]
    with pytest.raises(SelectionError, match=r"task `target`.*selection: \{proxy_task"):
        check_selection(check_config(config, known_heads=head_names()))


def test_proxy_task_cannot_itself_be_best():
    config = check_config(demo_like_config(proxy={"backbones": "best"}), known_heads=head_names())
    with pytest.raises(SelectionError, match="task `proxy` is `selection.proxy_task`"):
        check_selection(config)


def test_unknown_selection_metric_names_the_key():
    config = demo_like_config()
    config["selection"]["metric"] = "acc"
    with pytest.raises(SelectionError, match="selection.metric"):
        check_selection(check_config(config, known_heads=head_names()))


@pytest.mark.parametrize("metric", ["micro_f1", "micro_auroc"])
def test_multilabel_only_metrics_are_refused_with_the_reason(metric):
    config = demo_like_config()
    config["selection"]["metric"] = metric
    with pytest.raises(SelectionError, match=f"`selection.metric` '{metric}' exists for multilabel tasks only.*"
                                             "use one of balanced_accuracy, macro_f1, auroc, auprc"):
        check_selection(check_config(config, known_heads=head_names()))


def test_agreement_names_a_metric_the_summary_lacks():
    selection = pd.DataFrame({"backbone": ["a", "b"], "layer": "final", "proxy_score": [0.9, 0.6]})
    summary = pd.DataFrame({"task": "t", "backbone": ["a", "b"], "layer": "final", "balanced_accuracy": [0.8, 0.7]})
    with pytest.raises(SelectionError, match="summary has no 'auprc' column"):
        agreement(selection, summary, "auprc")


def test_noise_backbone_is_reproducible_but_carries_nothing_about_the_image():
    from tileprobe.embed.backbone import BackboneError
    from tileprobe.embed.load import load_backbone

    backbone = load_backbone({"model": "noise:16"}, 32, "cpu")
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 60, (100, 32, 32, 3), dtype=np.uint8)
    bright = rng.integers(195, 256, (100, 32, 32, 3), dtype=np.uint8)
    a, b = backbone.embed(dark)["final"], backbone.embed(bright)["final"]
    assert a.shape == (100, 16)
    assert np.array_equal(a, backbone.embed(dark)["final"])  # reruns give the same features
    assert np.array_equal(a[::-1], backbone.embed(dark[::-1].copy())["final"])  # whatever the batch order
    # Dark and bright tiles are told apart by any real backbone; here no feature separates them.
    separation = np.abs(a.mean(0) - b.mean(0)) / np.sqrt((a.var(0) + b.var(0)) / 2)
    assert separation.max() < 0.6
    with pytest.raises(BackboneError, match="noise:64"):
        load_backbone({"model": "noise:wide"}, 32, "cpu")
