"""Per-tile augmentation with Dask: throughput with 1 and 2 workers, and peak memory against store size.

    .venv/bin/python benchmarks/augment.py                 # default sizes; prints a Markdown table
    .venv/bin/python benchmarks/augment.py --mb 32 128     # total store sizes (float32 embeddings, MB)

Synthetic stores written with EmbeddingWriter (3 views, 384 dims, 2 slides; stored chunks of 2048 tiles),
augmented with `views` (2 copies: every tile's views are read). Throughput is MB of embeddings read per second,
through a real LocalCluster of 1 and then 2 worker processes, in one run so the ratio shares the machine's load.
Peak memory is the high-water RSS of a fresh process (threaded scheduler, 1 worker) above its RSS after imports,
once per store size: it should stay flat as the store grows, because work goes chunk by chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SLIDES, VIEWS, DIM = 2, 3, 384
SPEC = {"kind": "views", "copies": 2, "seed": 0}


def write_stores(root: Path, total_mb: float) -> dict[str, Path]:
    from tileprobe.embed.store import EmbeddingWriter

    tiles = int(total_mb * 2**20 / (SLIDES * VIEWS * DIM * 4))
    rng = np.random.default_rng(0)
    paths = {}
    for i in range(SLIDES):
        paths[f"s{i}"] = root / f"s{i}.zarr"
        with EmbeddingWriter(paths[f"s{i}"], tiles, {"final": DIM}, n_views=VIEWS, attrs={"model": "bench"}) as out:
            for view in range(VIEWS):
                for start in range(0, tiles, 4096):
                    rows = rng.normal(size=(min(4096, tiles - start), DIM)).astype("float32")
                    out.write(view, start, {"final": rows})
    return paths


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(root: str, out: str) -> None:
    """One augmentation on the threaded scheduler; prints peak RSS above the post-import baseline (MB)."""
    import dask

    from tileprobe.augment.per_tile import augment_stores  # imported before the baseline, like everything it uses

    stores = {p.stem: p for p in sorted(Path(root).glob("s*.zarr"))}
    base = rss_mb("VmRSS")
    with dask.config.set(scheduler="threads", num_workers=1):
        augment_stores(stores, out, "views", SPEC)
    print(json.dumps({"peak_mb": rss_mb("VmHWM") - base}))


def throughput(stores: dict, mb: float, workers: int, out: Path) -> float:
    from tileprobe.augment.cluster import dask_cluster
    from tileprobe.augment.per_tile import augment_stores

    with dask_cluster({"cluster": "local", "workers": workers}):
        start = time.perf_counter()
        augment_stores(stores, out, "views", SPEC)
        seconds = time.perf_counter() - start
    return mb / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, nargs="+", default=[32, 128], help="total store sizes to try (MB)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tileprobe-bench-") as tmp:
        for mb in args.mb:
            root = Path(tmp) / f"{mb:g}"
            stores = write_stores(root, mb)
            rates = {w: throughput(stores, mb, w, root / f"out{w}.zarr") for w in (1, 2)}
            peak = json.loads(subprocess.run(
                [sys.executable, __file__, "--child", str(root), str(root / "peak.zarr")],
                check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])["peak_mb"]
            rows.append({"store_mb": mb, "mb_s_1": rates[1], "mb_s_2": rates[2], "peak_mb": peak})
    load_after = os.getloadavg()

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}")
    print(f"load average (1/5/15 min) before {fmt(load_before)}, after {fmt(load_after)}")
    print()
    print("| store (MB) | 1 worker (MB/s) | 2 workers (MB/s) | 2 / 1 | peak RSS (MB) | peak / store |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['store_mb']:g} | {r['mb_s_1']:.1f} | {r['mb_s_2']:.1f} | {r['mb_s_2'] / r['mb_s_1']:.2f} "
              f"| {r['peak_mb']:.0f} | {r['peak_mb'] / r['store_mb']:.2f} |")
    if len(rows) > 1:
        print(f"\npeak RSS, largest / smallest store: {rows[-1]['peak_mb'] / rows[0]['peak_mb']:.2f} "
              f"for a {rows[-1]['store_mb'] / rows[0]['store_mb']:.0f}x larger store")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fmt(load) -> str:
    return "/".join(f"{x:.1f}" for x in load)


if __name__ == "__main__":
    main()
