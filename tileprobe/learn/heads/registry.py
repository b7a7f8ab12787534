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

import importlib
import json
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from tileprobe.learn.heads.common import FORMAT, MODEL_FILE, HeadError, read_tensors


class Head(Protocol):
    name: str
    classes_: np.ndarray

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> "Head": ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, directory: str | Path) -> Path: ...

    def to_spec(self) -> dict: ...

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict) -> "Head": ...


# Every built-in head and the module that defines it. Naming a head (config checks, a dry run) imports nothing;
# its module, and torch for the torch heads, is imported when the head is first built or loaded.
BUILT_IN = {"logreg": "logreg", "knn": "knn", "meanpool": "meanpool", "mlp": "mlp", "mlp2": "mlp",
            "multitask": "mlp", "abmil": "abmil", "ridge": "ridge", "cox": "cox",
            # fine-tuning: the task's backbone trained on pixels (tileprobe.finetune), not a head on embeddings
            "finetune_partial": "tileprobe.finetune.head", "finetune_full": "tileprobe.finetune.head",
            "finetune_scratch": "tileprobe.finetune.head"}
_CLASSES: dict[str, type] = {}


def register_head(name: str) -> Callable[[type], type]:
    """Class decorator: make a head available to `make_head(name)` and `load_head`."""

    def add(cls: type) -> type:
        if name in _CLASSES:
            raise ValueError(f"head '{name}' is registered twice")
        cls.name = name
        _CLASSES[name] = cls
        return cls

    return add


def head_names() -> list[str]:
    """Every head a task may name, built-in or registered."""
    return sorted({*BUILT_IN, *_CLASSES})


def head_class(name: str, fix: str = "Fix the task's `heads` list.") -> type:
    """The class of head `name`, importing its module on first use."""
    if name not in _CLASSES and name in BUILT_IN:
        module = BUILT_IN[name]
        importlib.import_module(module if "." in module else f"{__package__}.{module}")
    if name not in _CLASSES:
        raise HeadError(f"unknown head '{name}'; known heads: {', '.join(head_names())}. {fix}")
    return _CLASSES[name]


def make_head(name: str, seed: int = 0, kind: str = "multiclass", **options) -> Head:
    """A fresh, unfitted head for a task of `kind`; `options` go to heads that take more (fine-tuning: the
    backbone spec and its settings)."""
    return head_class(name)(seed=seed, kind=kind, **options)


def load_head(directory: str | Path) -> Head:
    """Rebuild a head saved with `save(directory)`."""
    path = Path(directory) / MODEL_FILE
    spec = json.loads(path.read_text())
    if spec.get("format") != FORMAT:
        raise HeadError(f"{path} is not a tileprobe head (format {spec.get('format')!r}); re-run training.")
    cls = head_class(spec.get("head"), fix=f"({path} was written by another tileprobe; re-run training.)")
    return cls.from_spec(spec, read_tensors(directory))
