"""Calibrating a deployed head's probabilities on its out-of-fold predictions: temperature scaling (Guo et al.,
ICML 2017; every class's log-probability divided by one T) or Platt scaling (binary: a logistic regression on
the log-odds). Fitted on the cross-validated predictions, which no fold's head saw in training, and saved with
the refit head (`model/calibration.json`), which `predict:` then applies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, logit, softmax

METHODS = ("temperature", "platt")
FILE = "calibration.json"
EPS = 1e-7


def _log_proba(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), EPS, 1.0))


def fit(method: str, truth: np.ndarray, proba: np.ndarray) -> dict:
    """Parameters that map `proba` (n, classes) closer to the class indices `truth`, by the log-loss."""
    truth = np.asarray(truth, dtype=np.int64)
    keep = (truth >= 0) & ~np.isnan(proba).any(axis=1)
    truth, proba = truth[keep], np.asarray(proba, dtype=np.float64)[keep]
    if method == "temperature":
        logp = _log_proba(proba)

        def loss(log_t):
            return -log_softmax(logp / np.exp(log_t), axis=1)[np.arange(len(truth)), truth].mean()

        result = minimize_scalar(loss, bounds=(-4, 4), method="bounded")
        return {"method": method, "temperature": float(np.exp(result.x))}
    if method == "platt":
        if proba.shape[1] != 2:
            raise ValueError("Platt scaling is for binary heads; use `calibrate: temperature` for more classes")
        from sklearn.linear_model import LogisticRegression

        z = logit(np.clip(proba[:, 1], EPS, 1 - EPS))[:, None]
        model = LogisticRegression(C=1e6).fit(z, truth)
        return {"method": method, "slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])}
    raise ValueError(f"calibration method {method!r} is unknown; use one of {', '.join(METHODS)}")


def apply(params: dict, proba: np.ndarray) -> np.ndarray:
    """Calibrated probabilities (same columns)."""
    proba = np.asarray(proba, dtype=np.float64)
    if params["method"] == "temperature":
        return softmax(_log_proba(proba) / params["temperature"], axis=1)
    p = expit(params["slope"] * logit(np.clip(proba[:, 1], EPS, 1 - EPS)) + params["intercept"])
    return np.column_stack([1 - p, p])


def save(params: dict, model_dir: str | Path) -> None:
    (Path(model_dir) / FILE).write_text(json.dumps(params, indent=1))


def load(model_dir: str | Path) -> dict | None:
    path = Path(model_dir) / FILE
    return json.loads(path.read_text()) if path.exists() else None
