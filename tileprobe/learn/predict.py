"""Deployment: the refit head of a task applied to new slides, through the same tiling and embeddings.

A `predict` sample sheet (config key `predict`) lists slides without labels. Each is tiled and embedded like a
training slide; `predict_slide` turns its tile embeddings into the rows the task was trained on (each tile for
`tile` tasks; the slide mean, or the bag of tiles for MIL heads, for `slide` and `image` tasks) and writes
`results/predict/{task}/{slide}.parquet`: ids, one `prob_{class}` column per class and `y_pred`; for a
regression task `y_pred` is the predicted value, for a survival task `risk` the risk score (higher: the event is
expected sooner; comparable between slides of one model, not a time).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tileprobe.atomic import atomic_path
from tileprobe.config.samples import read_samples
from tileprobe.errors import TileprobeError
from tileprobe.learn import calibration
from tileprobe.learn.data import VALUE_KINDS, predicted_labels, tile_mean
from tileprobe.learn.heads.registry import MODEL_FILE, load_head

PREDICTABLE_LEVELS = ("tile", "slide", "image")


class PredictError(TileprobeError):
    """A new slide cannot be predicted as asked; the message names the slide, task or model and the fix."""


def predict_sheet(path, training: pd.DataFrame) -> pd.DataFrame:
    """The checked predict sheet (slide ids as index). A slide id already in the training sheet must name
    the same file: it then reuses that slide's tiles and embeddings."""
    sheet = read_samples(path, {})
    shared = sheet.index.intersection(training.index)
    clashes = [s for s in shared if sheet.at[s, "path"] != training.at[s, "path"]]
    if clashes:
        raise PredictError(
            f"predict sheet {path}: slide id(s) {', '.join(clashes)} are also in the training sheet but name "
            "other files; give the new slides their own ids."
        )
    return sheet


def deployed(task: dict, candidates: list[tuple[str, str]]) -> dict:
    """Which trained head a task deploys: its first (backbone, layer), no augmentation, its first head."""
    backbone, layer = candidates[0]
    return {"backbone": backbone, "layer": layer, "augmentation": "none", "head": task["heads"][0]}


def _rows(task_name: str, task: dict, head, slide: str, features: np.ndarray, tiles: pd.DataFrame | None):
    level = task["level"]
    if level not in PREDICTABLE_LEVELS:
        raise PredictError(
            f"task '{task_name}' is {level}-level: its rows pool several images, so a single new slide cannot "
            f"be predicted; remove the task from prediction or predict its images with an image-level task."
        )
    if len(features) == 0:
        raise PredictError(f"slide '{slide}' has no tissue tiles, so task '{task_name}' has nothing to predict; "
                           "check its QC picture and the tiling's `min_tissue`.")
    if level == "tile":
        if tiles is None or len(tiles) != len(features):
            raise PredictError(f"slide '{slide}': tile table and embeddings disagree; re-run the embed rule for it.")
        ids = pd.DataFrame({"slide": slide, "x": tiles["x"].to_numpy(np.int64), "y": tiles["y"].to_numpy(np.int64)})
        return ids, features
    ids = pd.DataFrame({"slide": [slide]})
    if getattr(head, "input", "features") == "bags":
        return ids, [features]
    return ids, tile_mean(features)[None, :]


def predict_slide(model_dir, task_name: str, task: dict, slide: str, features: np.ndarray,
                  tiles: pd.DataFrame | None = None) -> pd.DataFrame:
    """Class probabilities of one new slide from the head saved in `model_dir` (one row per tile for tile
    tasks, one row otherwise)."""
    spec_path = Path(model_dir) / MODEL_FILE
    if not spec_path.exists():
        raise PredictError(f"task '{task_name}': no trained head at {model_dir}; train it first (rule head).")
    spec = json.loads(spec_path.read_text())
    head = load_head(model_dir)
    features = np.asarray(features, dtype=np.float32)
    expected = (spec.get("architecture") or {}).get("n_features") or spec.get("n_features")
    if expected and features.ndim == 2 and features.shape[1] != expected and len(features):
        raise PredictError(
            f"slide '{slide}': embeddings have {features.shape[1]} features but the '{task_name}' head in "
            f"{model_dir} was trained on {expected}; embed the slide with the backbone and layer the head used."
        )
    ids, inputs = _rows(task_name, task, head, slide, features, tiles)
    out = ids.copy()
    if spec.get("kind") in VALUE_KINDS:
        out["risk" if spec["kind"] == "survival" else "y_pred"] = np.asarray(head.predict(inputs), dtype=np.float64)
        out["head"] = spec["head"]
        return out
    proba = head.predict_proba(inputs)
    calibrated = calibration.load(model_dir)  # fitted on the out-of-fold predictions, when the task asked
    if calibrated is not None:
        proba = calibration.apply(calibrated, proba)
        out["calibration"] = calibrated["method"]
    classes = [str(c) for c in head.classes_]
    for j, c in enumerate(classes):
        out[f"prob_{c}"] = proba[:, j]
    out["y_pred"] = predicted_labels(proba, classes, spec.get("kind"))
    out["head"] = spec["head"]
    return out


def write_prediction(table: pd.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
