"""Small heads trained on frozen embeddings, found by name in a registry.

A head has `fit(X, y, groups=None)`, `predict_proba(X)` (columns in `classes_` order), `classes_`, and
`save(dir)`, which writes `model.json` holding explicit parameters (and `weights.safetensors` for arrays), never
a pickle. `load_head(dir)` rebuilds any saved head. `groups` (patients) let a head tune on inner folds that
never split a patient. A head whose class attribute `input` is "bags" takes a list of (tiles, dim) arrays
instead of a matrix. For `kind: multilabel`, `y` holds `;`-separated terms and `predict_proba` one
independent probability per term.

New heads register with `@register_head("name")`, take `seed` and `kind` in `__init__`, and provide
`to_spec()` and a classmethod `from_spec(spec, tensors)` (the parsed `model.json`, whose `format` and `head`
keys name it, and the arrays of `weights.safetensors`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from tileprobe.heads.common import FORMAT, MODEL_FILE, HeadError, read_tensors


class Head(Protocol):
    name: str
    classes_: np.ndarray

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "Head": ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, directory: str | Path) -> Path: ...

    def to_spec(self) -> dict: ...

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict) -> "Head": ...


HEADS: dict[str, type] = {}


def register_head(name: str) -> Callable[[type], type]:
    """Class decorator: make a head available to `make_head(name)` and `load_head`."""

    def add(cls: type) -> type:
        if name in HEADS:
            raise ValueError(f"head '{name}' is registered twice")
        cls.name = name
        HEADS[name] = cls
        return cls

    return add


def _known() -> str:
    return ", ".join(sorted(HEADS))


def make_head(name: str, seed: int = 0, kind: str = "multiclass") -> Head:
    """A fresh, unfitted head for a task of `kind` (binary, multiclass, multilabel)."""
    if name not in HEADS:
        raise HeadError(f"unknown head '{name}'; known heads: {_known()}. Fix the task's `heads` list.")
    return HEADS[name](seed=seed, kind=kind)


def load_head(directory: str | Path) -> Head:
    """Rebuild a head saved with `save(directory)`."""
    path = Path(directory) / MODEL_FILE
    spec = json.loads(path.read_text())
    if spec.get("format") != FORMAT:
        raise HeadError(f"{path} is not a tileprobe head (format {spec.get('format')!r}); re-run training.")
    name = spec.get("head")
    if name not in HEADS:
        raise HeadError(f"{path} holds head '{name}', which this tileprobe does not know; known: {_known()}.")
    return HEADS[name].from_spec(spec, read_tensors(directory))


# Imported last: the modules register themselves with the decorator above.
from tileprobe.heads import abmil, knn, logreg, meanpool, mlp  # noqa: E402,F401
