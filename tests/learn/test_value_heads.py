"""Heads of regression and survival tasks: they learn what is there, save and load exactly, and run_task
writes each kind's own outputs."""

import numpy as np
import pandas as pd
import pytest

from tileprobe.learn.data import TaskData
from tileprobe.learn.evaluate import fit_head
from tileprobe.learn.heads.common import HeadError
from tileprobe.learn.heads.registry import load_head, make_head
from tileprobe.learn.metrics import harrell_c
from tileprobe.learn.train import run_task

EVALUATION = {"folds": 3, "repeats": 1, "seed": 0, "bootstrap": 50}


def linear_task(n=90, d=16, seed=0, bags=False) -> TaskData:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = X @ rng.normal(size=d) + 0.2 * rng.normal(size=n)
    tiles = [X[i] + 0.05 * rng.normal(size=(4, d)).astype(np.float32) for i in range(n)] if bags else None
    return TaskData(X=X, y=y, groups=np.array([f"p{i // 2}" for i in range(n)], dtype=object),
                    ids=pd.DataFrame({"slide": [f"s{i}" for i in range(n)]}), kind="regression", bags=tiles)


def hazard_task(n=150, d=8, seed=0, bags=False) -> TaskData:
    """Proportional hazards: the log hazard is linear in the features; about a third censored."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    log_hazard = X @ rng.normal(size=d) * 0.8
    death = rng.exponential(np.exp(-log_hazard))
    censor = rng.exponential(2.5 * np.median(death), size=n)
    y = np.column_stack([np.minimum(death, censor), (death <= censor).astype(float)])
    tiles = [X[i] + 0.05 * rng.normal(size=(4, d)).astype(np.float32) for i in range(n)] if bags else None
    data = TaskData(X=X, y=y, groups=np.array([f"p{i}" for i in range(n)], dtype=object),
                    ids=pd.DataFrame({"slide": [f"s{i}" for i in range(n)]}), kind="survival", bags=tiles)
    data.oracle = harrell_c(y[:, 0], y[:, 1], log_hazard)
    return data


def test_ridge_learns_a_linear_target(tmp_path):
    data = linear_task()
    record = run_task(data, "ridge", EVALUATION, tmp_path, {"task": "t", "head": "ridge", "kind": "regression"})
    assert record["overall"]["r2"] > 0.9
    assert record["ci"]["r2"][0] > 0.8
    # the baseline is the training folds' mean: R² near zero (slightly below: it is out of fold)
    assert -0.2 < record["chance"]["r2"] <= 0.0 and record["chance"]["pearson"] == 0.0
    assert record["chance"]["mae"] > 2 * record["overall"]["mae"]
    assert record["classes"] == [] and set(record["target"]) == {"mean", "std", "min", "max"}
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert {"y_true", "y_pred"} <= set(predictions.columns)
    assert not [c for c in predictions.columns if c.startswith("prob_")]
    assert predictions["y_true"].dtype == np.float64


@pytest.mark.parametrize("head", ["knn", "mlp", "mlp2"])
def test_feature_heads_regress(head, tmp_path):
    data = linear_task(d=4, n=120)
    record = run_task(data, head, EVALUATION, tmp_path, {"task": "t", "head": head, "kind": "regression"})
    assert record["overall"]["r2"] > 0.5 and record["overall"]["pearson"] > 0.75


@pytest.mark.parametrize("head", ["ridge", "knn", "mlp", "meanpool", "abmil"])
def test_saved_regression_heads_predict_like_the_fitted_ones(head, tmp_path):
    data = linear_task(n=40, bags=True)
    inputs = data.bags if head in ("meanpool", "abmil") else data.X
    fitted = fit_head(head, data, np.arange(len(data)), 0, None, 0)
    fitted.save(tmp_path)
    assert load_head(tmp_path).predict(inputs) == pytest.approx(fitted.predict(inputs), rel=1e-6, abs=1e-6)
    assert fitted.predict(inputs).shape == (40,)


def test_bag_heads_regress_from_tiles(tmp_path):
    data = linear_task(n=60, d=6, bags=True)
    record = run_task(data, "meanpool", EVALUATION, tmp_path, {"task": "t", "head": "meanpool", "kind": "regression"})
    assert record["overall"]["r2"] > 0.9  # mean pooling + ridge


def test_cox_head_ranks_proportional_hazards(tmp_path):
    data = hazard_task()
    record = run_task(data, "cox", EVALUATION, tmp_path, {"task": "t", "head": "cox", "kind": "survival"})
    assert record["overall"]["c_index"] > 0.75
    assert record["overall"]["c_index"] > data.oracle - 0.06  # close to the true risk's own concordance
    assert record["chance"] == {"c_index": 0.5, "c_index_uno": 0.5}
    assert record["ci"]["c_index"][0] > 0.65 and record["events"] + record["censored"] == len(data)
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert {"time", "event", "risk", "risk_threshold"} <= set(predictions.columns)
    assert set(predictions["event"]) == {0, 1}


def test_risk_threshold_is_the_fold_heads_median_on_its_training_part(tmp_path):
    data = hazard_task(n=60)
    run_task(data, "cox", EVALUATION, tmp_path, {"task": "t", "head": "cox", "kind": "survival"})
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    fold = predictions[predictions["fold"] == 0]
    train = np.flatnonzero(predictions["fold"].to_numpy() != 0)
    head = fit_head("cox", data, train, 0, None, 0)
    assert fold["risk_threshold"].unique() == pytest.approx([np.median(head.predict(data.X[train]))])
    assert fold["risk"].to_numpy() == pytest.approx(head.predict(data.X[fold.index.to_numpy()]))


@pytest.mark.parametrize("head", ["abmil", "meanpool"])
def test_bag_heads_learn_risk(head, tmp_path):
    data = hazard_task(n=90, d=4, bags=True)
    record = run_task(data, head, EVALUATION, tmp_path, {"task": "t", "head": head, "kind": "survival"})
    assert record["overall"]["c_index"] > 0.65


def test_heads_refuse_kinds_they_cannot_learn():
    with pytest.raises(HeadError, match="ridge.*does not handle `kind: binary`"):
        make_head("ridge", kind="binary")
    with pytest.raises(HeadError, match="cox.*does not handle `kind: regression`"):
        make_head("cox", kind="regression")
    with pytest.raises(HeadError, match="logreg.*`kind: survival`"):
        make_head("logreg", kind="survival")


@pytest.mark.parametrize("kind", ["regression", "survival"])
def test_label_free_augmentation_trains_value_heads_on_training_rows_only(kind, tmp_path):
    from tileprobe import augment

    data = linear_task(n=60) if kind == "regression" else hazard_task(n=60)
    seen = []
    noise = augment.in_fold(augment.resolve("noise", {"kind": "gaussian_noise", "sigma": 0.1}))

    def spy(X, y, groups, seed):
        seen.append(len(X))
        X, y, groups = noise(X, y, groups, seed)
        assert np.asarray(y, dtype=np.float64).shape[1:] == data.y.shape[1:]  # targets copied with their rows
        return X, y, groups

    head = "ridge" if kind == "regression" else "cox"
    record = run_task(data, head, EVALUATION, tmp_path, {"task": "t", "head": head, "kind": kind}, augment=spy)
    assert seen[:3] == [40, 40, 40] and seen[3] == 60  # three training parts, then the refit on everything
    assert record["overall"]["r2" if kind == "regression" else "c_index"] > 0.7
