"""Extraction throughput: the whole pipeline (read tiles from the slide, model, Zarr) against the model alone.

Both run in one process on the same backbone object, interleaved and repeated, so that load from other users
of the machine hits both alike; the figure that matters is the median ratio pipeline / model-only.

    .venv/bin/python benchmarks/extract.py --model resnet50 --tile-px 224 --repeats 3
    .venv/bin/python benchmarks/extract.py --model vit_base_patch16_224 --dtype bfloat16   # on a GPU

The slide is a demo slide (a JPEG-compressed pyramidal TIFF read through OpenSlide), tiled at its own
resolution. Model-only = `Backbone.embed` (preprocessing + forward) on uint8 batches already in memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tileprobe.demo import synthetic as demo  # noqa: E402
from tileprobe.embed.extract import SlideJob, embed_slides  # noqa: E402
from tileprobe.embed.load import load_backbone  # noqa: E402
from tileprobe.slides.registry import open_slide  # noqa: E402
from tileprobe.threads import limited_threads  # noqa: E402
from tileprobe.tiling.grid import tile_slide
from tileprobe.tiling.read import read_tile  # noqa: E402
from tileprobe.tiling.table import write_tiles


def make_slide(workdir: Path, tile_px: int, n_tiles: int) -> tuple[Path, Path]:
    pixels, _ = demo._render_slide(0, 0, True)
    slide = workdir / "slide.svs"
    demo._write_slide(slide, pixels)
    with open_slide(slide) as s:
        tiles = tile_slide(s, {"mode": "grid", "mpp": s.mpp, "tile_px": tile_px, "min_tissue": 0.0}).tiles
    tiles = tiles.iloc[:n_tiles].reset_index(drop=True)
    table = workdir / "tiles.parquet"
    write_tiles(tiles, table, {})
    return slide, table


def model_only(backbone, batches) -> float:
    start = time.perf_counter()
    for batch in batches:
        backbone.embed(batch)
    if backbone.device.type == "cuda":
        torch.cuda.synchronize()
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def read_only(slide, rows, tile_px) -> float:
    """Tiles/s of reading alone (one process): how far reading is from being the bottleneck."""
    start = time.perf_counter()
    with open_slide(slide) as s:
        for row in rows:
            read_tile(s, row, tile_px)
    return len(rows) / (time.perf_counter() - start)


def pipeline(backbone, spec, slide, table, tile_px, threads, out: Path, n: int) -> float:
    start = time.perf_counter()
    embed_slides([SlideJob(slide, table, out)], tile_px, spec, threads=threads, backbone=backbone)
    if backbone.device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--tile-px", type=int, default=224)
    parser.add_argument("--tiles", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads; the pipeline reads with extract.reader_workers(threads) processes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    spec = {"model": args.model, "weights": "none", "batch_size": args.batch_size, "dtype": args.dtype}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        slide, table = make_slide(workdir, args.tile_px, args.tiles)
        with open_slide(slide) as s:
            import pandas as pd

            rows = list(pd.read_parquet(table).itertuples(index=False))
            pixels = np.stack([read_tile(s, r, args.tile_px) for r in rows])
        n = len(pixels)
        batches = [torch.from_numpy(pixels[i : i + args.batch_size]) for i in range(0, n, args.batch_size)]
        if torch.cuda.is_available():
            batches = [b.pin_memory() for b in batches]
        backbone = load_backbone(spec, args.tile_px)
        load_before = os.getloadavg()
        model_tps, pipe_tps = [], []
        with limited_threads(args.threads):
            backbone.embed(batches[0])  # warm-up: allocator, kernels
            for rep in range(args.repeats):
                # Alternate which goes first, so a drift in machine load does not favour one side.
                order = ("model", "pipeline") if rep % 2 == 0 else ("pipeline", "model")
                for what in order:
                    if what == "model":
                        model_tps.append(model_only(backbone, batches))
                    else:
                        out = workdir / f"run{rep}.zarr"
                        pipe_tps.append(pipeline(backbone, spec, slide, table, args.tile_px, args.threads, out, n))
                print(f"repeat {rep}: model-only {model_tps[-1]:.2f} tiles/s, pipeline {pipe_tps[-1]:.2f} tiles/s, "
                      f"ratio {pipe_tps[-1] / model_tps[-1]:.3f}", flush=True)
        read_tps = read_only(slide, rows, args.tile_px)
        load_after = os.getloadavg()
    ratios = [p / m for p, m in zip(pipe_tps, model_tps)]
    result = {
        "model": args.model, "tile_px": args.tile_px, "tiles": n, "batch_size": args.batch_size,
        "dtype": args.dtype, "threads": args.threads, "device": str(backbone.device),
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "repeats": args.repeats,
        "model_only_tiles_per_s": [round(v, 2) for v in model_tps],
        "pipeline_tiles_per_s": [round(v, 2) for v in pipe_tps],
        "ratios": [round(v, 3) for v in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        "read_only_tiles_per_s": round(read_tps, 1),
        "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
