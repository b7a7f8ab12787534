"""Tissue detection plus tile coordinates of a 100,000 x 80,000 px slide: open, thumbnail, mask, grid, table.

The slide is a real Aperio-style JPEG pyramid (downsamples 1, 4, 16, 64; 256-px tiles) written here with
pre-compressed tiles: every level-0 and level-1 tile is one of two JPEGs (glass or tissue) chosen by where it
lies, so writing takes seconds and the file is about 220 MB, deleted afterwards. Levels 2 and 3 are drawn in full.

    .venv/bin/python benchmarks/slide_tiling.py --repeats 5

Target (issue 3): at most 3 s for `tile_slide` with a thumbnail read from the coarsest level; also timed: the
default 2048-px thumbnail (read from the next finer level), with and without OpenSlide in the pixel path. Each
repeat also times a fixed numpy workload, so a slow figure can be told apart from a loaded machine.
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

import imagecodecs
import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tileprobe.slides.registry import open_slide  # noqa: E402
from tileprobe.tiling.grid import tile_slide  # noqa: E402

WIDTH, HEIGHT, TILE = 100_000, 80_000, 256
DOWNSAMPLES = (1, 4, 16, 64)
GLASS, TISSUE = (243, 243, 243), (200, 90, 160)
# tissue: ellipses (centre x, centre y, radius x, radius y) as fractions of the slide
BLOBS = [(0.3, 0.4, 0.18, 0.25), (0.65, 0.55, 0.2, 0.2), (0.85, 0.2, 0.06, 0.08)]


def in_tissue(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x, y as fractions of the slide."""
    inside = np.zeros(np.broadcast(x, y).shape, bool)
    for cx, cy, rx, ry in BLOBS:
        inside |= ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
    return inside


def level_tiles(w: int, h: int, drawn: bool, codes: dict[bool, bytes]):
    across, down = -(-w // TILE), -(-h // TILE)
    if not drawn:  # pick a pre-encoded tile by its centre
        for j in range(down):
            cy = (j * TILE + TILE / 2) / h
            row = in_tissue((np.arange(across) * TILE + TILE / 2) / w, cy)
            yield from (codes[bool(t)] for t in row)
        return
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.where(in_tissue((xx + 0.5) / w, (yy + 0.5) / h)[..., None], TISSUE, GLASS).astype(np.uint8)
    del yy, xx
    for j in range(down):
        for i in range(across):
            tile = np.full((TILE, TILE, 3), 255, np.uint8)
            part = image[j * TILE : (j + 1) * TILE, i * TILE : (i + 1) * TILE]
            tile[: part.shape[0], : part.shape[1]] = part
            yield imagecodecs.jpeg_encode(tile, level=90)


def write_slide(path: Path) -> None:
    codes = {t: imagecodecs.jpeg_encode(np.full((TILE, TILE, 3), TISSUE if t else GLASS, np.uint8), level=90)
             for t in (False, True)}
    description = (f"Aperio Image Library v10.0.0\n{WIDTH}x{HEIGHT} [0,0 {WIDTH}x{HEIGHT}] (256x256) JPEG/RGB "
                   "Q=90|AppMag = 40|MPP = 0.25")
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for i, d in enumerate(DOWNSAMPLES):
            w, h = WIDTH // d, HEIGHT // d
            tif.write(level_tiles(w, h, drawn=w * h <= 40_000_000, codes=codes), shape=(h, w, 3), dtype=np.uint8,
                      tile=(TILE, TILE), compression="jpeg", photometric="rgb", metadata=None,
                      description=description if i == 0 else f"Aperio level {i}")


def reference_work() -> float:
    """A fixed CPU workload (seconds): how loaded the machine is right now."""
    a = np.random.default_rng(0).random((1500, 1500))
    started = time.perf_counter()
    for _ in range(3):
        np.sort(a, axis=None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.svs"
        started = time.perf_counter()
        write_slide(path)
        write_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        # thumbnail_px 1536 fits the coarsest level (1562 px wide); 2048 (the default) needs the next one
        # the last case reads the thumbnail's level through OpenSlide's read_region instead of the TIFF pages
        cases = {"coarsest level (thumbnail_px 1536)": (1536, True), "default thumbnail_px 2048": (2048, True),
                 "default thumbnail_px 2048, through OpenSlide": (2048, False)}
        times = {name: [] for name in cases}
        reference, n_tiles, levels = [], {}, None
        for _ in range(args.repeats):
            reference.append(reference_work())
            for name, (thumb, direct) in cases.items():
                started = time.perf_counter()
                with open_slide(path) as slide:
                    if not direct:
                        slide._tiff_pages = False
                    tiling = tile_slide(slide, {"mpp": 0.5, "tile_px": 224, "thumbnail_px": thumb})
                    levels = slide.level_dimensions
                times[name].append(time.perf_counter() - started)
                n_tiles[name] = len(tiling.tiles)
    print(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_average_1_5_15": [round(v, 1) for v in os.getloadavg()],
        "slide": f"{WIDTH} x {HEIGHT} px, levels {levels}, {size_mb:.0f} MB, written in {write_s:.0f} s",
        "tiling": "mpp 0.5, tile_px 224 (448 level-0 px), min_tissue 0.5",
        "reference_workload_s_median": round(statistics.median(reference), 3),
        "results": {name: {"seconds_median": round(statistics.median(t), 2), "seconds_all": [round(v, 2) for v in t],
                           "tiles": n_tiles[name]} for name, t in times.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
