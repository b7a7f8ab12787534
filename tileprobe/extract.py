"""Extraction: read a slide's tiles straight from the image, embed them in batches, stream into a store.

Tiles are never written to disk as images: a DataLoader's workers each open their own slide handle and call
`tiling.read_tile`, the same function every other part of tileprobe reads pixels with, while the main process
runs the backbone and appends each batch to the Zarr store.
"""

from __future__ import annotations

import datetime
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

import tileprobe
from tileprobe.backbones import default_device, load_backbone
from tileprobe.slides import open_slide
from tileprobe.store import EmbeddingWriter
from tileprobe.tiling import read_tile, read_tiles

log = logging.getLogger(__name__)


class TileDataset(Dataset):
    """Tiles of one slide as uint8 tensors (tile_px, tile_px, 3), in tile-table order.

    The slide is opened on first use in whichever process reads, so a forked or spawned worker never shares
    a file handle with its parent.
    """

    def __init__(self, slide_path: str | Path, tiles: pd.DataFrame, tile_px: int, mpp: float | None = None):
        self.slide_path = Path(slide_path)
        self.rows = list(tiles[["x", "y", "level", "tile_px_level0"]].itertuples(index=False))
        self.tile_px = int(tile_px)
        self.mpp = mpp
        self._slide = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._slide is None:
            self._slide = open_slide(self.slide_path, mpp=self.mpp)
        tile = read_tile(self._slide, self.rows[index], self.tile_px)
        return torch.from_numpy(np.require(tile, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"]))

    def close(self) -> None:
        if self._slide is not None:
            self._slide.close()
            self._slide = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_slide": None}  # handles do not travel to workers


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers decode images; the model's threads belong to the main process


def tile_loader(dataset: TileDataset, batch_size: int, threads: int, device: torch.device) -> DataLoader:
    workers = max(0, int(threads) - 1)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=2 if workers else None,
    )


def store_attrs(provenance: dict, extra: dict | None, n_tiles: int) -> dict:
    """Everything that made this store, for reuse checks and for readers a year later."""
    return {
        **provenance,
        **(extra or {}),
        "n_tiles": int(n_tiles),
        "tileprobe_version": tileprobe.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def embed_slide(
    slide_path: str | Path,
    tiles_path: str | Path,
    tile_px: int,
    backbone_spec: dict,
    out_store: str | Path,
    mpp: float | None = None,
    threads: int = 1,
    provenance_extra: dict | None = None,
) -> Path:
    """Embed every tile of one slide's tile table into `out_store` (Zarr, one view); returns the store path."""
    threads = max(1, int(threads))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _embed(slide_path, tiles_path, tile_px, backbone_spec, out_store, mpp, threads, provenance_extra)
    finally:
        torch.set_num_threads(previous_threads)


def _embed(slide_path, tiles_path, tile_px, backbone_spec, out_store, mpp, threads, provenance_extra) -> Path:
    device = default_device()
    tiles, _ = read_tiles(tiles_path)
    with open_slide(slide_path, mpp=mpp):
        pass  # a missing or unreadable slide fails here, with its own message, not inside a worker
    backbone = load_backbone(backbone_spec, input_px=tile_px, device=device)
    dataset = TileDataset(slide_path, tiles, tile_px, mpp)
    coords = {c: tiles[c].to_numpy(dtype="int64") for c in ("x", "y")}
    attrs = store_attrs(backbone.provenance(), provenance_extra, len(tiles))
    # In a log file (no terminal) a bar redrawn ten times a second is noise: update rarely there.
    progress = tqdm(total=len(dataset), unit="tile", desc=Path(slide_path).name, file=sys.stderr,
                    mininterval=0.5 if sys.stderr.isatty() else 30.0)
    started = time.perf_counter()
    try:
        with EmbeddingWriter(out_store, len(dataset), backbone.dims, n_views=1, coords=coords, attrs=attrs) as out:
            start = 0
            for batch in tile_loader(dataset, backbone.batch_size, threads, device):
                out.write(0, start, backbone.embed(batch))
                start += len(batch)
                progress.update(len(batch))
    finally:
        progress.close()
        dataset.close()
    seconds = time.perf_counter() - started
    log.info("%s: %d tiles with %s in %.1f s (%.1f tiles/s) on %s, %d thread(s)", Path(slide_path).name, len(tiles),
             backbone.name, seconds, len(tiles) / max(seconds, 1e-9), device.type, threads)
    return Path(out_store)
