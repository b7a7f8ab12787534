"""Whole-slide extraction through the block reader (issue 13): pipeline against model-only, and reading alone.

On one synthetic JPEG-tiled Aperio-style pyramid (256-px scanner tiles, quality 90, smooth random texture,
0.25 µm/px, written here with `tests.support.slide_factory.write_aperio`), tiled at 224 px and 0.5 µm/px, so
every tile is a 448-px square of level 0 resized to 224 px:

(a) extraction: `embed.extract.embed_slides` (block reader with `threads` worker processes, model in this
    process on `threads` torch threads, Zarr store) against model-only, `Backbone.embed` on the same tiles
    already in memory as uint8 tensors, same backbone object, batch size and thread count. Interleaved, the
    order alternating each repeat; the median ratio pipeline / model-only is the figure (target >= 0.9).
    Beside it, an overlap check: the same reader feeding the same model in a loop like extraction's, timing how
    long the main process waits for tiles (it should hardly wait: the read-ahead runs during the forward pass).
(b) reading: `tiling.blocks.TileReader` with workers=0 (this process: per core) against the per-tile loop
    `tiling.read.read_tile`, interleaved; the median ratio is the figure (target >= 3).

    .venv/bin/python benchmarks/scale_wsi.py                      # defaults: about 3 minutes on 2 cores
    .venv/bin/python benchmarks/scale_wsi.py --json out.json

`measure(...)` returns the figures as a dict, for scripts that import this one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tile_read import make_slide, plain_loop  # the same slide and per-tile loop as tile_read.py
from tileprobe.embed import extract
from tileprobe.embed.extract import SlideJob, embed_slides, model_batch
from tileprobe.embed.load import load_backbone
from tileprobe.slides.registry import open_slide
from tileprobe.threads import limited_threads
from tileprobe.tiling.blocks import TileReader
from tileprobe.tiling.grid import tile_slide
from tileprobe.tiling.table import write_tiles

TILING = {"mpp": 0.5, "tile_px": 224, "tissue": "none"}


def block_reader(path: Path, tiles, tile_px: int, workers: int, batch_size: int) -> float:
    started = time.perf_counter()
    for _ in TileReader(path, tiles, tile_px, workers=workers).batches(batch_size):
        pass
    return len(tiles) / (time.perf_counter() - started)


def model_only(backbone, batches) -> float:
    started = time.perf_counter()
    for batch in batches:
        backbone.embed(batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


def pipeline(backbone, spec, slide: Path, table: Path, tile_px: int, threads: int, out: Path, n: int) -> float:
    started = time.perf_counter()
    embed_slides([SlideJob(slide, table, out)], tile_px, spec, threads=threads, backbone=backbone)
    return n / (time.perf_counter() - started)


def overlap_check(backbone, slide: Path, tiles, tile_px: int, workers: int, batch_size: int) -> dict:
    """Extraction's loop without the store, timing the main process's wait for each batch of tiles: the first
    wait is the first block being read (nothing to overlap yet), the later ones show whether reading keeps up."""
    waits, compute = [], 0.0
    started = time.perf_counter()
    reader = TileReader(slide, tiles, tile_px, workers=workers)
    with closing(reader.batches(batch_size)) as batches:
        while True:
            t0 = time.perf_counter()
            try:
                _, pixels = next(batches)
            except StopIteration:
                break
            t1 = time.perf_counter()
            backbone.embed(model_batch(pixels, backbone.device))
            waits.append(t1 - t0)
            compute += time.perf_counter() - t1
    total = time.perf_counter() - started
    return {"batches": len(waits), "first_wait_s": round(waits[0], 3), "later_waits_s": round(sum(waits[1:]), 3),
            "model_s": round(compute, 2), "total_s": round(total, 2),
            "wait_fraction": round(sum(waits) / total, 3)}


def measure(width: int = 7168, height: int = 5376, tiles: int | None = None, repeats: int = 3,
            read_repeats: int = 5, threads: int = 2, model: str = "resnet50", batch_size: int = 32,
            workers: int | None = None) -> dict:
    """The figures of (a) and (b) on a `width` x `height` slide (default: 16 x 12 = 192 tiles).

    `tiles`: embed only the first so many (all by default); `workers`: reader processes for the pipeline
    instead of extraction's own choice (`extract.reader_workers`), to compare choices."""
    spec = {"model": model, "weights": "none", "layers": ["final"], "pool": "avg", "batch_size": batch_size,
            "dtype": "float32"}
    load_before = os.getloadavg()
    started = time.perf_counter()
    chosen = extract.reader_workers
    if workers is not None:
        extract.reader_workers = lambda threads, device: workers
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            slide = workdir / "wsi.svs"
            make_slide(slide, width, height)
            with open_slide(slide) as s:
                table_df = tile_slide(s, TILING).tiles
            if tiles is not None:
                table_df = table_df.iloc[:tiles].reset_index(drop=True)
            table = workdir / "tiles.parquet"
            write_tiles(table_df, table, {})
            tile_px, n = TILING["tile_px"], len(table_df)

            # (b) reading alone, one process
            per_tile, block = [], []
            for _ in range(read_repeats):
                per_tile.append(plain_loop(slide, table_df, tile_px))
                block.append(block_reader(slide, table_df, tile_px, 0, batch_size))
            read_ratios = [b / p for b, p in zip(block, per_tile)]

            # (a) extraction against model-only, same backbone and batches
            pixels = np.concatenate([p for _, p in TileReader(slide, table_df, tile_px).batches(batch_size)])
            batches = [torch.from_numpy(pixels[i : i + batch_size]) for i in range(0, n, batch_size)]
            backbone = load_backbone(spec, tile_px)
            model_tps, pipe_tps = [], []
            with limited_threads(threads):
                backbone.embed(batches[0])  # warm-up: allocator, kernels
                reader_processes = extract.reader_workers(threads, backbone.device)
                for rep in range(repeats):
                    # Alternate which goes first, so a drift in machine load does not favour one side.
                    for what in (("model", "pipeline") if rep % 2 == 0 else ("pipeline", "model")):
                        if what == "model":
                            model_tps.append(model_only(backbone, batches))
                        else:
                            out = workdir / f"run{rep}.zarr"
                            pipe_tps.append(pipeline(backbone, spec, slide, table, tile_px, threads, out, n))
                    print(f"repeat {rep}: model-only {model_tps[-1]:.2f} tiles/s, pipeline {pipe_tps[-1]:.2f} "
                          f"tiles/s, ratio {pipe_tps[-1] / model_tps[-1]:.3f}", file=sys.stderr, flush=True)
                overlap = overlap_check(backbone, slide, table_df, tile_px, reader_processes, batch_size)
            ratios = [p / m for p, m in zip(pipe_tps, model_tps)]
    finally:
        extract.reader_workers = chosen
    return {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "load_average_1_5_15_before": [round(v, 2) for v in load_before],
                    "load_average_1_5_15_after": [round(v, 2) for v in os.getloadavg()]},
        "slide": f"{width} x {height} px Aperio-style JPEG pyramid (256-px tiles, q90), 0.25 um/px, levels 1/4/16",
        "tiling": f"{tile_px} px at {TILING['mpp']} um/px (448-px level-0 squares resized), {n} tiles",
        "extraction": {
            "model": model, "batch_size": batch_size, "dtype": "float32", "threads": threads,
            "reader_processes": reader_processes, "device": str(backbone.device), "repeats": repeats,
            "model_only_tiles_per_s": [round(v, 2) for v in model_tps],
            "pipeline_tiles_per_s": [round(v, 2) for v in pipe_tps],
            "ratios": [round(v, 3) for v in ratios],
            "median_ratio": round(statistics.median(ratios), 3),
            "target": 0.9,
            "overlap_check": overlap,
        },
        "reading": {
            "repeats": read_repeats,
            "per_tile_read_tile_tiles_per_s": [round(v, 1) for v in per_tile],
            "block_reader_1_process_tiles_per_s": [round(v, 1) for v in block],
            "ratios": [round(v, 2) for v in read_ratios],
            "median_ratio": round(statistics.median(read_ratios), 2),
            "target": 3.0,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=7168, help="slide width in level-0 px")
    parser.add_argument("--height", type=int, default=5376, help="slide height in level-0 px")
    parser.add_argument("--tiles", type=int, help="embed only the first so many tiles")
    parser.add_argument("--repeats", type=int, default=3, help="extraction repeats")
    parser.add_argument("--read-repeats", type=int, default=5, help="reading repeats")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, help="reader processes (default: extraction's own choice)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    result = measure(args.width, args.height, args.tiles, args.repeats, args.read_repeats, args.threads, args.model,
                     args.batch_size, args.workers)
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
