"""Logistic regression on standardised embeddings: the linear probe, every benchmark's baseline.

The L2 strength C is chosen on inner folds of the training part (grouped by patient when groups are given)
by the Brier score, then the model is refit on the whole training part. Multilabel tasks get one binary model
per term with a shared C. sklearn fits; prediction is plain numpy over the stored parameters, so a fitted head
and one loaded from `model.json` give bit-identical probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sklearn
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import tileprobe
from tileprobe.learn.heads.common import brier, check_kind, inner_splits, one_hot, targets, write_model
from tileprobe.learn.heads.registry import FORMAT, register_head

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
INNER_FOLDS = 3


def _scores_to_proba(scores: np.ndarray, multilabel: bool) -> np.ndarray:
    if multilabel:
        return expit(scores)
    if scores.shape[1] == 1:
        # sklearn's binary model has one coefficient row, for the second class.
        p = expit(scores[:, 0])
        return np.column_stack([1.0 - p, p])
    return softmax(scores, axis=1)


@register_head("logreg")
class LogRegHead:
    """StandardScaler + multinomial (or binary, or one-per-term) L2 logistic regression, lbfgs; C tuned."""

    max_iter = 2000
    input = "features"

    def __init__(self, seed: int = 0, kind: str = "multiclass", C: float | None = None):
        check_kind(self.name, kind, ("binary", "multiclass", "multilabel"))
        self.seed, self.task_kind, self.C = seed, kind, C
        self.C_: float | None = None
        self.tuning_: dict = {}
        self.classes_: np.ndarray | None = None
        self.mean_ = self.scale_ = self.coef_ = self.intercept_ = None

    @property
    def multilabel(self) -> bool:
        return self.task_kind == "multilabel"

    def _model(self, C: float, warm: dict | None, key) -> LogisticRegression:
        """A fresh model, or during tuning the one fitted at the previous C, warm-started from its solution."""
        if warm is None:
            return LogisticRegression(C=C, solver="lbfgs", max_iter=self.max_iter, random_state=self.seed)
        if key not in warm:
            warm[key] = LogisticRegression(solver="lbfgs", max_iter=self.max_iter, random_state=self.seed,
                                           warm_start=True)
        return warm[key].set_params(C=C)

    def _fit_linear(self, Z: np.ndarray, T: np.ndarray, n_classes: int, C: float, warm: dict | None = None):
        """(coef, intercept) with one row per class (multiclass), term (multilabel) or one row (binary)."""
        if not self.multilabel:
            present = np.unique(T)
            if len(present) == 1:  # an inner fold with one class: predict it
                if n_classes == 2:  # the binary model's one row scores the second class
                    return np.zeros((1, Z.shape[1])), np.array([30.0 if present[0] == 1 else -30.0])
                intercept = np.full(n_classes, -30.0)
                intercept[present[0]] = 30.0
                return np.zeros((n_classes, Z.shape[1])), intercept
            model = self._model(C, warm, "all").fit(Z, T)
            if len(present) == n_classes:
                return model.coef_, model.intercept_
            # An inner fold without some class: give the absent classes a very low score.
            coef = np.zeros((n_classes, Z.shape[1]))
            intercept = np.full(n_classes, -30.0)
            rows = model.coef_ if len(present) > 2 else np.vstack([-model.coef_ / 2, model.coef_ / 2])
            icpt = model.intercept_ if len(present) > 2 else np.array([-1, 1]) * model.intercept_ / 2
            coef[present], intercept[present] = rows, icpt
            return coef, intercept
        coef = np.zeros((T.shape[1], Z.shape[1]))
        intercept = np.zeros(T.shape[1])
        for j in range(T.shape[1]):
            t = T[:, j]
            if t.min() == t.max():  # a term always (or never) present here: a constant probability
                intercept[j] = 30.0 if t[0] else -30.0
                continue
            model = self._model(C, warm, j).fit(Z, t)
            coef[j], intercept[j] = model.coef_[0], model.intercept_[0]
        return coef, intercept

    def _tune(self, Z, T, y, groups, n_classes) -> float:
        splits = inner_splits(y, groups, INNER_FOLDS, self.seed)
        if not splits:
            return 1.0
        losses = {C: [] for C in C_GRID}
        for train, val in splits:
            truth = T[val] if self.multilabel else one_hot(T[val], n_classes)
            warm: dict = {}  # ascending C: each fit starts from the previous, more regularised, solution
            for C in C_GRID:
                coef, intercept = self._fit_linear(Z[train], T[train], n_classes, C, warm)
                proba = _scores_to_proba(Z[val] @ coef.T + intercept, self.multilabel)
                losses[C].append(brier(truth, proba))
        self.tuning_ = {str(C): float(np.mean(v)) for C, v in losses.items()}
        return min(C_GRID, key=lambda C: (np.mean(losses[C]), -C))  # ties: the weaker penalty

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "LogRegHead":
        X = np.asarray(X, dtype=np.float64)
        T, self.classes_ = targets(y, self.task_kind)
        scaler = StandardScaler().fit(X)
        Z = scaler.transform(X)
        self.C_ = float(self.C) if self.C is not None else self._tune(Z, T, y, groups, len(self.classes_))
        self.mean_, self.scale_ = scaler.mean_, scaler.scale_
        self.coef_, self.intercept_ = self._fit_linear(Z, T, len(self.classes_), self.C_)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("logreg head is not fitted; call fit(X, y) or load_head(dir) first")
        z = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return z @ self.coef_.T + self.intercept_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return _scores_to_proba(self.decision_function(X), self.multilabel)

    @property
    def kind(self) -> str:
        if self.multilabel:
            return "multilabel"
        return "binary" if len(self.classes_) == 2 else "multiclass"

    def to_spec(self) -> dict:
        return {
            "format": FORMAT,
            "head": self.name,
            "kind": self.kind,
            "classes": [str(c) for c in self.classes_],
            "params": {"C": self.C_, "C_grid": None if self.C is not None else list(C_GRID),
                       "inner_folds": INNER_FOLDS, "solver": "lbfgs", "max_iter": self.max_iter,
                       "penalty": "l2", "seed": self.seed},
            "tuning_brier": self.tuning_,
            "n_features": int(self.coef_.shape[1]),
            "scaler": {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()},
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(),
            "tileprobe_version": tileprobe.__version__,
            "sklearn_version": sklearn.__version__,
        }

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict | None = None) -> "LogRegHead":
        kind = spec.get("kind", "multiclass")
        head = cls(seed=spec["params"].get("seed", 0), kind=kind, C=spec["params"]["C"])
        head.C_ = spec["params"]["C"]
        head.classes_ = np.array(spec["classes"], dtype=object)
        head.mean_ = np.array(spec["scaler"]["mean"], dtype=np.float64)
        head.scale_ = np.array(spec["scaler"]["scale"], dtype=np.float64)
        head.coef_ = np.array(spec["coef"], dtype=np.float64)
        head.intercept_ = np.array(spec["intercept"], dtype=np.float64)
        return head

    def save(self, directory: str | Path) -> Path:
        """Write `directory/model.json`; JSON floats round-trip exactly (Python writes the shortest repr)."""
        return write_model(directory, self.to_spec())
