"""Store provenance against a large weights file: a job's check with a cold checksum cache (the first job of a run
hashes the checkpoint) against one with a warm cache (every later job, in a fresh process).

    .venv/bin/python benchmarks/provenance.py                  # 1024 MB checkpoint, 200 stores
    .venv/bin/python benchmarks/provenance.py --mb 256 --stores 50

Each measurement is a fresh Python process running `tileprobe.embed.provenance.check_stores`, the call every
store-reading rule makes, over real Zarr stores written with EmbeddingWriter, so imports and store opening count
as they do in a job. The checkpoint is random bytes: the check hashes it, it never loads it.
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

CHECK = """
import json, sys
from tileprobe.embed.provenance import check_stores
made_by = json.loads(sys.argv[1])
check_stores({"r18": json.loads(sys.argv[2])}, made_by)
"""


def _stores(folder: Path, n: int, spec: dict, sha256: str) -> list[str]:
    from tileprobe.embed.store import EmbeddingWriter

    paths = []
    for i in range(n):
        path = folder / f"slide{i}.zarr"
        attrs = {"spec": spec, "tiling": {"mode": "whole"}, "weights": spec["weights"], "weights_sha256": sha256}
        with EmbeddingWriter(path, 1, {"final": 8}, coords={"x": np.zeros(1, int), "y": np.zeros(1, int)},
                             attrs=attrs) as writer:
            writer.write(0, 0, {"final": np.ones((1, 8), np.float32)})
        paths.append(str(path))
    return paths


def _timed_check(made_by: dict, stores: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHECK, json.dumps(made_by), json.dumps(stores)], check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="checkpoint size in MB")
    parser.add_argument("--stores", type=int, default=200, help="stores one job checks")
    args = parser.parse_args()
    from tileprobe.embed.checksum import sha256_file

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / "checkpoint.pth"
        with open(weights, "wb") as fh:
            for _ in range(args.mb):
                fh.write(os.urandom(1 << 20))
        spec = {"model": "resnet18", "weights": str(weights), "layers": ["final"], "pool": "avg", "dtype": "float32"}
        stores = _stores(tmp / "stores", args.stores, spec, sha256_file(weights))
        made_by = {"tiling": "whole", "tiling_spec": {"mode": "whole"}, "backbones": {"r18": spec}}
        env = dict(os.environ, TILEPROBE_CACHE=str(tmp / "cache"))
        cold = _timed_check(made_by, stores, env)
        warm = min(_timed_check(made_by, stores, env) for _ in range(3))
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| checkpoint | stores per job | first job (hashes) | later job (cached) | first / later |")
    print("|---|---|---|---|---|")
    print(f"| {args.mb} MB | {args.stores} | {cold:.2f} s | {warm:.2f} s | {cold / warm:.1f}x |")


if __name__ == "__main__":
    main()
