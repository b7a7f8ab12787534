"""Fast tile reading for extraction: neighbouring tiles read as one block, blocks decoded in worker processes.

A per-tile loop decodes every compressed scanner tile under a tile's square, and a scanner tile shared by
neighbouring squares once per square; it also pays a library call and a colour conversion per tile. Here tiles
are grouped into blocks of about `block_px` level pixels in grid order, each block is read once, and its tiles
are cut out of it. TIFF-based slides whose levels are plain TIFF pages (Aperio, generic tiled TIFF, OME-TIFF,
non-pyramidal TIFF) are decoded straight from their pages with tifffile/imagecodecs, skipping OpenSlide's
compositing; every other format reads its blocks through `Slide.read_region`.

Pixels equal `tiling.read_tile`'s for level-0 tiles; at coarser levels a tile may start up to one level pixel
away (both round the level-0 origin down to a level pixel; OpenSlide interpolates fractional origins).

    reader = TileReader(slide_path, tiles, tile_px, mpp=None, workers=3)
    for start, pixels in reader.batches(batch_size):   # table order, contiguous: tiles[start : start + len]
        ...                                             # pixels: uint8 (n, tile_px, tile_px, 3)

`transform(rows, pixels)`, if given, runs where the block was read (a worker) on each block's tiles and their
row numbers in the table; extraction makes its augmented views there, beside the decoding. Workers are forked
(spawned where there is no fork), ignore Ctrl-C (the main process stops the pool) and die with the main process
however it dies; an error a worker raises reaches the caller with its own message, as a plain error.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tileprobe.errors import TileprobeError
from tileprobe.slides.base import Slide, SlideError
from tileprobe.slides.registry import open_slide
from tileprobe.tiling.read import read_tile, resize_tile

# A block's side in level pixels: 8 x 8 tiles of 224 px, about 10 MB of RGB.
BLOCK_PX = 2048


@dataclass(frozen=True)
class Block:
    """Tiles (row numbers of the tile table) read with one region read at `level`."""

    rows: np.ndarray
    level: int
    whole: bool = False  # a whole-image tile (mode: whole): read by read_tile itself


def plan_blocks(tiles: pd.DataFrame, dimensions: tuple[int, int], level_downsamples, block_px: int = BLOCK_PX
                ) -> list[Block]:
    """Tiles grouped into square blocks of about `block_px` level pixels, in order of each block's first tile,
    so that a table in grid order completes its tiles roughly in table order."""
    x = tiles["x"].to_numpy(np.int64)
    y = tiles["y"].to_numpy(np.int64)
    level = tiles["level"].to_numpy(np.int64)
    size = tiles["tile_px_level0"].to_numpy(np.int64)
    whole = (x == 0) & (y == 0) & (size >= max(dimensions))
    span = np.array([block_px * level_downsamples[lv] for lv in range(len(level_downsamples))])[level]
    key = pd.DataFrame({"level": level, "size": size, "bx": x // span, "by": y // span, "whole": whole})
    key.loc[whole, "bx"] = np.arange(whole.sum())  # each whole-image tile alone
    groups = key.groupby(["level", "size", "by", "bx", "whole"], sort=False).indices
    blocks = [Block(np.sort(rows), int(k[0]), bool(k[4])) for k, rows in groups.items()]
    return sorted(blocks, key=lambda b: b.rows[0])


# (row numbers, uint8 (n, tile_px, tile_px, 3)) -> an array of n items; must pickle (a module-level function
# or a functools.partial of one) where the reader has workers.
Transform = Callable[[np.ndarray, np.ndarray], np.ndarray]


class TileReader:
    """Tiles of one slide's tile table as uint8 arrays, read block by block, by `workers` processes (0: here)."""

    def __init__(self, slide_path: str | os.PathLike, tiles: pd.DataFrame, tile_px: int, mpp: float | None = None,
                 workers: int = 0, block_px: int = BLOCK_PX, transform: Transform | None = None):
        self.slide_path = Path(slide_path)
        self.tiles = tiles[["x", "y", "level", "tile_px_level0"]].reset_index(drop=True)
        self.tile_px = int(tile_px)
        self.mpp = mpp
        self.workers = max(0, int(workers))
        self.transform = transform
        with open_slide(self.slide_path, mpp=mpp) as slide:  # a bad slide fails here, with its own message
            self.blocks = plan_blocks(self.tiles, slide.dimensions, slide.level_downsamples, block_px)

    def __len__(self) -> int:
        return len(self.tiles)

    def blocks_read(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row numbers, uint8 (n, tile_px, tile_px, 3), or what `transform` made of them) per block, in plan
        order. With workers, up to 2 x workers blocks are read ahead while the caller works on earlier ones."""
        columns = {c: self.tiles[c].to_numpy() for c in self.tiles.columns}
        jobs = ((b, {c: v[b.rows] for c, v in columns.items()}) for b in self.blocks)
        if self.workers == 0:
            _open_worker(self.slide_path, self.mpp, self.tile_px, self.transform)
            try:
                for block, rows in jobs:
                    yield block.rows, _read_block(block, rows)
            finally:
                _close_worker()
            return
        # fork where there is one, as torch's DataLoader does: a spawned worker re-imports pandas, matplotlib and
        # skimage (seconds each). Workers open their own slide after the fork and use no OpenMP.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_open_worker,
                                   initargs=(self.slide_path, self.mpp, self.tile_px, self.transform, os.getpid()))
        try:
            pending = []
            for job in jobs:
                pending.append((job[0].rows, pool.submit(_read_block, *job)))
                if len(pending) >= 2 * self.workers:  # bounded read-ahead keeps memory flat
                    rows, future = pending.pop(0)
                    yield rows, future.result()
            for rows, future in pending:
                yield rows, future.result()
        finally:
            # An error, or a caller that stopped early: blocks not yet started are dropped, not read.
            pool.shutdown(wait=True, cancel_futures=True)

    def batches(self, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
        """(start, uint8 (n, tile_px, tile_px, 3), or `transform`'s items stacked) covering the table in order,
        `batch_size` tiles at a time."""
        done: dict[int, np.ndarray] = {}
        start = 0
        for rows, pixels in self.blocks_read():
            done.update(zip(rows.tolist(), pixels))
            while start + batch_size <= len(self) and all(i in done for i in range(start, start + batch_size)):
                yield start, np.stack([done.pop(i) for i in range(start, start + batch_size)])
                start += batch_size
        if start < len(self):
            yield start, np.stack([done.pop(i) for i in range(start, len(self))])


# --- worker side: one open slide per process -------------------------------------------------------------

_worker: dict = {}


def _open_worker(slide_path: Path, mpp, tile_px: int, transform: Transform | None = None,
                 parent: int | None = None) -> None:
    """Open the slide where blocks are read: a worker process (`parent`: the main process's pid) or, without
    a parent, the main process itself."""
    if parent is not None:  # Ctrl-C reaches the whole process group: the main process shuts the pool down
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with(parent)
    slide = open_slide(slide_path, mpp=mpp)
    _worker.update(slide=slide, tile_px=tile_px, transform=transform)


def _die_with(parent: int) -> None:
    """End this worker when the job's main process dies, however it dies. A job killed with SIGKILL (the OOM
    killer, a cluster's time limit) cannot shut its pool down; its workers, blocked on a queue whose write end
    they hold themselves, would live on, keep the job's output pipe open and hang whoever waits for it."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:  # no death signal: watch for re-parenting
        def watch():
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # it died before the lines above took effect
        os._exit(1)


def _close_worker() -> None:
    if "slide" in _worker:
        _worker.pop("slide").close()
        _worker.clear()


def level_pages(slide: Slide):
    """(TiffFile, TIFF page per level) when the slide's levels are decoded straight from TIFF pages, else None."""
    return slide.tiff_pages


def _read_block(block: Block, rows: dict) -> np.ndarray:
    try:
        pixels = _read_pixels(block, rows)
    except TileprobeError as err:
        kind, message = type(err), str(err)
    except Exception as err:  # noqa: BLE001 -- anything a reader library raises reaches the user named
        kind = SlideError
        message = f"cannot read tiles of {_worker['slide'].path}: {type(err).__name__}: {err}; the file may be damaged"
    else:
        transform = _worker["transform"]
        return pixels if transform is None else transform(block.rows, pixels)
    # A fresh error raised outside the handler, so that it carries no cause or context: once tblib's pickling is
    # installed (distributed does so) the chain travels too, and a codec's exception that cannot be rebuilt in
    # the parent (imagecodecs' DeflateError) would break the pool instead of reporting.
    raise kind(message)


def _read_pixels(block: Block, rows: dict) -> np.ndarray:
    slide, tile_px = _worker["slide"], _worker["tile_px"]
    n = len(block.rows)
    if block.whole:
        row = pd.Series({c: v[0] for c, v in rows.items()})
        return read_tile(slide, row, tile_px)[None]
    ds = slide.level_downsamples[block.level]
    # level-pixel origin of each tile, rounded down as the TIFF reader does
    lx = np.floor(rows["x"] / ds).astype(np.int64)
    ly = np.floor(rows["y"] / ds).astype(np.int64)
    side = max(1, round(int(rows["tile_px_level0"][0]) / ds))
    x0, y0 = int(lx.min()), int(ly.min())
    w, h = int(lx.max()) - x0 + side, int(ly.max()) - y0 + side
    region = slide.read_level(block.level, x0, y0, w, h)
    out = np.empty((n, tile_px, tile_px, 3), np.uint8)
    for i in range(n):
        ox, oy = int(lx[i]) - x0, int(ly[i]) - y0
        out[i] = resize_tile(np.ascontiguousarray(region[oy : oy + side, ox : ox + side]), tile_px)
    return out
