"""Regression and survival metrics against values worked out by hand, and against scikit-survival."""

import numpy as np
import pytest
from sksurv.metrics import concordance_index_censored, concordance_index_ipcw
from sksurv.util import Surv

from tileprobe.learn.evaluate import metrics, score
from tileprobe.learn.metrics import harrell_c, regression_metrics, uno_c


def test_regression_metrics_equal_hand_computed_values():
    truth, pred = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.5, 5.0])
    got = regression_metrics(truth, pred)
    # errors .5, 0, -.5, 1; SST around the mean 2.5 is 5, SSE 1.5
    assert got["mae"] == pytest.approx(0.5)
    assert got["rmse"] == pytest.approx(np.sqrt(0.375))
    assert got["r2"] == pytest.approx(0.7)
    assert got["pearson"] == pytest.approx(5.5 / np.sqrt(5 * 7.25))
    assert got["spearman"] == pytest.approx(1.0)  # the same order


def test_spearman_uses_average_ranks_for_ties():
    truth, pred = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 1.0, 2.0, 3.0])
    # ranks 1..4 against 1.5, 1.5, 3, 4
    a, b = np.array([1, 2, 3, 4]) - 2.5, np.array([1.5, 1.5, 3, 4]) - 2.5
    expected = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
    assert regression_metrics(truth, pred)["spearman"] == pytest.approx(expected)


def test_undefined_regression_scores_are_nan_not_errors():
    got = regression_metrics(np.array([2.0, 2.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    assert np.isnan(got["r2"]) and np.isnan(got["pearson"]) and got["mae"] == pytest.approx(2 / 3)


def test_harrell_c_equals_hand_count():
    time, event = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 0, 1, 0])
    # comparable pairs: (0,1) (0,2) (0,3) (2,3); the risk orders the first three right, the last wrong
    assert harrell_c(time, event, np.array([4.0, 3.0, 1.0, 2.0])) == pytest.approx(3 / 4)
    # a tie in risk counts one half
    assert harrell_c(time, event, np.array([4.0, 4.0, 1.0, 2.0])) == pytest.approx(2.5 / 4)
    assert np.isnan(harrell_c(time, np.zeros(4), time))  # no event: no comparable pair


@pytest.mark.parametrize("seed", range(3))
def test_harrell_and_uno_c_equal_scikit_survival(seed):
    rng = np.random.default_rng(seed)
    n = 300
    time = rng.exponential(size=n).round(1)  # rounding makes tied times
    event = rng.random(n) < 0.6
    risk = rng.normal(size=n).round(1) - time
    assert harrell_c(time, event, risk) == pytest.approx(concordance_index_censored(event, time, risk)[0], abs=1e-12)
    outcome = Surv.from_arrays(event, time)
    expected = concordance_index_ipcw(outcome, outcome, risk, tau=time[event].max())[0]
    assert uno_c(time, event, risk) == pytest.approx(expected)


def test_harrell_c_in_blocks_equals_one_block(monkeypatch):
    from tileprobe.learn import metrics as m

    rng = np.random.default_rng(1)
    time, event, risk = rng.exponential(size=500), rng.random(500) < 0.5, rng.normal(size=500)
    whole = harrell_c(time, event, risk)
    monkeypatch.setattr(m, "PAIR_BLOCK", 7)
    assert harrell_c(time, event, risk) == pytest.approx(whole, abs=1e-12)


def test_metrics_dispatch_on_kind():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics(y, y[:, None] + 1, [], "regression")["mae"] == pytest.approx(1.0)
    outcome = np.column_stack([y, [1, 1, 1, 1]])
    assert score(outcome, -y[:, None], "survival")["c_index"] == 1.0  # earlier death, higher risk
