"""Expected calibration error and calibration of the deployed head on out-of-fold predictions."""

import numpy as np
import pandas as pd
import pytest

from tileprobe.learn import calibration
from tileprobe.learn.data import TaskData
from tileprobe.learn.metrics import expected_calibration_error
from tileprobe.learn.predict import predict_slide
from tileprobe.learn.train import run_task


def test_ece_equals_a_hand_computed_value():
    truth = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    # confidences .9 .8 (right), .6 .55 (wrong), each alone in its bin: (.1 + .2 + .6 + .55) / 4
    assert expected_calibration_error(truth, proba) == pytest.approx(1.45 / 4)
    # two rows in one bin (13/15 to 14/15) average before the gap is taken: |1/2 - .915|
    assert expected_calibration_error(np.array([0, 1]), np.array([[0.91, 0.09], [0.92, 0.08]])) == pytest.approx(0.415)
    assert expected_calibration_error(np.array([1, 1]), np.array([[0.0, 1.0], [0.0, 1.0]])) == 0.0


def overconfident(n=2000, seed=0, classes=2):
    """Labels drawn from softmax(z); the 'head' reports softmax(4 z): right on average, far too sure."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, classes))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    truth = np.array([rng.choice(classes, p=row) for row in p])
    sure = np.exp(4 * z) / np.exp(4 * z).sum(axis=1, keepdims=True)
    return truth, sure


@pytest.mark.parametrize("method, classes", [("temperature", 2), ("temperature", 3), ("platt", 2)])
def test_calibration_fitted_on_one_half_lowers_the_ece_of_the_other(method, classes):
    truth, proba = overconfident(classes=classes)
    params = calibration.fit(method, truth[:1000], proba[:1000])
    before = expected_calibration_error(truth[1000:], proba[1000:])
    after = expected_calibration_error(truth[1000:], calibration.apply(params, proba[1000:]))
    assert before > 0.1 and after < before / 2
    if method == "temperature":
        assert params["temperature"] == pytest.approx(4, rel=0.25)  # it undoes the sharpening
        # order is kept: the same predicted class
        assert (calibration.apply(params, proba).argmax(1) == proba.argmax(1)).all()


def test_platt_scaling_is_for_binary_heads():
    truth, proba = overconfident(classes=3)
    with pytest.raises(ValueError, match="Platt scaling is for binary heads"):
        calibration.fit("platt", truth, proba)


def test_a_calibrated_task_writes_ece_and_its_calibration_and_predict_uses_it(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    y = np.array(["neg", "pos"] * (n // 2), dtype=object)
    X = (rng.normal(size=(n, 8)) + 0.8 * (y == "pos")[:, None]).astype(np.float32)
    data = TaskData(X=X, y=y, groups=np.array([f"p{i}" for i in range(n)], dtype=object),
                    ids=pd.DataFrame({"slide": [f"s{i}" for i in range(n)]}), kind="binary")
    record = run_task(data, "knn", {"folds": 3, "bootstrap": 50}, tmp_path, {"head": "knn"}, calibrate="platt")
    assert 0 <= record["overall"]["ece"] <= 1 and len(record["ci"]["ece"]) == 2
    assert record["calibration"]["method"] == "platt"
    assert {"ece_out_of_fold", "ece_after_in_sample", "slope", "intercept"} <= set(record["calibration"])
    assert (tmp_path / "model" / calibration.FILE).exists()
    task = {"level": "slide", "label": "y", "kind": "binary"}
    table = predict_slide(tmp_path / "model", "t", task, "new", X[:5])
    from tileprobe.learn.heads.registry import load_head

    raw = load_head(tmp_path / "model").predict_proba(X[:5].mean(axis=0, dtype=np.float64)[None])
    expected = calibration.apply(calibration.load(tmp_path / "model"), raw)
    np.testing.assert_allclose(table[["prob_neg", "prob_pos"]].to_numpy(), expected)
    assert table["calibration"].tolist() == ["platt"]
