"""Tile reading throughput: `tiling.blocks.TileReader` (block reads) against a plain per-tile loop, one slide.

The plain loop is what extraction did per tile: `tiling.read.read_tile` (one `read_region` through OpenSlide, then
resize). The block reader runs in this process (workers=0: the per-core figure) and with worker processes.
Measurements are interleaved and repeated, so load from other users hits all alike; the median ratio is the
figure that matters, and the load average is printed beside it.

    .venv/bin/python benchmarks/tile_read.py --repeats 5

The slide is a JPEG-tiled Aperio-style pyramid (256-px scanner tiles, quality 90) of smooth random texture
(JPEG's cost depends on content; white glass would flatter every reader), 0.25 µm/px, written here.
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
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.slide_factory import write_aperio  # noqa: E402
from tileprobe.slides.registry import open_slide  # noqa: E402
from tileprobe.tiling.blocks import TileReader  # noqa: E402
from tileprobe.tiling.grid import tile_slide
from tileprobe.tiling.read import read_tile  # noqa: E402


def make_slide(path: Path, side: int, height: int | None = None) -> None:
    rng = np.random.default_rng(0)
    width, height = side, height or side  # square unless a height is given
    coarse = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR))
    write_aperio(path, image, mpp=0.25, downsamples=(1, 4, 16), compression="jpeg")


def plain_loop(path: Path, tiles, tile_px: int) -> float:
    started = time.perf_counter()
    with open_slide(path) as slide:
        for row in tiles.itertuples():
            read_tile(slide, row, tile_px)
    return len(tiles) / (time.perf_counter() - started)


def block_reader(path: Path, tiles, tile_px: int, workers: int) -> float:
    started = time.perf_counter()
    for _ in TileReader(path, tiles, tile_px, workers=workers).batches(64):
        pass
    return len(tiles) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8192, help="slide side in level-0 px")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.svs"
        make_slide(path, args.side)
        # 224 px at 0.5 µm/px from a 0.25 µm/px scan: 448-px squares read at level 0 and halved (the common
        # case); and 256 px at the scan's own resolution (no resize: reading alone).
        cases = {"224px@0.5mpp": (0.5, 224), "256px@0.25mpp": (0.25, 256)}
        results = {}
        for name, (mpp, tile_px) in cases.items():
            with open_slide(path) as slide:
                tiles = tile_slide(slide, {"mpp": mpp, "tile_px": tile_px, "tissue": "none"}).tiles
            runs = {"plain": [], "block": [], f"block_{args.workers}w": []}
            for _ in range(args.repeats):  # interleaved
                runs["plain"].append(plain_loop(path, tiles, tile_px))
                runs["block"].append(block_reader(path, tiles, tile_px, 0))
                runs[f"block_{args.workers}w"].append(block_reader(path, tiles, tile_px, args.workers))
            ratios = [b / p for b, p in zip(runs["block"], runs["plain"])]
            results[name] = {
                "tiles": len(tiles),
                **{f"{k}_tiles_per_s_median": round(statistics.median(v), 1) for k, v in runs.items()},
                "ratio_block_vs_plain_per_core_median": round(statistics.median(ratios), 2),
                "ratio_block_vs_plain_per_core_all": [round(r, 2) for r in ratios],
            }
    print(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "load_average_1_5_15": [round(v, 1) for v in os.getloadavg()],
        "slide": f"{args.side} x {args.side} px JPEG Aperio-style, 256-px tiles",
        "repeats": args.repeats,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
