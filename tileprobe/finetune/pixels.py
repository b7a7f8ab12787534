"""The pixels of a task's rows, read as extraction reads them: a tile-level task's tiles from their slides (the
block reader), an image-level task's whole images (resized as in `mode: whole`), in the task's row order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tileprobe.errors import TileprobeError
from tileprobe.learn.data import TaskData
from tileprobe.tiling.blocks import TileReader
from tileprobe.tiling.collection import read_image

LEVELS = ("tile", "image")


def task_pixels(data: TaskData, level: str, samples: pd.DataFrame, tiles: dict[str, pd.DataFrame],
                tile_px: int) -> np.ndarray:
    """uint8 (rows, tile_px, tile_px, 3): row i's tile (tile level: `ids` slide, x, y) or image (image level).

    `samples` holds the sheet rows (slide, path, mpp); `tiles` each slide's tile table (tile level)."""
    if level not in LEVELS:
        raise TileprobeError(f"fine-tuning trains on one tile or image per row; a {level}-level task pools many, "
                             "so remove `finetune` from it (or fine-tune a tile- or image-level task).")
    sheet = samples.set_index(samples["slide"].astype(str))
    out = np.zeros((len(data), tile_px, tile_px, 3), dtype=np.uint8)
    if level == "image":
        for i, slide in enumerate(data.ids["slide"].astype(str)):
            mpp = sheet.at[slide, "mpp"] if "mpp" in sheet.columns else None
            out[i] = read_image(sheet.at[slide, "path"], None if pd.isna(mpp) else float(mpp), tile_px)[1]
        return out
    for slide, rows in data.ids.groupby("slide", sort=False):
        table = tiles[slide]
        index = pd.MultiIndex.from_frame(table[["x", "y"]])
        wanted = index.get_indexer(pd.MultiIndex.from_frame(rows[["x", "y"]]))
        mpp = sheet.at[slide, "mpp"] if "mpp" in sheet.columns else None
        reader = TileReader(sheet.at[slide, "path"], table.iloc[wanted].reset_index(drop=True), tile_px,
                            None if pd.isna(mpp) else float(mpp))
        for start, batch in reader.batches(256):
            out[rows.index.to_numpy()[start:start + len(batch)]] = batch
    return out
