"""Task datasets: turn a sample sheet plus per-slide tile embeddings into (X, y, groups) rows for one task.

A row is a tile (level `tile`), a slide/image (levels `slide`, `image`: the mean of its tile embeddings, and
its tiles as a bag for MIL heads) or a group of images (level `group`: the images of one `group_by` value,
their embeddings pooled by `pool: mean|max`). Groups are patients, so cross-validation never puts one patient on
both sides of a split. Multilabel labels are `;`-separated terms; rows keep them as one sorted `;`-joined string.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tileprobe.errors import TileprobeError

log = logging.getLogger(__name__)

LEVELS = ("tile", "slide", "image", "group")
KINDS = ("binary", "multiclass", "multilabel")
POOLS = ("mean", "max")
SEPARATOR = ";"
THRESHOLD = 0.5  # multilabel: a term is predicted when its probability reaches this


class TaskError(TileprobeError, ValueError):
    """A task cannot be built from the data as given; the message names the task, label or class and the fix.

    A TileprobeError, so a workflow job prints it as a plain message; a ValueError for library callers.
    """


@dataclass
class TaskData:
    """Rows of one task. `ids` has one row per sample: `slide`, plus `x`, `y` at tile level, `group` at group
    level. `bags` (slide, image and group levels) holds each row's tile embeddings, for heads that take bags."""

    X: np.ndarray  # (n, d) float32
    y: np.ndarray  # (n,) object: class names as strings (multilabel: sorted terms joined by ';')
    groups: np.ndarray  # (n,) object: patient ids as strings
    ids: pd.DataFrame
    kind: str = "multiclass"
    bags: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def classes(self) -> list[str]:
        """Class names; for multilabel, the terms."""
        if self.kind == "multilabel":
            return all_terms(self.y)
        return sorted(set(self.y))


def split_terms(label) -> list[str]:
    return [t.strip() for t in str(label).split(SEPARATOR) if t.strip()]


def all_terms(labels) -> list[str]:
    """The terms of multilabel `labels`, sorted."""
    return sorted({t for v in labels for t in split_terms(v)})


def term_matrix(labels, terms) -> np.ndarray:
    """Multilabel labels as a boolean (samples, terms) matrix; a term not in `terms` is left out."""
    index = {t: j for j, t in enumerate(terms)}
    Y = np.zeros((len(labels), len(terms)), dtype=bool)
    for i, v in enumerate(labels):
        for t in split_terms(v):
            if t in index:
                Y[i, index[t]] = True
    return Y


def predicted_labels(proba: np.ndarray, classes, kind: str) -> np.ndarray:
    """Labels (object array) from probabilities whose columns follow `classes`: the most probable class, or
    for multilabel the terms whose probability reaches THRESHOLD, joined like a label."""
    if kind == "multilabel":
        return np.array([SEPARATOR.join(t for t, p in zip(classes, row) if p >= THRESHOLD) for row in proba],
                        dtype=object)
    return np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]


def per_term(table: pd.DataFrame) -> pd.DataFrame:
    """Multilabel rows with labels in `y` as one row per (sample, term); a sample without terms drops out."""
    return table.assign(y=[split_terms(v) for v in table["y"]]).explode("y").dropna()


def tile_mean(tiles) -> np.ndarray:
    """The mean of a slide's tile embeddings, in float64: summing thousands of float32 tiles loses digits."""
    return np.asarray(tiles).mean(axis=0, dtype=np.float64)


def _normalise_label(value, kind: str) -> str:
    value = str(value).strip()
    return SEPARATOR.join(sorted(set(split_terms(value)))) if kind == "multilabel" else value


def _task_name(task: dict) -> str:
    return str(task.get("name") or task.get("label") or "?")


def _is_labelled(values: pd.Series) -> pd.Series:
    """Non-null and not blank: an empty cell in a TSV means 'unlabelled', not a class called ''."""
    return values.notna() & (values.astype("string").str.strip() != "")


def _check_task(task: dict) -> None:
    name = _task_name(task)
    level = task.get("level")
    if level not in LEVELS:
        raise TaskError(
            f"task '{name}': level '{level}' is not supported here; use one of {', '.join(LEVELS)}."
        )
    kind = task.get("kind", "binary")
    if kind not in KINDS:
        raise TaskError(f"task '{name}': kind '{kind}' is not supported here; use one of {', '.join(KINDS)}.")
    if task.get("pool", "mean") not in POOLS:
        raise TaskError(f"task '{name}': pool '{task.get('pool')}' is not supported; use one of {', '.join(POOLS)}.")
    if level == "tile" and kind == "multilabel":
        raise TaskError(f"task '{name}': tile labels come from annotated regions, one class per tile; "
                        "use `kind: multiclass` or `binary`, or a slide/image/group-level multilabel task.")
    if level != "tile" and not task.get("label"):
        raise TaskError(f"task '{name}': no `label` given; set it to a column of the sample sheet.")


def samples_for_task(task: dict, sheet: pd.DataFrame) -> list[str]:
    """Slides the task needs embedded: those with a label (or, at tile level, with an annotations file)."""
    _check_task(task)
    column = "annotations" if task["level"] == "tile" else task["label"]
    if column not in sheet.columns:
        fix = (
            "add an `annotations` column with a GeoJSON path per annotated slide"
            if column == "annotations"
            else f"add a column '{column}' to the sample sheet or fix the task's `label`"
        )
        raise TaskError(f"task '{_task_name(task)}': the sample sheet has no column '{column}'; {fix}.")
    return sheet.loc[_is_labelled(sheet[column]), "slide"].astype(str).tolist()


def _patients(sheet: pd.DataFrame) -> dict[str, str]:
    """slide -> patient; a slide without a patient is its own patient (the sheet contract's default)."""
    slides = sheet["slide"].astype(str)
    if "patient" not in sheet.columns:
        return dict(zip(slides, slides))
    patient = sheet["patient"].astype("string")
    patient = patient.where(_is_labelled(sheet["patient"]), slides)
    return dict(zip(slides, patient.astype(str)))


def _slide_features(task: dict, slide: str, features: dict) -> np.ndarray:
    if slide not in features:
        raise TaskError(
            f"task '{_task_name(task)}': no embeddings for slide '{slide}', which carries a label; "
            "embed it (run the embed rule for it) or remove its label from the sample sheet."
        )
    feats = np.asarray(features[slide])
    if feats.ndim != 2:
        raise TaskError(
            f"task '{_task_name(task)}': embeddings of slide '{slide}' have shape {feats.shape}; "
            "pass one view as a (tiles, dim) array."
        )
    return feats


def _tile_rows(task: dict, sheet: pd.DataFrame, features: dict, tiles: dict | None):
    patients = _patients(sheet)
    X, y, groups, ids = [], [], [], []
    for slide in samples_for_task(task, sheet):
        feats = _slide_features(task, slide, features)
        table = (tiles or {}).get(slide)
        if table is None:
            raise TaskError(
                f"task '{_task_name(task)}': no tile table for slide '{slide}'; tile the slide "
                "(run the tiling rule for it) before building a tile-level task."
            )
        if len(table) != len(feats):
            raise TaskError(
                f"task '{_task_name(task)}': slide '{slide}' has {len(table)} tiles but {len(feats)} "
                "embedding rows; the embeddings are stale, re-run the embed rule for this slide."
            )
        if "label" not in table.columns:
            log.warning("task %s: slide %s has no tile labels (no annotated regions); skipped",
                        _task_name(task), slide)
            continue
        keep = _is_labelled(table["label"]).to_numpy()
        if not keep.any():
            log.warning("task %s: no tile of slide %s lies in an annotated region; skipped",
                        _task_name(task), slide)
            continue
        X.append(feats[keep])
        y.append(table["label"].astype(str).str.strip().to_numpy(dtype=object)[keep])
        groups.append(np.full(int(keep.sum()), patients[slide], dtype=object))
        ids.append(pd.DataFrame({
            "slide": slide,
            "x": table["x"].to_numpy(dtype=np.int64)[keep],
            "y": table["y"].to_numpy(dtype=np.int64)[keep],
        }))
    return X, y, groups, ids


def _slide_rows(task: dict, sheet: pd.DataFrame, features: dict):
    slides_wanted = samples_for_task(task, sheet)  # first: it names a missing label column
    patients = _patients(sheet)
    labelled = sheet.loc[_is_labelled(sheet[task["label"]])]
    kind = task.get("kind", "binary")
    labels = {s: _normalise_label(v, kind) for s, v in zip(labelled["slide"].astype(str), labelled[task["label"]])}
    X, y, groups, slides, empty, bags = [], [], [], [], [], []
    for slide in slides_wanted:
        feats = _slide_features(task, slide, features)
        if len(feats) == 0:
            empty.append(slide)
            continue
        X.append(tile_mean(feats)[None, :])
        y.append(np.array([labels[slide]], dtype=object))
        groups.append(np.array([patients[slide]], dtype=object))
        slides.append(slide)
        bags.append(np.asarray(feats, dtype=np.float32))
    if empty:
        log.warning("task %s: skipped %d slide(s) with zero tiles (check tissue detection): %s",
                    _task_name(task), len(empty), ", ".join(empty))
    return X, y, groups, [pd.DataFrame({"slide": slides})], bags


def _group_rows(task: dict, sheet: pd.DataFrame, features: dict):
    """One row per `group_by` value: its images' embeddings pooled; the label and patient must agree inside it."""
    name, column = _task_name(task), task.get("group_by", "group")
    if column not in sheet.columns:
        raise TaskError(f"task '{name}': the sample sheet has no column '{column}' to group images by; "
                        "add it or change the task's `group_by`.")
    X, y, groups, ids, bags = _slide_rows(task, sheet, features)
    if not X:
        return [], [], [], [], []
    rows = ids[0].assign(label=np.concatenate(y), patient=np.concatenate(groups))
    group_of = dict(zip(sheet["slide"].astype(str), sheet[column]))
    rows["group"] = [group_of.get(s) for s in rows["slide"]]
    unlabelled = rows["group"].isna() | (rows["group"].astype("string").str.strip() == "")
    if unlabelled.any():
        raise TaskError(f"task '{name}': slide(s) {', '.join(rows.loc[unlabelled, 'slide'])} carry a label but no "
                        f"'{column}'; fill in their group or remove their label.")
    pool = np.max if task.get("pool", "mean") == "max" else np.mean
    vectors = np.concatenate(X)
    out_X, out_y, out_g, out_ids, out_bags = [], [], [], [], []
    for group, part in rows.groupby("group", sort=True):
        for what, col in (("labels", "label"), ("patients", "patient")):
            if part[col].nunique() > 1:
                raise TaskError(
                    f"task '{name}': group '{group}' mixes {what} ({', '.join(sorted(part[col].unique()))}); "
                    f"every image of a group must share its {col}. Fix the sample sheet's '{column}' or "
                    f"{'label' if col == 'label' else 'patient'} column.")
        members = part.index.to_numpy()
        out_X.append(pool(vectors[members], axis=0)[None, :])
        out_y.append(part["label"].to_numpy(dtype=object)[:1])
        out_g.append(part["patient"].to_numpy(dtype=object)[:1])
        out_ids.append(pd.DataFrame({"group": [str(group)], "slide": [";".join(part["slide"])]}))
        out_bags.append(np.concatenate([bags[i] for i in members]))
    return out_X, out_y, out_g, out_ids, out_bags


def _rare_classes(y: np.ndarray, groups: np.ndarray, folds: int, kind: str) -> dict[str, int]:
    """Classes (multilabel: terms) seen in fewer distinct patients than folds: stratified group CV cannot
    place them in every fold."""
    table = pd.DataFrame({"y": y, "g": groups})
    if kind == "multilabel":
        table = per_term(table)
    counts = table.groupby("y")["g"].nunique()
    return {str(c): int(n) for c, n in counts.items() if n < folds}


def _drop_terms(data: TaskData, terms) -> TaskData:
    """Multilabel: remove terms from every row's label (rows stay: they still say the term is absent)."""
    terms = set(terms)
    y = np.array([SEPARATOR.join(t for t in split_terms(v) if t not in terms) for v in data.y], dtype=object)
    return TaskData(X=data.X, y=y, groups=data.groups, ids=data.ids, kind=data.kind, bags=data.bags)


def check_folds(task: dict, y, groups, folds: int) -> dict[str, int]:
    """The classes (terms) with fewer patients than `folds`, when the task drops them; else a TaskError that says
    what would work. Run on the sheet before any embedding (rules/common.smk) and on a head's data."""
    kind = task.get("kind", "binary")
    rare = _rare_classes(np.asarray(y, dtype=object), np.asarray(groups, dtype=object), folds, kind)
    if not rare:
        return rare
    name, needed = _task_name(task), 1 if kind == "multilabel" else 2
    values = pd.Series(np.asarray(y, dtype=object))
    classes = set(per_term(pd.DataFrame({"y": values}))["y"]) if kind == "multilabel" else set(values)
    left = len(classes - set(rare))
    if task.get("drop_rare_classes", False) and left >= needed:
        return rare
    detail = "; ".join(f"class '{c}' has {n} patient(s)" for c, n in rare.items())
    fixes = ["add labelled patients for " + ("it" if len(rare) == 1 else "them")]
    if min(rare.values()) >= 2:
        fixes.append(f"lower evaluation.folds to {min(rare.values())}")
    if left >= needed and not task.get("drop_rare_classes", False):
        fixes.append("set `drop_rare_classes: true` in the task to drop " + ("it" if len(rare) == 1 else "them"))
    why = "" if left >= needed else (f" (dropping them would leave {left} class(es), too few to learn: "
                                     "`drop_rare_classes` cannot help)")
    raise TaskError(
        f"task '{name}' (label '{task.get('label')}'): {detail}, but {folds}-fold cross-validation "
        f"needs at least {folds} patients per class{why}. Fix: {', or '.join(fixes)}."
    )


def _apply_class_checks(task: dict, data: TaskData, folds: int) -> TaskData:
    name = _task_name(task)
    rare = check_folds({**task, "kind": data.kind}, data.y, data.groups, folds)
    if rare:
        log.warning("task %s: dropping classes with fewer than %d patients: %s", name, folds,
                    ", ".join(f"{c} ({n})" for c, n in rare.items()))
        if data.kind == "multilabel":
            data = _drop_terms(data, rare)
        else:
            data = subset(data, ~np.isin(data.y, list(rare)))
    classes = data.classes
    if len(classes) < (1 if data.kind == "multilabel" else 2):  # one term is still a yes/no question
        raise TaskError(
            f"task '{name}' (label '{task.get('label')}'): needs at least 2 classes, found "
            f"{len(classes)} ({', '.join(classes) or 'none'}) after removing unlabelled samples"
            f"{' and rare classes' if rare else ''}; label more samples with other classes."
        )
    if task.get("kind", "binary") == "binary" and len(classes) != 2:
        raise TaskError(
            f"task '{name}': kind is binary but the label has {len(classes)} classes "
            f"({', '.join(classes)}); set `kind: multiclass` or merge classes in the sample sheet."
        )
    return data


def subset(data: TaskData, rows: np.ndarray) -> TaskData:
    """Rows of `data` selected by a boolean mask or an index array."""
    rows = np.asarray(rows)
    idx = np.flatnonzero(rows) if rows.dtype == bool else rows
    return TaskData(X=data.X[idx], y=data.y[idx], groups=data.groups[idx],
                    ids=data.ids.iloc[idx].reset_index(drop=True), kind=data.kind,
                    bags=None if data.bags is None else [data.bags[i] for i in idx])


def task_dataset(
    task: dict,
    sheet: pd.DataFrame,
    features: dict[str, np.ndarray],
    tiles: dict[str, pd.DataFrame] | None = None,
    *,
    folds: int = 5,
) -> TaskData:
    """Build the rows of one task; `folds` is the CV fold count each class must have enough patients for.

    `task['name']`, if present, is used in messages; `tiles` is only needed at tile level.
    """
    _check_task(task)
    bags = None
    if task["level"] == "tile":
        X, y, groups, ids = _tile_rows(task, sheet, features, tiles)
    elif task["level"] == "group":
        X, y, groups, ids, bags = _group_rows(task, sheet, features)
    else:
        X, y, groups, ids, bags = _slide_rows(task, sheet, features)
    if not X:
        raise TaskError(
            f"task '{_task_name(task)}': no labelled samples with embeddings; check the label column "
            "(or annotations) in the sample sheet and that the slides have tissue tiles."
        )
    data = TaskData(
        X=np.concatenate(X).astype(np.float32, copy=False),
        y=np.concatenate(y),
        groups=np.concatenate(groups),
        ids=pd.concat(ids, ignore_index=True),
        kind=task.get("kind", "binary"),
        bags=bags,
    )
    return _apply_class_checks(task, data, folds)
