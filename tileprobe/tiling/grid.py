"""Tissue-only tile tables: where the tiles of a slide are and at which level to read them.

A tile is a square of `tile_px_level0` level-0 pixels at (`x`, `y`); `tileprobe.tiling.read.read_tile` turns
a row into pixels at the tiling's resolution.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tileprobe.config.defaults import fill_defaults
from tileprobe.errors import TileprobeError
from tileprobe.slides.base import Slide, SlideError, best_level
from tileprobe.tiling.annotations import Region, label_points, read_annotations
from tileprobe.tiling.table import is_nan
from tileprobe.tiling.tissue import ARTEFACTS, tissue_mask

# µm per pixel at 1x objective power, the usual scanner optics: 20x -> 0.5, 40x -> 0.25.
OBJECTIVE_MPP_AT_1X = 10.0


COLUMNS = {
    "x": "int64",
    "y": "int64",
    "level": "int32",
    "tile_px_level0": "int32",
    "tissue_fraction": "float32",
}


class TilingError(TileprobeError, ValueError):
    """A tiling config value that cannot work; the message names the key."""


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
    has_annotations = annotations is not None and not is_nan(annotations) and str(annotations) != ""
    # No `classes`: every annotation class is allowed.
    regions = read_annotations(annotations, settings.get("classes")) if has_annotations else []
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
    """`tiling` with the schema's defaults filled in and values checked; errors name the key."""
    s = fill_defaults("tiling", tiling)
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
