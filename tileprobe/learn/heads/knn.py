"""k nearest neighbours by cosine similarity; k chosen on inner folds by the Brier score.

Probabilities are the neighbours' vote shares (per term for multilabel); a regression prediction is the
neighbours' mean target, with k chosen by the squared error. The fitted head keeps its training
embeddings (L2-normalised, float32) and labels, saved as safetensors beside `model.json`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tileprobe
from tileprobe.learn.heads.common import brier, check_kind, inner_splits, one_hot, targets, write_model
from tileprobe.learn.heads.registry import FORMAT, register_head

K_GRID = (1, 3, 5, 9, 15, 25, 51)
INNER_FOLDS = 3
# Tuning scores at most this many validation rows per inner fold: k is a coarse choice, and scoring every row
# of a 100,000-tile task would cost a full all-pairs similarity per fold.
MAX_TUNING_QUERIES = 2000
CHUNK = 1024


def _normalise(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


def _neighbours(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most similar reference rows per query, most similar first (chunked: bounded memory)."""
    k = min(k, len(reference))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), CHUNK):
        sim = queries[start:start + CHUNK] @ reference.T
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, part, axis=1), axis=1, kind="stable")
        out[start:start + CHUNK] = np.take_along_axis(part, order, axis=1)
    return out


def _vote(neighbours: np.ndarray, T: np.ndarray, k: int) -> np.ndarray:
    """Vote shares of the first k neighbours; T is one-hot (single-label) or 0/1 terms (multilabel)."""
    return T[neighbours[:, :k]].mean(axis=1)


@register_head("knn")
class KNNHead:
    input = "features"

    def __init__(self, seed: int = 0, kind: str = "multiclass", k: int | None = None):
        check_kind(self.name, kind, ("binary", "multiclass", "multilabel", "regression"))
        self.seed, self.task_kind, self.k = seed, kind, k
        self.k_: int | None = None
        self.tuning_: dict = {}
        self.classes_ = self.reference_ = self.targets_ = None

    def _onehot(self, T, n):
        """What neighbours average: one-hot classes, 0/1 terms, or the regression target as one column."""
        if self.task_kind == "regression":
            return np.asarray(T, dtype=np.float64)[:, None]
        return T if self.task_kind == "multilabel" else one_hot(T, n)

    def _tune(self, Z, T, y, groups) -> int:
        rng = np.random.default_rng(self.seed)
        losses = {k: [] for k in K_GRID}
        for train, val in inner_splits(y, groups, INNER_FOLDS, self.seed):
            if len(val) > MAX_TUNING_QUERIES:
                val = rng.choice(val, MAX_TUNING_QUERIES, replace=False)
            nearest = _neighbours(Z[train], Z[val], max(K_GRID))
            for k in K_GRID:
                if k <= len(train):
                    losses[k].append(brier(T[val], _vote(nearest, T[train], k)))
        losses = {k: float(np.mean(v)) for k, v in losses.items() if v}
        self.tuning_ = {str(k): v for k, v in losses.items()}
        if not losses:
            return 1
        return min(losses, key=lambda k: (losses[k], k))

    def fit(self, X, y, groups=None) -> "KNNHead":
        index, self.classes_ = targets(y, self.task_kind)
        T = self._onehot(index, len(self.classes_))
        Z = _normalise(X)
        self.k_ = int(self.k) if self.k is not None else self._tune(Z, T, y, groups)
        self.reference_, self.targets_ = Z, T.astype(np.float32)
        return self

    def predict_proba(self, X) -> np.ndarray:
        if self.reference_ is None:
            raise RuntimeError("knn head is not fitted; call fit(X, y) or load_head(dir) first")
        nearest = _neighbours(self.reference_, _normalise(X), self.k_)
        return _vote(nearest, self.targets_.astype(np.float64), self.k_)

    def predict(self, X) -> np.ndarray:
        """Regression: the mean target of the k nearest training rows."""
        return self.predict_proba(X)[:, 0]

    def to_spec(self) -> dict:
        return {
            "format": FORMAT, "head": self.name, "kind": self.task_kind,
            "classes": [str(c) for c in self.classes_],
            "params": {"k": self.k_, "k_grid": list(K_GRID), "metric": "cosine", "inner_folds": INNER_FOLDS,
                       "seed": self.seed},
            "tuning_brier": self.tuning_,
            "n_features": int(self.reference_.shape[1]),
            "tileprobe_version": tileprobe.__version__,
        }

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict) -> "KNNHead":
        head = cls(seed=spec["params"]["seed"], kind=spec["kind"], k=spec["params"]["k"])
        head.k_, head.classes_ = spec["params"]["k"], np.array(spec["classes"], dtype=object)
        head.reference_, head.targets_ = tensors["reference"], tensors["targets"]
        return head

    def save(self, directory: str | Path) -> Path:
        """Weights first, `model.json` last: the directory is complete once `model.json` exists."""
        return write_model(directory, self.to_spec(), {"reference": self.reference_, "targets": self.targets_})
