"""What every head shares: label encoding (single- and multilabel), inner splits for tuning, model files.

Labels reach a head as a 1-D array of strings. For `kind: multilabel` each string holds the sample's terms
separated by `;` (an empty string: no term), and the head predicts one independent probability per term.
Regression targets reach it as floats and survival targets as a (n, 2) float array (time, event); such heads
have no classes and `predict(X)` returns the value, or the risk score (higher: the event comes sooner).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from tileprobe.atomic import atomic_path
from tileprobe.errors import TileprobeError
from tileprobe.learn.data import KINDS, VALUE_KINDS, all_terms, strata, term_matrix

MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT = "tileprobe-head"
log = logging.getLogger(__name__)


class HeadError(TileprobeError, ValueError):
    """A head cannot do what the task asks (wrong kind, wrong input); the message names the head and the fix."""


def targets(y, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(targets, classes): class indices for single-label kinds, a 0/1 float matrix over the sorted terms for
    multilabel."""
    if kind in VALUE_KINDS:
        return np.asarray(y, dtype=np.float64), np.array([], dtype=object)
    if kind == "multilabel":
        terms = all_terms(y)
        return term_matrix(y, terms).astype(np.float64), np.array(terms, dtype=object)
    classes, index = np.unique(np.asarray(y).astype(str), return_inverse=True)
    return index, classes.astype(object)


def one_hot(index: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(index), n_classes))
    out[np.arange(len(index)), index] = 1.0
    return out


def brier(T: np.ndarray, P: np.ndarray) -> float:
    """Mean squared error of probabilities against 0/1 targets: one tuning score for every kind of head."""
    return float(np.mean((np.asarray(T, dtype=np.float64) - P) ** 2))


def inner_splits(y, groups, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner (train, validation) splits of a training part, grouped by patient when groups are given.

    Stratified on the label string (for multilabel: the term set; regression: the target's quantile bin;
    survival: the event). Folds shrink to what the classes and the number of patients allow, so a small outer
    fold still tunes instead of failing; the log says so, once.
    """
    y = np.asarray(y)
    if y.dtype.kind == "f":  # a regression target, or survival's (time, event)
        y = strata(y, "survival" if y.ndim == 2 else "regression", folds)
    y = y.astype(str)
    n_groups = len(set(groups)) if groups is not None else len(y)
    classes, counts = np.unique(y, return_counts=True)
    stratify = counts.min() >= 2
    # A stratified split needs some class with at least as many members as folds (scikit-learn refuses else).
    usable = int(min(folds, n_groups, len(y), counts.max() if stratify else len(y)))
    if usable < folds:
        _say_once(f"inner folds: {usable if usable >= 2 else 'none, default settings used'} instead of {folds}: "
                  f"this training part has {n_groups} patient(s) and at most {counts.max()} sample(s) per class")
    if usable < 2:
        return []
    dummy = np.zeros((len(y), 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # too few members of a class to stratify: still valid
        if stratify:
            splitter = (StratifiedGroupKFold(usable, shuffle=True, random_state=seed) if groups is not None
                        else StratifiedKFold(usable, shuffle=True, random_state=seed))
        else:
            splitter = GroupKFold(usable) if groups is not None else KFold(usable, shuffle=True, random_state=seed)
        splits = list(splitter.split(dummy, y, groups))
    return [(tr, va) for tr, va in splits if len(tr) and len(va)]


_SAID: set[str] = set()


def _say_once(message: str) -> None:
    """Log a tuning note once per job: every outer fold and repeat would say the same."""
    if message not in _SAID:
        _SAID.add(message)
        log.info(message)


def check_kind(name: str, kind: str, supported: tuple[str, ...]) -> None:
    if kind not in KINDS:
        raise HeadError(f"head '{name}': unknown task kind '{kind}'; use one of {', '.join(KINDS)}.")
    if kind not in supported:
        raise HeadError(
            f"head '{name}' does not handle `kind: {kind}` tasks (it handles {', '.join(supported)}); "
            f"remove it from the task's `heads` list or pick one that does."
        )


def write_model(directory: str | Path, spec: dict, tensors: dict | None = None) -> Path:
    """`model.json` (+ `weights.safetensors` for arrays): plain data only, so loading runs no code."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if tensors:
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(directory / WEIGHTS_FILE))
        spec = {**spec, "weights": WEIGHTS_FILE}
    path = directory / MODEL_FILE
    with atomic_path(path) as tmp:  # written last and whole: its presence means the model is complete
        tmp.write_text(json.dumps(spec, indent=1))  # floats round-trip exactly (Python writes the shortest repr)
    return path


def read_tensors(directory: str | Path) -> dict[str, np.ndarray]:
    path = Path(directory) / WEIGHTS_FILE
    if not path.exists():
        return {}
    from safetensors.numpy import load_file

    return load_file(str(path))
