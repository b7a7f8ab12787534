"""Extraction: read a slide's tiles straight from the image, embed them in batches, stream into a store.

Tiles are never written to disk as images: `tiling.blocks.TileReader` reads them in worker processes, one per
CPU of the job (`reader_workers`), each with its own slide handle: one read per block of neighbouring tiles,
TIFF-based slides' tiles decoded straight from their pages, other formats through their reader (OpenSlide, ...),
the tiles cut out and resized as `tiling.read_tile` (what every other part of tileprobe reads pixels with)
does, to the same pixels (`tiling.blocks` names the one exception); image-space views are made there too.
Meanwhile the main process runs the backbone on the job's torch threads and appends each batch to the Zarr
store.
"""

from __future__ import annotations

import datetime
import logging
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

import tileprobe
from tileprobe.embed.backbone import Backbone, default_device
from tileprobe.embed.load import load_backbone
from tileprobe.embed.store import EmbeddingWriter
from tileprobe.embed.views import make_views
from tileprobe.embed.views import provenance as view_provenance
from tileprobe.errors import TileprobeError
from tileprobe.slides.registry import open_slide
from tileprobe.threads import limited_threads
from tileprobe.tiling.blocks import TileReader
from tileprobe.tiling.table import read_tiles

log = logging.getLogger(__name__)


def reader_workers(threads: int, device: torch.device) -> int:
    """Reader processes for a job of `threads` CPUs: one per CPU, beside the model's `threads` torch threads.

    Reading costs a few percent of the forward pass on a CPU (resnet50 at 224 px), so the readers mostly wait
    on their read-ahead and, being processes, overlap the model instead of pausing it. A CPU job of one thread
    reads in its own process (0): measured on 2 cores, 1 reader process was no faster (pipeline / model-only
    0.98 either way, benchmarks/scale_wsi.py --threads 1), and the job's one CPU stays one process. On a GPU the
    CPU is free while the model runs, so even one thread reads in a process beside it.
    """
    threads = max(1, int(threads))
    return threads if threads > 1 or device.type == "cuda" else 0


def tile_views(views: int, seed: int, rows: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """uint8 (n, views, H, W, 3) for a block's tiles: view 0 the tile, then its seeded augmentations, each seeded
    by the tile's row number in the table, so views depend neither on blocks nor on workers."""
    return np.stack([make_views(tile, views, seed, int(row)) for row, tile in zip(rows, pixels)])


def model_batch(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """One model batch uint8 (n * views, H, W, 3) from the reader's (n, [views,] H, W, 3); pinned where a GPU
    copies it, so the copy to the device does not wait on pageable memory."""
    batch = torch.from_numpy(pixels.reshape(-1, *pixels.shape[-3:]))
    return batch.pin_memory() if device.type == "cuda" else batch


def store_attrs(provenance: dict, extra: dict | None, n_tiles: int) -> dict:
    """Everything that made this store, for reuse checks and for readers a year later."""
    return {
        **provenance,
        **(extra or {}),
        "n_tiles": int(n_tiles),
        "tileprobe_version": tileprobe.__version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
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
    # Views are made in the reader's workers, beside the decoding.
    transform = partial(tile_views, views, view_seed) if views > 1 else None
    reader = TileReader(job.slide_path, tiles, tile_px, job.mpp, workers=reader_workers(threads, backbone.device),
                        transform=transform)
    coords = {c: tiles[c].to_numpy(dtype="int64") for c in ("x", "y")}
    # Thread count changes float rounding (reduction order), so it belongs with what made the numbers.
    extra = {**view_provenance(views, view_seed), "torch_threads": torch.get_num_threads(),
             **(job.provenance_extra or {})}
    attrs = store_attrs(backbone.provenance(), extra, len(tiles))
    # The model sees about batch_size images whatever the number of views, so memory does not grow with them.
    batch_tiles = max(1, backbone.batch_size // views)
    name = Path(job.slide_path).name
    # In a log file (no terminal) a bar redrawn ten times a second is noise: update rarely there.
    progress = tqdm(total=len(reader), unit="tile", desc=name, file=sys.stderr,
                    mininterval=0.5 if sys.stderr.isatty() else 30.0)
    started = time.perf_counter()
    try:
        # closing: a model error or Ctrl-C stops the reader's workers now, not when the traceback is freed
        with EmbeddingWriter(job.out_store, len(reader), backbone.dims, n_views=views, coords=coords,
                             attrs=attrs) as out, closing(reader.batches(batch_tiles)) as batches:
            for start, pixels in batches:
                b = len(pixels)
                # (b, [views,] H, W, 3) -> one model batch (b * views) -> per view (b, dim)
                feats = backbone.embed(model_batch(pixels, backbone.device))
                for view in range(views):
                    out.write(view, start, {layer: a.reshape(b, views, -1)[:, view] for layer, a in feats.items()})
                progress.update(b)
    except TileprobeError as err:
        # A reader worker's error arrives as itself (concurrent.futures re-raises it) with the worker's
        # traceback as its cause: the message names the file and the fix, the traceback would bury it.
        raise err from None
    finally:
        progress.close()
    seconds = time.perf_counter() - started
    log.info("%s: %d tiles x %d view(s) with %s in %.1f s (%.1f tiles/s) on %s, %d thread(s), %d reader(s)", name,
             len(tiles), views, backbone.name, seconds, len(tiles) / max(seconds, 1e-9), backbone.device.type,
             threads, reader.workers)
    return Path(job.out_store)
