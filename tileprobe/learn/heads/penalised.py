"""What the linear heads of numeric targets share (ridge regression, penalised Cox): standardised embeddings,
a penalty strength chosen on inner folds of the training part (grouped by patient), a refit on the whole part,
and a model saved as plain numbers in `model.json`, so prediction is numpy over stored parameters and a loaded
head predicts bit-identically to the fitted one.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.preprocessing import StandardScaler

import tileprobe
from tileprobe.learn.heads.common import check_kind, inner_splits, write_model
from tileprobe.learn.heads.registry import FORMAT

INNER_FOLDS = 3


class PenalisedLinearHead:
    """A subclass sets `kinds`, `grid` (penalties, weakest first), `penalty_name`, and provides
    `_fit_linear(Z, y, penalty) -> (coef, intercept)` and `_validation_score(y_val, prediction)` (higher is
    better)."""

    input = "features"
    kinds: tuple[str, ...] = ()
    grid: tuple[float, ...] = ()
    penalty_name = "alpha"
    tuning_score = ""

    def __init__(self, seed: int = 0, kind: str = "regression", penalty: float | None = None):
        check_kind(self.name, kind, self.kinds)
        self.seed, self.task_kind, self.penalty = seed, kind, penalty
        self.penalty_: float | None = None
        self.tuning_: dict = {}
        self.classes_ = np.array([], dtype=object)
        self.mean_ = self.scale_ = self.coef_ = None
        self.intercept_ = 0.0

    def _fit_linear(self, Z: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    def _validation_score(self, y: np.ndarray, prediction: np.ndarray) -> float:
        raise NotImplementedError

    def _tune(self, Z, y, groups) -> float:
        splits = inner_splits(y, groups, INNER_FOLDS, self.seed)
        if not splits:
            return float(self.grid[len(self.grid) // 2])
        scores = {p: [] for p in self.grid}
        for train, val in splits:
            for p in self.grid:
                coef, intercept = self._fit_linear(Z[train], y[train], p)
                value = self._validation_score(y[val], Z[val] @ coef + intercept)
                if np.isfinite(value):
                    scores[p].append(value)
        means = {p: float(np.mean(v)) for p, v in scores.items() if v}
        self.tuning_ = {str(p): v for p, v in means.items()}
        if not means:
            return float(self.grid[len(self.grid) // 2])
        return max(means, key=lambda p: (means[p], p))  # ties: the stronger penalty, the simpler model

    def fit(self, X, y, groups=None):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        scaler = StandardScaler().fit(X)
        Z = scaler.transform(X)
        with warnings.catch_warnings():
            # a strong penalty on a tiny fold can stop short of the tolerance; the best penalty is refit below
            warnings.simplefilter("ignore", category=(UserWarning, RuntimeWarning))
            self.penalty_ = float(self.penalty) if self.penalty is not None else self._tune(Z, y, groups)
        self.mean_, self.scale_ = scaler.mean_, scaler.scale_
        self.coef_, self.intercept_ = self._fit_linear(Z, y, self.penalty_)
        return self

    def predict(self, X) -> np.ndarray:
        """The predicted value (ridge) or the linear risk score (Cox: higher, the event comes sooner)."""
        if self.coef_ is None:
            raise RuntimeError(f"{self.name} head is not fitted; call fit(X, y) or load_head(dir) first")
        z = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return z @ self.coef_ + self.intercept_

    def to_spec(self) -> dict:
        return {
            "format": FORMAT, "head": self.name, "kind": self.task_kind, "classes": [],
            "params": {self.penalty_name: self.penalty_, "grid": None if self.penalty is not None else list(self.grid),
                       "inner_folds": INNER_FOLDS, "seed": self.seed},
            f"tuning_{self.tuning_score}": self.tuning_,
            "n_features": int(len(self.coef_)),
            "scaler": {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()},
            "coef": self.coef_.tolist(),
            "intercept": float(self.intercept_),
            "tileprobe_version": tileprobe.__version__,
            "sklearn_version": sklearn.__version__,
        }

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict | None = None):
        penalty = spec["params"][cls.penalty_name]
        head = cls(seed=spec["params"].get("seed", 0), kind=spec["kind"], penalty=penalty)
        head.penalty_ = penalty
        head.mean_ = np.array(spec["scaler"]["mean"], dtype=np.float64)
        head.scale_ = np.array(spec["scaler"]["scale"], dtype=np.float64)
        head.coef_ = np.array(spec["coef"], dtype=np.float64)
        head.intercept_ = float(spec["intercept"])
        return head

    def save(self, directory: str | Path) -> Path:
        return write_model(directory, self.to_spec())
