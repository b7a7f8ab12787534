"""Honest evaluation: out-of-fold predictions from stratified k-fold cross-validation grouped by patient.

Every sample is predicted once per repeat by a head that never saw its patient; heads tune themselves on inner
folds of the training part only (nested CV). Class tasks are predicted as probabilities, regression tasks as
values and survival tasks as risk scores (higher: the event comes sooner). Metrics are reported on all out-of-fold predictions of a repeat
("overall", averaged over repeats), per fold (mean and std), and with bootstrap 95% confidence intervals that
resample patients ("ci").

An optional `augment(X, y, groups, seed) -> (X, y, groups)` adds or changes training rows: it sees the training
part of each fold (seed from `fold_seed(seed, repeat, fold)`) and never a test row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from tileprobe.config.defaults import fill_defaults, section_keys
from tileprobe.learn import metrics as m
from tileprobe.learn.data import (
    THRESHOLD,
    VALUE_KINDS,
    TaskData,
    TaskError,
    predicted_labels,
    strata,
    term_matrix,
)
from tileprobe.learn.heads.registry import make_head
from tileprobe.threads import limited_threads

log = logging.getLogger(__name__)

CI_LEVEL = 0.95
CI_PERCENTILES = (100 * (1 - CI_LEVEL) / 2, 100 - 100 * (1 - CI_LEVEL) / 2)  # the lower is 2.5 + 2e-15 (floats)
Augment = Callable[[np.ndarray, np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def fold_seed(seed: int, repeat: int, fold: int) -> int:
    """The augmentation seed of one (repeat, fold): distinct per fold, the same on every run."""
    return int(np.random.SeedSequence([seed % 2**32, repeat, fold]).generate_state(1)[0])


def refit_seed(seed: int) -> int:
    """The augmentation seed of the final refit on all labelled data (differs from every fold's)."""
    return int(np.random.SeedSequence([seed % 2**32, 2**31 - 1]).generate_state(1)[0])


def encode_classes(y_true, classes) -> np.ndarray:
    """Class indices; -1 for a label outside `classes` (it counts against recall, never as a prediction)."""
    index = {c: j for j, c in enumerate(classes)}
    return np.array([index.get(v, -1) for v in y_true], dtype=np.int64)


def single_label_metrics(truth: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    """Binary and multiclass scores from class indices. AUROC and AUPRC: binary of the second class,
    multiclass the macro mean of one-vs-rest; NaN when a class is absent from truth (undefined, not zero)."""
    pred = np.argmax(proba, axis=1)
    known = truth >= 0
    all_present = known.all() and len(np.unique(truth)) == n_classes
    if not all_present:
        curves = {"auroc": float("nan"), "auprc": float("nan")}
    elif n_classes == 2:
        curves = {"auroc": m.binary_auroc(truth == 1, proba[:, 1]),
                  "auprc": m.average_precision(truth == 1, proba[:, 1])}
    else:
        curves = {"auroc": float(np.mean([m.binary_auroc(truth == j, proba[:, j]) for j in range(n_classes)])),
                  "auprc": float(np.mean([m.average_precision(truth == j, proba[:, j])
                                          for j in range(n_classes)]))}
    return {
        "balanced_accuracy": m.balanced_accuracy(truth[known], pred[known], n_classes),
        "macro_f1": m.macro_f1(truth[known], pred[known], n_classes),
        **curves,
        "ece": m.expected_calibration_error(truth[known], proba[known]),
    }


def _one(name: str) -> Callable[..., float]:
    def metric(y_true, proba, classes) -> float:
        proba = np.asarray(proba, dtype=np.float64)
        return single_label_metrics(encode_classes(y_true, list(classes)), proba, proba.shape[1])[name]

    metric.__name__ = name
    return metric


# name -> f(y_true, proba (n, classes), classes) -> float, for binary and multiclass tasks.
METRICS: dict[str, Callable[..., float]] = {
    name: _one(name) for name in m.SINGLE_LABEL
}
MULTILABEL_METRICS = ("balanced_accuracy", "macro_f1", "micro_f1", "auroc", "micro_auroc", "auprc")


def multilabel_metrics(Y: np.ndarray, P: np.ndarray) -> dict[str, float]:
    """Per-term scores averaged over terms (macro; a term without both outcomes in Y is left out of AUROC,
    AUPRC and balanced accuracy) and pooled over all (sample, term) pairs (micro)."""
    pred = P >= THRESHOLD
    defined = [j for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]

    def mean_over_terms(fn):
        return float(np.mean([fn(j) for j in defined])) if defined else float("nan")

    def term_ba(j):
        pos = Y[:, j]
        return 0.5 * (pred[pos, j].mean() + (~pred[~pos, j]).mean())

    return {
        "balanced_accuracy": mean_over_terms(term_ba),
        "macro_f1": m.indicator_f1(Y, pred, "macro"),
        "micro_f1": m.indicator_f1(Y, pred, "micro"),
        "auroc": mean_over_terms(lambda j: m.binary_auroc(Y[:, j], P[:, j])),
        "micro_auroc": m.binary_auroc(Y.ravel(), P.ravel()),
        "auprc": mean_over_terms(lambda j: m.average_precision(Y[:, j], P[:, j])),
    }


def metric_names(kind: str = "multiclass") -> list[str]:
    """Every score metrics.json holds for `kind`; binary and multiclass add the calibration error (lower is
    better, so it ranks nothing: not one of METRICS)."""
    return list({"multilabel": MULTILABEL_METRICS, "regression": m.REGRESSION,
                 "survival": m.SURVIVAL}.get(kind, (*METRICS, "ece")))


def encode(y_true, classes, kind: str) -> np.ndarray:
    """Labels as class indices, or for multilabel a 0/1 term matrix, or the numbers of a regression or survival
    target: what the scoring functions take."""
    if kind in VALUE_KINDS:
        return np.asarray(y_true, dtype=np.float64)
    return term_matrix(y_true, list(classes)) if kind == "multilabel" else encode_classes(y_true, list(classes))


def score(truth: np.ndarray, proba: np.ndarray, kind: str) -> dict[str, float]:
    """Metrics of encoded labels (see `encode`) against the predictions (probabilities; for regression and
    survival one column: the value or the risk); the bootstrap calls this on resampled rows."""
    proba = np.asarray(proba, dtype=np.float64)
    if kind == "regression":
        return m.regression_metrics(truth, proba[:, 0])
    if kind == "survival":
        return m.survival_metrics(truth[:, 0], truth[:, 1], proba[:, 0])
    return multilabel_metrics(truth, proba) if kind == "multilabel" else single_label_metrics(
        truth, proba, proba.shape[1])


def metrics(y_true, proba, classes, kind: str = "multiclass") -> dict[str, float]:
    """Every metric of the task's kind on one set of predictions; `proba` columns follow `classes`."""
    return score(encode(y_true, classes, kind), proba, kind)


def settings(evaluation: dict | None) -> dict:
    """Evaluation settings with the schema's defaults filled in (a None value counts as unset)."""
    merged = fill_defaults("evaluation", {k: v for k, v in (evaluation or {}).items() if v is not None})
    return {k: int(merged[k]) for k in section_keys("evaluation")}


def cv_splits(y, groups, folds: int, repeats: int, seed: int) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train indices, test indices); each repeat reshuffles with seed + repeat."""
    X_dummy = np.zeros((len(y), 1))
    for repeat in range(repeats):
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
        with warnings.catch_warnings():
            # data.task_dataset already checked patients per class; sklearn's own warning would repeat it.
            warnings.simplefilter("ignore", UserWarning)
            for fold, (train, test) in enumerate(splitter.split(X_dummy, y, groups)):
                yield repeat, fold, train, test


def aligned_proba(head, X: np.ndarray, classes: list) -> np.ndarray:
    """Probabilities with one column per task class, zeros for a class the head never saw in its fold; for
    regression and survival heads (no classes), one column: the predicted value or risk."""
    if not classes:
        return np.asarray(head.predict(X), dtype=np.float64).reshape(-1, 1)
    proba = head.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    for j, c in enumerate(head.classes_):
        out[:, classes.index(c)] = proba[:, j]
    return out


def _summary(rows: list[dict], names: list[str]) -> tuple[dict, dict]:
    table = pd.DataFrame(rows)[names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, which is what we want
        mean = {m: float(np.nanmean(table[m])) for m in names}
        # Sample std (ddof=1) over folds; NaN with fewer than two defined folds.
        std = {m: float(table[m].std(ddof=1, skipna=True)) for m in names}
    return mean, std


def _repeat_mean(per_repeat: list[dict], names: list[str]) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {m: float(np.nanmean([r[m] for r in per_repeat])) for m in names}


def bootstrap_ci(statistic: Callable[[np.ndarray], dict[str, float]], groups, n: int, seed,
                 percentiles: tuple[float, float] = CI_PERCENTILES) -> dict[str, list[float]]:
    """Percentile intervals of `statistic(rows) -> {name: value}` over `n` resamples of patients.

    Patients, not rows, are the unit: tiles of one patient are not independent evidence. Each draw takes as
    many patients as there are, with replacement, and passes all their rows. A value that is NaN (undefined)
    in some draws is left out there; NaN in every draw gives [nan, nan]. {} when n is 0.
    """
    if n <= 0:
        return {}
    patients, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    rows_of = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    rng = np.random.default_rng(seed)
    draws = [statistic(np.concatenate([rows_of[p] for p in rng.integers(0, len(patients), len(patients))]))
             for _ in range(n)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: the metric is undefined in every draw
        return {m: [float(v) for v in np.nanpercentile([d[m] for d in draws], percentiles)] for m in draws[0]}


def head_inputs(data: TaskData, head, rows) -> np.ndarray | list:
    """What a head fits on: the feature matrix, the rows' bags of tile embeddings for MIL heads, or their pixels
    for fine-tuning."""
    if getattr(head, "input", "features") == "pixels":
        if data.pixels is None:
            raise TaskError(f"head '{head.name}' trains on pixels, and this task's rows have none; fine-tuning "
                            "runs in the `finetune` rule, on tile- and image-level tasks.")
        return data.pixels[rows]
    if getattr(head, "input", "features") != "bags":
        return data.X[rows]
    if data.bags is None:
        raise TaskError(
            f"head '{head.name}' takes bags of tile embeddings, which only slide-, image- and group-level tasks "
            "have; remove it from this tile-level task's `heads`."
        )
    return [data.bags[i] for i in rows]


def fit_head(head_name: str, data: TaskData, rows, seed: int, augment: Augment | None, augment_seed: int,
             options: dict | None = None):
    """A head fitted on `rows` of `data` (augmented first, when asked), given patients for its inner folds;
    `options` go to the head's constructor (fine-tuning: the backbone and its settings)."""
    head = make_head(head_name, seed=seed, kind=data.kind, **(options or {}))
    X, y, groups = head_inputs(data, head, rows), data.y[rows], data.groups[rows]
    if augment is not None:
        if getattr(head, "input", "features") == "bags":
            raise TaskError(f"head '{head_name}' takes bags of tiles, which feature-space augmentation does not "
                            "make; use augmentation `none` for it or a head on pooled features (logreg, mlp).")
        X, y, groups = augment(X, y, groups, augment_seed)
    y = np.asarray(y, dtype=np.float64 if data.kind in VALUE_KINDS else object)
    return head.fit(X, y, np.asarray(groups, dtype=object))


def cross_validate(data: TaskData, head_name: str, evaluation: dict | None = None,
                   augment: Augment | None = None, *, threads: int = 1, options: dict | None = None,
                   resume: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Out-of-fold predictions and metrics for one head on one task dataset.

    `augment(X, y, groups, seed)` (optional) transforms each fold's training part only; heads train on at
    most `threads` threads. With `resume` (a directory), each finished fold is kept there and a rerun of the
    same head on the same data and settings starts after the last finished fold instead of from the first.
    """
    with limited_threads(threads):
        return _cross_validate(data, head_name, settings(evaluation), augment, options or {},
                               None if resume is None else FoldCache(resume, head_name, data, settings(evaluation),
                                                                     options or {}))


def _cross_validate(data: TaskData, head_name: str, cfg: dict, augment: Augment | None, options: dict,
                    cache: "FoldCache | None"):
    classes, kind = data.classes, data.kind
    names = metric_names(kind)
    proba = np.full((cfg["repeats"], len(data), max(len(classes), 1)), np.nan)
    fold_of = np.full((cfg["repeats"], len(data)), -1)
    # regression: the training part's mean, the baseline; survival: the median risk of the training part
    reference = np.full((cfg["repeats"], len(data)), np.nan)
    fold_rows, attention = [], []
    strata_ = strata(data.y, kind, cfg["folds"])
    for repeat, fold, train, test in cv_splits(strata_, data.groups, cfg["folds"], cfg["repeats"], cfg["seed"]):
        if len(test) == 0:
            log.warning("repeat %d fold %d has no test samples; skipped", repeat, fold)
            continue
        done = cache.load(repeat, fold) if cache is not None else None
        if done is not None:  # finished before a kill: its predictions and record, as they were
            proba[repeat, test], reference[repeat, test], row = done
            fold_of[repeat, test] = fold
            fold_rows.append(row)
            continue
        started = time.perf_counter()
        head = fit_head(head_name, data, train, cfg["seed"] + repeat, augment, fold_seed(cfg["seed"], repeat, fold),
                        options)
        fit_seconds = time.perf_counter() - started
        proba[repeat, test] = aligned_proba(head, head_inputs(data, head, test), classes)
        fold_of[repeat, test] = fold
        if kind == "regression":
            reference[repeat, test] = np.mean(data.y[train])
        elif kind == "survival":  # splits the test part into high and low risk, as a clinician would have
            reference[repeat, test] = np.median(aligned_proba(head, head_inputs(data, head, train), classes))
        row = {"repeat": repeat, "fold": fold, "n_test": int(len(test)), "fit_seconds": fit_seconds,
               **({"training": head.training_} if getattr(head, "training_", None) else {}),
               **metrics(data.y[test], proba[repeat, test], classes, kind)}
        fold_rows.append(row)
        if hasattr(head, "attention") and data.bags is not None:  # where a MIL head looked, out of fold
            attention += [pd.DataFrame({"row": i, "tile": np.arange(len(data.bags[i])), "repeat": repeat,
                                        "fold": fold, "attention": head.attention(data.bags[i])}) for i in test]
        if cache is not None:
            cache.save(repeat, fold, proba[repeat, test], reference[repeat, test], row)

    overall = _repeat_mean([metrics(data.y, proba[r], classes, kind) for r in range(cfg["repeats"])], names)
    mean, std = _summary(fold_rows, names)
    truth = encode(data.y, classes, kind)

    def overall_of(rows):  # like "overall": every repeat's out-of-fold predictions, averaged
        return _repeat_mean([score(truth[rows], proba[r, rows], kind) for r in range(len(proba))], names)

    ci = bootstrap_ci(overall_of, data.groups, cfg["bootstrap"], [cfg["seed"] % 2**32, 95])
    result = {"overall": overall, "folds": fold_rows, "mean": mean, "std": std, "ci": ci,
              "ci_method": {"level": CI_LEVEL, "resamples": cfg["bootstrap"], "unit": "patient",
                            "kind": "percentile"}}
    if attention:  # for run_task to write beside the predictions (attention.parquet), not into metrics.json
        frame = pd.concat(attention, ignore_index=True)
        result["attention"] = pd.concat([data.ids.iloc[frame["row"]].reset_index(drop=True),
                                         frame.drop(columns="row")], axis=1)
    if kind == "regression":  # the baseline: each fold predicts its training part's mean for every test row
        baseline = _repeat_mean([m.regression_metrics(data.y, reference[r]) for r in range(cfg["repeats"])], names)
        result["chance"] = {**baseline, "pearson": 0.0, "spearman": 0.0}  # a constant correlates with nothing
    return _predictions(data, classes, proba, fold_of, reference), result


class FoldCache:
    """Finished folds of one cross-validation on disk, so a killed job resumes after its last finished fold.

    Each fold's out-of-fold predictions and record go to `{directory}/{repeat}-{fold}.npz` (written under a
    temporary name, then renamed); they are used again only when the fingerprint of the head, its options,
    the evaluation settings and the task's rows is the same."""

    def __init__(self, directory: str | Path, head_name: str, data: TaskData, cfg: dict, options: dict):
        self.directory = Path(directory)
        digest = hashlib.sha256(json.dumps([head_name, cfg, options], sort_keys=True, default=str).encode())
        for part in (np.asarray(data.y), np.asarray(data.groups), data.X):
            digest.update(np.ascontiguousarray(part).astype(str if part.dtype == object else part.dtype).tobytes())
        self.fingerprint = digest.hexdigest()

    def _path(self, repeat: int, fold: int) -> Path:
        return self.directory / f"{repeat}-{fold}.npz"

    def load(self, repeat: int, fold: int):
        path = self._path(repeat, fold)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["fingerprint"]) != self.fingerprint:
                return None
            log.info("repeat %d fold %d: finished before, taken from %s", repeat, fold, path)
            return saved["proba"], saved["reference"], json.loads(str(saved["record"]))

    def save(self, repeat: int, fold: int, proba, reference, record: dict) -> None:
        from tileprobe.atomic import atomic_path
        from tileprobe.jsonable import jsonable

        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(self._path(repeat, fold)) as tmp, open(tmp, "wb") as out:
            np.savez(out, proba=proba, reference=reference, fingerprint=self.fingerprint,
                     record=json.dumps(jsonable(record)))


def _predictions(data: TaskData, classes: list, proba: np.ndarray, fold_of: np.ndarray,
                 reference: np.ndarray) -> pd.DataFrame:
    """One row per sample per repeat, in sample order within each repeat: y_true, y_pred and prob_{class}
    columns; regression y_true and y_pred numbers; survival time, event, risk and risk_threshold (the fold's
    training median: a row above it is high risk)."""
    frames = []
    for repeat in range(proba.shape[0]):
        frame = data.ids.reset_index(drop=True).copy()
        frame["patient"] = data.groups
        frame["repeat"] = repeat
        frame["fold"] = fold_of[repeat]
        if data.kind == "survival":
            frame["time"], frame["event"] = data.y[:, 0], data.y[:, 1].astype(np.int64)
            frame["risk"], frame["risk_threshold"] = proba[repeat, :, 0], reference[repeat]
        elif data.kind == "regression":
            frame["y_true"], frame["y_pred"] = data.y, proba[repeat, :, 0]
        else:
            frame["y_true"] = data.y
            frame["y_pred"] = predicted_labels(proba[repeat], classes, data.kind)
            for j, c in enumerate(classes):
                frame[f"prob_{c}"] = proba[repeat, :, j]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
