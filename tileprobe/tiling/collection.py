"""Tiling of an image collection's shard (`mode: whole`): each image checked, sized and shown on a contact sheet.

A shard's table has one row per image (its whole-image tile, as `grid.whole_tile` cuts it, plus width, height,
mpp and `error`). An image that cannot be read (missing, zero bytes, truncated, not an image) gets its error in
the row instead of failing the shard: extraction skips it, the tiling manifest flags it, tasks skip it with a
warning that names it. Only a shard in which no image can be read fails.
"""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pandas as pd

from tileprobe.errors import TileprobeError
from tileprobe.slides.registry import open_slide
from tileprobe.tiling.grid import whole_tile
from tileprobe.tiling.read import read_tile

log = logging.getLogger(__name__)

COLUMNS = ["slide", "path", "x", "y", "level", "tile_px_level0", "tissue_fraction", "width", "height", "mpp",
           "mpp_source", "error"]
UNREADABLE = "unreadable"  # the tiling manifest's flag for such an image


class ShardError(TileprobeError):
    """No image of a shard could be read."""


def read_image(path: str | os.PathLike, mpp: float | None, tile_px: int) -> tuple[dict, np.ndarray]:
    """(table row, uint8 (tile_px, tile_px, 3) pixels) of one image, read exactly as extraction reads it."""
    with open_slide(path, mpp=mpp) as slide:
        tile = whole_tile(slide, tile_px).iloc[0]
        pixels = read_tile(slide, tile, tile_px)
        width, height = slide.dimensions
        row = {**tile.to_dict(), "width": width, "height": height, "mpp": slide.mpp, "mpp_source": slide.mpp_source}
    return row, pixels


def describe(error: BaseException) -> str:
    """One line for the table and the report: tileprobe's own message, or the library's with its type."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, TileprobeError) else f"{type(error).__name__}: {text}"


def tile_shard(images: list[dict], tile_px: int, shard: str = "") -> tuple[pd.DataFrame, list[np.ndarray | None]]:
    """The shard table of `images` ({slide, path, mpp}) and each image's pixels (None where unreadable)."""
    rows, pixels = [], []
    for image in images:
        base = {"slide": image["slide"], "path": str(image["path"])}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a collection's images rarely carry mpp; whole mode needs none
                row, tile = read_image(image["path"], image.get("mpp"), tile_px)
            rows.append({**base, **row, "error": ""})
            pixels.append(tile)
        except Exception as err:  # noqa: BLE001 - one bad image must not cost the shard; its error is kept
            rows.append({**base, "x": 0, "y": 0, "level": 0, "tile_px_level0": 0, "tissue_fraction": 0.0,
                         "width": 0, "height": 0, "mpp": None, "mpp_source": None, "error": describe(err)})
            pixels.append(None)
            log.warning("%s (%s): %s; skipped, the rest of the shard goes on", image["slide"], image["path"],
                        rows[-1]["error"])
    table = pd.DataFrame(rows, columns=COLUMNS).astype({"x": "int64", "y": "int64", "level": "int32",
                                                        "tile_px_level0": "int32", "tissue_fraction": "float32",
                                                        "width": "int64", "height": "int64", "mpp": "float64"})
    readable = table["error"] == ""
    if len(table) and not readable.any():
        first = table.iloc[0]
        raise ShardError(f"shard {shard}: none of its {len(table)} image(s) can be read; the first, "
                         f"{first['slide']} ({first['path']}), says: {first['error']}. Check the `path` column "
                         "of the sample sheet and that the files are complete images")
    return table, pixels


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a shard table whose image was read."""
    return table[table["error"].fillna("") == ""].reset_index(drop=True)
