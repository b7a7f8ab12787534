"""Logistic regression on standardised embeddings: the linear probe, every benchmark's baseline.

sklearn fits; prediction is plain numpy over the stored parameters, so a fitted head and one loaded from
`model.json` give bit-identical probabilities.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import sklearn
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import tileprobe
from tileprobe.atomic import atomic_path
from tileprobe.heads import FORMAT, MODEL_FILE, register_head


@register_head("logreg")
class LogRegHead:
    """StandardScaler + multinomial (or binary) L2 logistic regression, lbfgs."""

    C = 1.0
    max_iter = 2000

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.classes_: np.ndarray | None = None
        self.mean_ = self.scale_ = self.coef_ = self.intercept_ = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LogRegHead":
        X = np.asarray(X, dtype=np.float64)
        scaler = StandardScaler().fit(X)
        model = LogisticRegression(C=self.C, solver="lbfgs", max_iter=self.max_iter, random_state=self.seed)
        model.fit(scaler.transform(X), np.asarray(y).astype(str))
        self.classes_ = model.classes_.astype(object)
        self.mean_, self.scale_ = scaler.mean_, scaler.scale_
        self.coef_, self.intercept_ = model.coef_, model.intercept_
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("logreg head is not fitted; call fit(X, y) or load_head(dir) first")
        z = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        return z @ self.coef_.T + self.intercept_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        scores = self.decision_function(X)
        if len(self.classes_) == 2:
            # sklearn's binary model has one coefficient row, for classes_[1].
            p = expit(scores[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)

    @property
    def kind(self) -> str:
        return "binary" if len(self.classes_) == 2 else "multiclass"

    def to_spec(self) -> dict:
        return {
            "format": FORMAT,
            "head": self.name,
            "kind": self.kind,
            "classes": [str(c) for c in self.classes_],
            "params": {"C": self.C, "solver": "lbfgs", "max_iter": self.max_iter, "penalty": "l2",
                       "seed": self.seed},
            "n_features": int(self.coef_.shape[1]),
            "scaler": {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()},
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(),
            "tileprobe_version": tileprobe.__version__,
            "sklearn_version": sklearn.__version__,
        }

    @classmethod
    def from_spec(cls, spec: dict) -> "LogRegHead":
        head = cls(seed=spec["params"].get("seed", 0))
        head.classes_ = np.array(spec["classes"], dtype=object)
        head.mean_ = np.array(spec["scaler"]["mean"], dtype=np.float64)
        head.scale_ = np.array(spec["scaler"]["scale"], dtype=np.float64)
        head.coef_ = np.array(spec["coef"], dtype=np.float64)
        head.intercept_ = np.array(spec["intercept"], dtype=np.float64)
        return head

    def save(self, directory: str | Path) -> Path:
        """Write `directory/model.json`; JSON floats round-trip exactly (Python writes the shortest repr)."""
        path = Path(directory) / MODEL_FILE
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_spec(), indent=1))
        return path
