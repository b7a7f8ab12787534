"""Labelled regions from GeoJSON (QuPath exports) and the labels they give tile centres.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.path import Path as PolygonPath

from tileprobe.slides.base import SlideError

LABEL_DTYPE = "string"


@dataclass
class Region:
    """One annotated polygon in level-0 px: an exterior ring and its holes."""

    label: str
    exterior: np.ndarray
    holes: list[np.ndarray] = field(default_factory=list)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """bool (n,) for points (n, 2): inside the exterior and in no hole."""
        inside = PolygonPath(self.exterior).contains_points(points)
        for hole in self.holes:
            inside &= ~PolygonPath(hole).contains_points(points)
        return inside

    @property
    def area(self) -> float:
        return _ring_area(self.exterior) - sum(_ring_area(h) for h in self.holes)


def read_annotations(path: str | os.PathLike, classes: list[str] | None = None) -> list[Region]:
    """Polygons of a GeoJSON FeatureCollection (or a bare list of features), in level-0 px.

    Points and lines cover no tile centre and are skipped. A feature's class is `properties.classification.name`
    (QuPath), else `properties.label`, else `properties.name`. With `classes`, any other class is an error (a typo
    in one file would otherwise become a class of its own).
    """
    path = Path(path)
    if not path.is_file():
        raise SlideError(f"annotations not found: {path}; check the `annotations` column of the sample sheet")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SlideError(f"annotations {path} are not valid JSON ({e}); export them again as GeoJSON") from e
    features = _features(data, path)
    regions = [region for i, feature in enumerate(features) for region in _feature_regions(feature, i, path)]
    unknown = sorted({r.label for r in regions} - set(classes)) if classes is not None else []
    if unknown:
        raise SlideError(
            f"annotations {path} use class(es) {', '.join(map(repr, unknown))}, not in the tiling's `classes` "
            f"({', '.join(map(repr, classes))}); rename them in the annotations or add them to `classes`"
        )
    return regions


def _features(data, path: Path) -> list:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [data]
    if isinstance(data, dict) and isinstance(data.get("features"), list):
        return data["features"]
    raise SlideError(
        f"annotations {path} are neither a GeoJSON FeatureCollection nor a list of features; export them again"
    )


def _feature_regions(feature, index: int, path: Path) -> list[Region]:
    if not isinstance(feature, dict):
        raise SlideError(f"annotations {path}: feature {index} is not a GeoJSON object; export them again")
    geometry = feature.get("geometry") or {}
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in ("Polygon", "MultiPolygon"):
        return []
    label = _class_name(feature.get("properties"))
    if label is None:
        raise SlideError(
            f"annotations {path}: feature {index} has no class name; set `properties.classification.name` "
            "(QuPath: assign a class) or `properties.label`"
        )
    polygons = [geometry.get("coordinates")] if kind == "Polygon" else geometry.get("coordinates")
    try:
        rings = [[_ring(r) for r in polygon] for polygon in polygons]
    except (TypeError, ValueError) as e:
        raise SlideError(
            f"annotations {path}: feature {index} has malformed {kind} coordinates ({e}); export them again"
        ) from e
    return [Region(label, r[0], r[1:]) for r in rings if r]


def _ring(coordinates) -> np.ndarray:
    ring = np.asarray(coordinates, dtype=np.float64)
    if ring.ndim != 2 or ring.shape[0] < 3 or ring.shape[1] < 2:
        raise ValueError(f"a ring needs at least 3 [x, y] points, got shape {ring.shape}")
    return ring[:, :2]


def _class_name(properties) -> str | None:
    if not isinstance(properties, dict):
        return None
    classification = properties.get("classification")
    if isinstance(classification, dict):
        classification = classification.get("name")
    for name in (classification, properties.get("label"), properties.get("name")):
        if isinstance(name, (str, int)) and not isinstance(name, bool) and str(name).strip():
            return str(name)
    return None


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def label_points(regions: list[Region], points: np.ndarray) -> pd.Series:
    """The class of the region containing each point (null outside all). Where regions overlap, the smallest
    (most specific, e.g. necrosis drawn inside tumour) wins, whatever the order in the file."""
    labels = np.full(len(points), None, dtype=object)
    for region in sorted(regions, key=lambda r: r.area, reverse=True):
        labels[region.contains(points)] = region.label
    return pd.Series(pd.array(labels, dtype=LABEL_DTYPE))
