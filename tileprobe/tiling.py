"""Tissue-only tile tables: where the tiles of a slide are, at which level to read them, and their labels.

A tile is a square of `tile_px_level0` level-0 pixels at (`x`, `y`); `read_tile` turns a row into pixels at the
tiling's resolution. Tables are Parquet with the tiling parameters in the schema metadata.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.path import Path as PolygonPath
from PIL import Image

from tileprobe.atomic import atomic_path
from tileprobe.errors import TileprobeError
from tileprobe.slides import Slide, SlideError, best_level
from tileprobe.tissue import ARTEFACTS, tissue_mask

DEFAULTS = {
    "mode": "grid",
    "overlap_px": 0,
    "min_tissue": 0.5,
    "tissue": "otsu",
    "thumbnail_px": 2048,
    "edge": "drop",  # partial tiles at the right and bottom edges: drop, or pad with white
    "remove_artefacts": [],  # pen, black: see tissue.ARTEFACTS
    "mpp_from_objective": False,  # with no mpp anywhere, take 10 / objective power (a guess: off unless asked)
    "classes": None,  # annotation classes allowed; others stop the slide's tiling
}
# µm per pixel at 1x objective power, the usual scanner optics: 20x -> 0.5, 40x -> 0.25.
OBJECTIVE_MPP_AT_1X = 10.0
COLUMNS = {
    "x": "int64",
    "y": "int64",
    "level": "int32",
    "tile_px_level0": "int32",
    "tissue_fraction": "float32",
}
LABEL_DTYPE = "string"
META_KEY = b"tileprobe"


class TilingError(TileprobeError, ValueError):
    """A tiling config value that cannot work; the message names the key."""


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


@dataclass
class Tiling:
    """A slide's tile table and what it was derived from (for QC)."""

    tiles: pd.DataFrame
    thumbnail: np.ndarray
    mask: np.ndarray
    thumb_scale: float  # level-0 px per thumbnail px
    regions: list[Region] = field(default_factory=list)


def tile_slide(slide: Slide, tiling: dict, annotations: str | os.PathLike | None = None) -> Tiling:
    """Tile `slide` as the `tiling` config says; label tiles from a GeoJSON file when `annotations` is given."""
    settings = tiling_settings(tiling)
    # Everything that can fail on metadata alone fails before any pixel is read.
    grid = grid_geometry(slide, settings) if settings["mode"] == "grid" else None
    has_annotations = annotations is not None and not _is_nan(annotations) and str(annotations) != ""
    regions = read_annotations(annotations, settings["classes"]) if has_annotations else []
    thumbnail = slide.thumbnail(settings["thumbnail_px"])
    if settings["tissue"] == "otsu":
        mask = tissue_mask(thumbnail, remove=settings["remove_artefacts"])
    else:
        mask = np.ones(thumbnail.shape[:2], bool)
    if grid is not None:
        tiles = grid_tiles(slide.dimensions, grid, mask, settings["min_tissue"], pad=settings["edge"] == "pad")
    else:
        tiles = whole_tile(slide, settings["tile_px"])
    if has_annotations:
        tiles["label"] = label_points(regions, tile_centres(tiles, slide.dimensions))
    if tiles.empty:
        warnings.warn(
            f"{slide.path}: no tile has tissue_fraction >= {settings['min_tissue']}; look at its QC image, lower "
            "`min_tissue`, or set `tissue: none` for images without a white background",
            stacklevel=2,
        )
    thumb_scale = max(slide.dimensions) / max(thumbnail.shape[:2])
    return Tiling(tiles, thumbnail, mask, thumb_scale, regions)


def tiling_settings(tiling: dict) -> dict:
    """`tiling` with defaults filled in and values checked; errors name the key."""
    s = {**DEFAULTS, **tiling}
    if s["mode"] not in ("grid", "whole"):
        raise TilingError(f"tiling mode must be 'grid' or 'whole', got {s['mode']!r}")
    if s["tissue"] not in ("otsu", "none"):
        raise TilingError(f"tiling tissue must be 'otsu' or 'none', got {s['tissue']!r}")
    for key in ("tile_px", "thumbnail_px"):
        if not isinstance(s.get(key), (int, np.integer)) or s[key] < 1:
            raise TilingError(f"tiling {key} must be a positive integer, got {s.get(key)!r}")
    if s["mode"] == "grid":
        if not isinstance(s.get("mpp"), (int, float)) or not s["mpp"] > 0:
            raise TilingError(f"tiling mpp (target µm per pixel) must be a positive number, got {s.get('mpp')!r}")
        if not 0 <= s["overlap_px"] < s["tile_px"]:
            raise TilingError(f"tiling overlap_px must be in [0, tile_px), got {s['overlap_px']!r}")
    if not 0 <= s["min_tissue"] <= 1:
        raise TilingError(f"tiling min_tissue must be a fraction in [0, 1], got {s['min_tissue']!r}")
    if s["edge"] not in ("drop", "pad"):
        raise TilingError(f"tiling edge must be 'drop' or 'pad', got {s['edge']!r}")
    if not set(s["remove_artefacts"]) <= set(ARTEFACTS):
        raise TilingError(f"tiling remove_artefacts must list some of {list(ARTEFACTS)}, got {s['remove_artefacts']!r}")
    return s


@dataclass(frozen=True)
class GridGeometry:
    """A grid in level-0 px: tile side, step between tiles, and the pyramid level to read tiles from."""

    size: int
    stride: int
    level: int


def grid_geometry(slide: Slide, settings: dict) -> GridGeometry:
    """Tile side and stride in level-0 px for the target mpp; errors when the slide cannot be tiled so."""
    if slide.mpp is None and settings["mpp_from_objective"] and slide.objective_power:
        slide.mpp = OBJECTIVE_MPP_AT_1X / slide.objective_power
        slide.mpp_source = "objective power"
        warnings.warn(f"{slide.path}: no µm per pixel in its metadata; assuming {slide.mpp:g} from its "
                      f"{slide.objective_power:g}x objective (mpp_from_objective); set the sample sheet's `mpp` "
                      "column to be sure", stacklevel=3)
    if slide.mpp is None:
        power = f" (its objective power, {slide.objective_power:g}x, is known: `mpp_from_objective: true` in the " \
            "tiling would use it)" if slide.objective_power else ""
        raise SlideError(
            f"{slide.path} has no µm-per-pixel in its metadata{power}; add an `mpp` column to the sample sheet with "
            "its level-0 µm per pixel (about 0.25 at 40x, 0.5 at 20x), or use a tiling with `mode: whole`"
        )
    downsample = settings["mpp"] / slide.mpp
    size = max(1, round(settings["tile_px"] * downsample))
    stride = max(1, size - round(settings["overlap_px"] * downsample))
    w, h = slide.dimensions
    if (size > w or size > h) and settings["edge"] == "drop":
        raise SlideError(
            f"{slide.path}: a tile of {settings['tile_px']} px at {settings['mpp']} µm/px covers {size} level-0 px, "
            f"more than the slide ({w} x {h}); use a smaller tile_px or mpp, `edge: pad`, or `mode: whole`"
        )
    return GridGeometry(size, stride, best_level(slide, downsample))


def grid_tiles(dimensions: tuple[int, int], grid: GridGeometry, mask: np.ndarray, min_tissue: float,
               pad: bool = False) -> pd.DataFrame:
    """Tiles on a regular level-0 grid from (0, 0), kept where the mask covers at least `min_tissue` of them.

    Partial tiles at the right and bottom edges are dropped, or with `pad` kept (they read white beyond the edge
    and their tissue fraction counts that part as glass).
    """
    w, h = dimensions
    ys, xs = np.meshgrid(_starts(h, grid, pad), _starts(w, grid, pad), indexing="ij")
    x, y = xs.ravel(), ys.ravel()  # row-major: sorted by y, then x
    fraction = mask_fraction(mask, dimensions, x, y, grid.size)
    keep = fraction >= min_tissue
    return tile_table(x[keep], y[keep], grid.level, grid.size, fraction[keep])


def _starts(length: int, grid: GridGeometry, pad: bool) -> np.ndarray:
    """Tile origins along one side: whole tiles only, or (pad) until the side is covered."""
    if pad:
        return np.arange(0, max(1, math.ceil((length - grid.size) / grid.stride) + 1)) * grid.stride
    return np.arange(0, length - grid.size + 1, grid.stride)


def whole_tile(slide: Slide, tile_px: int) -> pd.DataFrame:
    """One tile: the entire image, read at the coarsest level that still has `tile_px` on its longest side."""
    size = max(slide.dimensions)
    return tile_table([0], [0], best_level(slide, size / tile_px), size, [1.0])


def tile_table(x, y, level: int, size: int, fraction) -> pd.DataFrame:
    n = len(x)
    return pd.DataFrame(
        {
            "x": np.asarray(x, np.int64),
            "y": np.asarray(y, np.int64),
            "level": np.full(n, level, np.int32),
            "tile_px_level0": np.full(n, size, np.int32),
            "tissue_fraction": np.asarray(fraction, np.float32),
        }
    )


def mask_fraction(mask: np.ndarray, dimensions: tuple[int, int], x, y, size: int) -> np.ndarray:
    """Exact area-weighted mean of `mask` over each level-0 square (x, y, size), for many squares at once.

    The integral of a pixelwise-constant image is bilinear inside each pixel, so bilinear interpolation of the
    summed-area table gives exact sums over squares whose corners fall between mask pixels.
    """
    mh, mw = mask.shape
    sat = np.zeros((mh + 1, mw + 1))
    sat[1:, 1:] = mask.cumsum(0).cumsum(1)
    sx, sy = dimensions[0] / mw, dimensions[1] / mh
    u0, u1 = np.asarray(x) / sx, (np.asarray(x) + size) / sx
    v0, v1 = np.asarray(y) / sy, (np.asarray(y) + size) / sy
    total = _integral(sat, u1, v1) - _integral(sat, u0, v1) - _integral(sat, u1, v0) + _integral(sat, u0, v0)
    return np.clip(total / ((u1 - u0) * (v1 - v0)), 0.0, 1.0)


def _integral(sat: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The summed-area table at fractional (u, v), bilinearly interpolated."""
    u = np.clip(u, 0, sat.shape[1] - 1)
    v = np.clip(v, 0, sat.shape[0] - 1)
    i = np.minimum(u.astype(np.int64), sat.shape[1] - 2)
    j = np.minimum(v.astype(np.int64), sat.shape[0] - 2)
    fu, fv = u - i, v - j
    top = sat[j, i] * (1 - fu) + sat[j, i + 1] * fu
    bottom = sat[j + 1, i] * (1 - fu) + sat[j + 1, i + 1] * fu
    return top * (1 - fv) + bottom * fv


def tile_centres(tiles: pd.DataFrame, dimensions: tuple[int, int]) -> np.ndarray:
    """(n, 2) level-0 centres; a whole-image tile is wider than the image, so clip its extent to the image."""
    size = tiles["tile_px_level0"].to_numpy(np.float64)
    cx = tiles["x"].to_numpy() + np.minimum(size, dimensions[0]) / 2
    cy = tiles["y"].to_numpy() + np.minimum(size, dimensions[1]) / 2
    return np.column_stack([cx, cy])


# --- annotations -----------------------------------------------------------------------------------------


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


# --- pixels ----------------------------------------------------------------------------------------------


def read_tile(slide: Slide, row, tile_px: int) -> np.ndarray:
    """uint8 (tile_px, tile_px, 3) for a row of a tile table (itertuples namedtuple or Series).

    A row whose square covers the whole image (whole mode) is the full image padded to a square with white,
    centred; any other row is the square read at its level.
    """
    x, y, level, size = int(row.x), int(row.y), int(row.level), int(row.tile_px_level0)
    if x == 0 and y == 0 and size >= max(slide.dimensions):
        pixels = _whole_image_square(slide, level)
    else:
        side = max(1, round(size / slide.level_downsamples[level]))
        pixels = slide.read_region(x, y, level, side, side)
    return _resize(pixels, tile_px)


def _whole_image_square(slide: Slide, level: int) -> np.ndarray:
    w, h = slide.level_dimensions[level]
    side = max(w, h)
    square = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = slide.read_region(0, 0, level, w, h)
    return square


def _resize(pixels: np.ndarray, tile_px: int) -> np.ndarray:
    """Pillow's bilinear is antialiased when shrinking (like torchvision's) and, unlike Lanczos, never rings."""
    if pixels.shape[:2] == (tile_px, tile_px):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((tile_px, tile_px), Image.Resampling.BILINEAR))


# --- storage ---------------------------------------------------------------------------------------------


def write_tiles(tiles: pd.DataFrame, path: str | os.PathLike, meta: dict) -> None:
    """Parquet written atomically, `meta` as JSON in the schema metadata under b"tileprobe"."""
    table = pa.Table.from_pandas(tiles, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), META_KEY: json.dumps(meta, default=_json_default).encode()}
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata), tmp)


def read_tiles(path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """The tile table and the `meta` it was written with ({} when none)."""
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    return table.to_pandas(), meta


def _json_default(value):
    """numpy scalars and paths, as found in configs and computed parameters."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"tile table meta value {value!r} of type {type(value).__name__} is not JSON serialisable")


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
