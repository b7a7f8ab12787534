"""Task datasets: turn a sample sheet plus per-slide tile embeddings into (X, y, groups) rows for one task.

A row is a tile (level `tile`), a slide/image (levels `slide`, `image`: the mean of its tile embeddings, and
its tiles as a bag for MIL heads) or a group of images (level `group`: the images of one `group_by` value,
their embeddings pooled by `pool: mean|max`). Groups are patients, so cross-validation never puts one patient on
both sides of a split. Multilabel labels are `;`-separated terms; rows keep them as one sorted `;`-joined string.

Regression targets are numbers (`y` float); survival targets are a time (`label`) and an event indicator
(`event`: 1 the event was observed, 0 censored), kept as the two columns of `y`. Rows with a missing value are
left out with a warning that names them; a value that cannot be right stops with an error that names its row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tileprobe.errors import TileprobeError

log = logging.getLogger(__name__)

LEVELS = ("tile", "slide", "image", "group")
CLASS_KINDS = ("binary", "multiclass", "multilabel")
VALUE_KINDS = ("regression", "survival")  # y holds numbers: a target, or (time, event)
KINDS = CLASS_KINDS + VALUE_KINDS
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
    # (n,) object: class names as strings (multilabel: sorted terms joined by ';'); regression (n,) float64;
    # survival (n, 2) float64: time, event (0/1)
    y: np.ndarray
    groups: np.ndarray  # (n,) object: patient ids as strings
    ids: pd.DataFrame
    kind: str = "multiclass"
    bags: list[np.ndarray] | None = None
    pixels: np.ndarray | None = None  # uint8 (n, H, W, 3): each row's tile or image, for fine-tuning

    def __len__(self) -> int:
        return len(self.y)

    @property
    def classes(self) -> list[str]:
        """Class names; for multilabel, the terms; none for regression and survival."""
        if self.kind in VALUE_KINDS:
            return []
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


TARGET_BINS = 5  # regression folds stratify on quantile bins of the target


def strata(y, kind: str, folds: int = 2) -> np.ndarray:
    """What the outer folds stratify on: the class, for multilabel the sample's rarest term, for regression
    the target's quantile bin (each bin holding at least `folds` samples where it can), for survival the event."""
    if kind == "survival":
        return np.asarray(y)[:, 1].astype(int).astype(str).astype(object)
    if kind == "regression":
        y = np.asarray(y, dtype=np.float64)
        bins = int(max(1, min(TARGET_BINS, len(y) // max(folds, 1))))
        edges = np.unique(np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1]))
        return np.searchsorted(edges, y, side="right").astype(str).astype(object)
    y = np.asarray(y, dtype=object)
    if kind != "multilabel":
        return y
    counts = pd.Series([t for v in y for t in split_terms(v)]).value_counts()
    return np.array([min(split_terms(v), key=lambda t: (counts[t], t)) if split_terms(v) else "" for v in y],
                    dtype=object)


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
    if kind == "survival":
        if level == "tile":
            raise TaskError(f"task '{name}': survival is a property of a patient's slide, not of a tile; use "
                            "`level: slide`, `image` or `group`.")
        if not task.get("event"):
            raise TaskError(f"task '{name}': a survival task needs `event`, the sample-sheet column that says "
                            "whether the event was observed (1) or the time is censored (0); `label` names the "
                            "time column.")


def label_columns(task: dict) -> list[str]:
    """The sample-sheet columns a task's labels come from: the annotations at tile level, else `label`
    (and `event`, for survival)."""
    if task["level"] == "tile":
        return ["annotations"]
    return [task["label"]] + ([task["event"]] if task.get("kind") == "survival" else [])


def samples_for_task(task: dict, sheet: pd.DataFrame) -> list[str]:
    """Slides the task needs embedded: those with a label (or, at tile level, with an annotations file);
    survival needs both the time and the event."""
    _check_task(task)
    columns = label_columns(task)
    for column in columns:
        if column not in sheet.columns:
            fix = (
                "add an `annotations` column with a GeoJSON path per annotated slide"
                if column == "annotations"
                else f"add a column '{column}' to the sample sheet or fix the task's "
                f"`{'event' if column == task.get('event') and column != task.get('label') else 'label'}`"
            )
            raise TaskError(f"task '{_task_name(task)}': the sample sheet has no column '{column}'; {fix}.")
    labelled = np.logical_and.reduce([_is_labelled(sheet[c]).to_numpy() for c in columns])
    return sheet.loc[labelled, "slide"].astype(str).tolist()


def _number(task: dict, slide: str, column: str, value) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        number = float("nan")
    if not np.isfinite(number):
        raise TaskError(f"task '{_task_name(task)}' (kind {task.get('kind')}): column '{column}' of slide "
                        f"'{slide}' holds {str(value).strip()!r}, not a number; write a number there, or leave the "
                        "cell empty to leave the slide out.")
    return number


def target_value(task: dict, slide: str, row) -> float | tuple[float, float]:
    """A regression target, or a survival (time, event), from one sample-sheet row (or mapping) of `slide`;
    a TaskError names the slide, column and value that cannot be one."""
    time = _number(task, slide, task["label"], row[task["label"]])
    if task.get("kind") != "survival":
        return time
    if time < 0:
        raise TaskError(f"task '{_task_name(task)}': slide '{slide}' has a negative time {time:g} in column "
                        f"'{task['label']}'; times count from diagnosis (or another origin), so fix the sheet.")
    try:
        event = float(str(row[task["event"]]).strip())
    except ValueError:
        event = float("nan")
    if event not in (0.0, 1.0):
        raise TaskError(f"task '{_task_name(task)}': slide '{slide}' has event {row[task['event']]!r} in column "
                        f"'{task['event']}'; write 1 where the event was observed and 0 where the time is censored.")
    return time, event


def warn_missing_targets(task: dict, sheet: pd.DataFrame) -> list[str]:
    """Survival: the slides with a time but no event, or an event but no time, named in a warning (they are
    left out of the task). Returns them."""
    if task.get("kind") != "survival" or task["level"] == "tile":
        return []
    time, event = (_is_labelled(sheet[c]) if c in sheet.columns else False for c in (task["label"], task["event"]))
    half = sheet.loc[time ^ event, "slide"].astype(str).tolist()
    if half:
        log.warning("task %s: %d slide(s) have a time or an event but not both, and are left out: %s",
                    _task_name(task), len(half), ", ".join(half))
    return half


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
        labels = table["label"].astype(str).str.strip().to_numpy(dtype=object)[keep]
        if task.get("kind") == "regression":  # numeric annotation classes, e.g. a region's tumour cellularity
            numbers = {v: _number(task, slide, "label (the annotation class)", v) for v in set(labels)}
            labels = np.array([numbers[v] for v in labels], dtype=np.float64)
        y.append(labels)
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
    kind = task.get("kind", "binary")
    labelled = sheet.loc[sheet["slide"].astype(str).isin(slides_wanted)]
    if kind in VALUE_KINDS:
        warn_missing_targets(task, sheet)
        labels = {str(r["slide"]): target_value(task, str(r["slide"]), r) for _, r in labelled.iterrows()}
    else:
        labels = {s: _normalise_label(v, kind) for s, v in zip(labelled["slide"].astype(str), labelled[task["label"]])}
    X, y, groups, slides, empty, bags = [], [], [], [], [], []
    for slide in slides_wanted:
        feats = _slide_features(task, slide, features)
        if len(feats) == 0:
            empty.append(slide)
            continue
        X.append(tile_mean(feats)[None, :])
        y.append(np.array([labels[slide]], dtype=np.float64 if kind in VALUE_KINDS else object))
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
    values = np.concatenate(y)
    # a survival label is two numbers: compare them as one key
    rows = ids[0].assign(label=[str(v) for v in values] if values.ndim > 1 else values,
                         patient=np.concatenate(groups))
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
                    f"task '{name}': group '{group}' mixes {what} ({', '.join(sorted(map(str, part[col].unique())))}); "
                    f"every image of a group must share its {col}. Fix the sample sheet's '{column}' or "
                    f"{'label' if col == 'label' else 'patient'} column.")
        members = part.index.to_numpy()
        out_X.append(pool(vectors[members], axis=0)[None, :])
        out_y.append(values[members[:1]])
        out_g.append(part["patient"].to_numpy(dtype=object)[:1])
        out_ids.append(pd.DataFrame({"group": [str(group)], "slide": [";".join(part["slide"])]}))
        out_bags.append(np.concatenate([bags[i] for i in members]))
    return out_X, out_y, out_g, out_ids, out_bags


def sheet_targets(task: dict, sheet: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(labels, patients) of a slide- or image-level task as its heads will read them, from the sheet alone:
    what can be checked before any slide is embedded. Names the row of a value that cannot be a target."""
    slides = samples_for_task(task, sheet)
    rows = sheet.loc[sheet["slide"].astype(str).isin(slides)]
    patients = _patients(sheet)
    kind = task.get("kind", "binary")
    if kind in VALUE_KINDS:
        warn_missing_targets(task, sheet)
        y = np.array([target_value(task, str(r["slide"]), r) for _, r in rows.iterrows()], dtype=np.float64)
    else:
        y = np.array([_normalise_label(v, kind) for v in rows[task["label"]]], dtype=object)
    return y, np.array([patients[str(s)] for s in rows["slide"]], dtype=object)


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
    if kind in VALUE_KINDS:
        check_values(task, y, groups, folds)
        return {}
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


def check_values(task: dict, y, groups, folds: int) -> None:
    """Regression and survival targets that cross-validation can learn from: enough patients for the folds,
    a target that varies, at least one observed event; else a TaskError that says what to change."""
    name, kind = _task_name(task), task.get("kind")
    y = np.asarray(y, dtype=np.float64)
    patients = len(set(np.asarray(groups, dtype=object)))
    if patients < folds:
        raise TaskError(f"task '{name}' (label '{task.get('label')}'): {patients} labelled patient(s), but "
                        f"{folds}-fold cross-validation needs at least {folds}. Fix: label more patients, or "
                        f"lower evaluation.folds to {max(patients, 2)}.")
    if kind == "regression" and len(y) and np.ptp(y) == 0:
        raise TaskError(f"task '{name}': every labelled sample has the same value {y[0]:g} in column "
                        f"'{task.get('label')}', so there is nothing to regress; check the column.")
    if kind == "survival" and len(y) and not y[:, 1].any():
        raise TaskError(f"task '{name}': every time in column '{task.get('label')}' is censored (column "
                        f"'{task.get('event')}' is 0 everywhere), so no risk can be learnt or scored; check the "
                        "event column (1 = event observed).")


def _apply_class_checks(task: dict, data: TaskData, folds: int) -> TaskData:
    if data.kind in VALUE_KINDS:
        check_values({**task, "kind": data.kind}, data.y, data.groups, folds)
        return data
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
                    bags=None if data.bags is None else [data.bags[i] for i in idx],
                    pixels=None if data.pixels is None else data.pixels[idx])


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
