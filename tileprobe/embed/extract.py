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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

import tileprobe
from tileprobe.embed.backbone import Backbone, default_device
from tileprobe.embed.load import load_backbone
from tileprobe.embed.store import EmbeddingWriter
from tileprobe.embed.views import make_views
from tileprobe.embed.views import provenance as view_provenance
from tileprobe.errors import TileprobeError
from tileprobe.slides.registry import open_slide
from tileprobe.tiling.read import read_tile
from tileprobe.threads import limited_threads
from tileprobe.tiling.table import read_tiles

log = logging.getLogger(__name__)


class TileDataset(Dataset):
    """Tiles of one slide as uint8 tensors (views, tile_px, tile_px, 3), in tile-table order.

    View 0 is the tile as read; further views are seeded image-space augmentations (`tileprobe.views`), made
    here so that they are computed in the workers, beside the reading. The slide is opened on first use in
    whichever process reads, so a forked or spawned worker never shares a file handle with its parent.
    """

    def __init__(self, slide_path: str | Path, tiles: pd.DataFrame, tile_px: int, mpp: float | None = None,
                 views: int = 1, view_seed: int = 0):
        self.slide_path = Path(slide_path)
        self.rows = list(tiles[["x", "y", "level", "tile_px_level0"]].itertuples(index=False))
        self.tile_px = int(tile_px)
        self.mpp = mpp
        self.views = int(views)
        self.view_seed = int(view_seed)
        self._slide = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._slide is None:
            self._slide = open_slide(self.slide_path, mpp=self.mpp)
        tile = read_tile(self._slide, self.rows[index], self.tile_px)
        stack = make_views(tile, self.views, self.view_seed, index) if self.views > 1 else tile[None]
        return torch.from_numpy(np.require(stack, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"]))

    def close(self) -> None:
        if self._slide is not None:
            self._slide.close()
            self._slide = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_slide": None}  # handles do not travel to workers


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers decode images; the model's threads belong to the main process


def tile_loader(dataset: TileDataset, batch_size: int, threads: int, device: torch.device) -> DataLoader:
    """Batches of tiles read by `threads - 1` workers while the main process runs the model."""
    workers = max(0, int(threads) - 1)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=2 if workers else None,
        persistent_workers=False,
    )


def worker_error(err: TileprobeError) -> TileprobeError:
    """The error a DataLoader worker raised, with its own message: torch re-raises it in the main process with
    the worker's whole traceback as the message, which would bury what the user has to fix."""
    text = str(err)
    marker = f"{type(err).__module__}.{type(err).__qualname__}: "
    if "Original Traceback" not in text or marker not in text:
        return err
    return type(err)(text.rsplit(marker, 1)[1].strip())


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
    views: int = 1,
    view_seed: int = 0,
) -> Path:
    """Embed every tile of one slide's tile table into `out_store` (Zarr, `views` views); returns its path."""
    job = SlideJob(slide_path, tiles_path, out_store, mpp, provenance_extra)
    return embed_slides([job], tile_px, backbone_spec, threads=threads, views=views, view_seed=view_seed)[0]


@dataclass
class SlideJob:
    """One slide to embed: where its pixels and tile table are, where its store goes."""

    slide_path: str | Path
    tiles_path: str | Path
    out_store: str | Path
    mpp: float | None = None
    provenance_extra: dict | None = None


def embed_slides(jobs: list[SlideJob], tile_px: int, backbone_spec: dict, threads: int = 1, views: int = 1,
                 view_seed: int = 0, device: str | torch.device | None = None,
                 backbone: Backbone | None = None) -> list[Path]:
    """Embed many slides with one backbone loaded once (a cluster job that bundles many small slides).

    Each store is written and renamed on its own, so a crash keeps the slides already finished. `backbone`:
    one already loaded from `backbone_spec` (benchmarks, notebooks), else it is loaded on the first slide.
    """
    if int(views) < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    device = backbone.device if backbone is not None else (torch.device(device) if device else default_device())
    with limited_threads(threads):
        done = []
        for job in jobs:
            tiles, _ = read_tiles(job.tiles_path)
            with open_slide(job.slide_path, mpp=job.mpp):
                pass  # a missing or unreadable slide fails here, with its own message, not inside a worker
            if backbone is None:
                backbone = load_backbone(backbone_spec, input_px=tile_px, device=device)
            done.append(_embed(backbone, job, tiles, tile_px, int(threads), int(views), int(view_seed)))
        return done


def _embed(backbone: Backbone, job: SlideJob, tiles: pd.DataFrame, tile_px: int, threads: int, views: int,
           view_seed: int) -> Path:
    dataset = TileDataset(job.slide_path, tiles, tile_px, job.mpp, views=views, view_seed=view_seed)
    coords = {c: tiles[c].to_numpy(dtype="int64") for c in ("x", "y")}
    # Thread count changes float rounding (reduction order), so it belongs with what made the numbers.
    extra = {**view_provenance(views, view_seed), "torch_threads": torch.get_num_threads(),
             **(job.provenance_extra or {})}
    attrs = store_attrs(backbone.provenance(), extra, len(tiles))
    # The model sees about batch_size images whatever the number of views, so memory does not grow with them.
    batch_tiles = max(1, backbone.batch_size // views)
    name = Path(job.slide_path).name
    # In a log file (no terminal) a bar redrawn ten times a second is noise: update rarely there.
    progress = tqdm(total=len(dataset), unit="tile", desc=name, file=sys.stderr,
                    mininterval=0.5 if sys.stderr.isatty() else 30.0)
    started = time.perf_counter()
    try:
        with EmbeddingWriter(job.out_store, len(dataset), backbone.dims, n_views=views, coords=coords,
                             attrs=attrs) as out:
            start = 0
            for batch in tile_loader(dataset, batch_tiles, threads, backbone.device):
                b = len(batch)
                # (b, views, H, W, 3) -> one model batch (b * views) -> per view (b, dim)
                feats = backbone.embed(batch.flatten(0, 1))
                for view in range(views):
                    out.write(view, start, {layer: a.reshape(b, views, -1)[:, view] for layer, a in feats.items()})
                start += b
                progress.update(b)
    except TileprobeError as err:
        raise worker_error(err) from None
    finally:
        progress.close()
        dataset.close()
    seconds = time.perf_counter() - started
    log.info("%s: %d tiles x %d view(s) with %s in %.1f s (%.1f tiles/s) on %s, %d thread(s)", name, len(tiles),
             views, backbone.name, seconds, len(tiles) / max(seconds, 1e-9), backbone.device.type, threads)
    return Path(job.out_store)
