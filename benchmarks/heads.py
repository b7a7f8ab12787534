"""Heads on frozen embeddings against real fine-tuning runs, on the same task, data and folds (CPU or GPU).

    make demo                                   # once: the demo's slides, tiles and resnet18 embeddings
    .venv/bin/python benchmarks/heads.py        # the demo's `tissue` task, 300 tiles, every head and variant
    .venv/bin/python benchmarks/heads.py --tiles 2000 --variants partial --max-epochs 20 --json out.json

What runs is what the workflow runs: `jobs.task_data` builds the task's rows from the demo's stores (a random,
class-balanced sample of `--tiles` of them, whole patients kept), `tileprobe.finetune.pixels` reads their tiles
from the slides, and `learn.train.run_task` cross-validates each head and each fine-tuning variant on the same
patient-grouped folds and refits it, as rules head and finetune do. Reported per method: the out-of-fold
balanced accuracy with its 95% bootstrap interval, training seconds per fold (`train_seconds`), the ratio of a
variant's time to each head's, and the score difference. The one-off embedding of the tiles is timed too
(heads need it once; fine-tuning does not).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

HEADS = ["logreg", "knn", "mlp"]
VARIANTS = ["partial", "full", "scratch"]


def demo_task(results: Path, tiles: int, seed: int = 0):
    """The demo's tissue task rows (resnet18, final layer), sampled to about `tiles` rows, with their pixels."""
    import yaml

    from tileprobe.finetune.pixels import task_pixels
    from tileprobe.learn.data import subset
    from tileprobe.tiling.table import read_tiles
    from tileprobe.workflow import jobs

    config = yaml.safe_load(Path("config/config.yaml").read_text())
    task = {**config["tasks"]["tissue"], "name": "tissue"}
    manifest = pd.read_parquet(results / "manifest.parquet")
    slides = manifest[manifest["annotations"].notna()]
    tile_paths = {s: str(results / f"tiles/wsi/{s}.parquet") for s in slides["slide"]}
    stores = {s: str(results / f"embeddings/wsi/resnet18/{s}.zarr") for s in slides["slide"]}
    samples = slides[["slide", "patient", "annotations", "group", "path", "mpp"]].to_dict("records")
    data = jobs.task_data("tissue", task, samples, tile_paths, stores, "final", {"folds": 3})
    rng = np.random.default_rng(seed)
    per_class = max(1, tiles // len(data.classes))
    rows = np.sort(np.concatenate([rng.choice(np.flatnonzero(data.y == c), min(per_class, int((data.y == c).sum())),
                                              replace=False) for c in data.classes]))
    data = subset(data, rows)
    tables = {s: read_tiles(p)[0] for s, p in tile_paths.items()}
    data.pixels = task_pixels(data, "tile", slides[["slide", "path", "mpp"]], tables,
                              config["tilings"]["wsi"]["tile_px"])
    return data, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="a finished `make demo` results directory")
    parser.add_argument("--tiles", type=int, default=300)
    parser.add_argument("--heads", nargs="+", default=HEADS)
    parser.add_argument("--variants", nargs="+", default=VARIANTS)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import tempfile

    import torch

    from tileprobe.embed.load import load_backbone
    from tileprobe.learn.train import run_task
    from tileprobe.threads import limited_threads

    load_before = os.getloadavg()
    data, config = demo_task(Path(args.results), args.tiles)
    spec = config["backbones"]["resnet18"]
    evaluation = {**config["evaluation"], "bootstrap": 200}
    settings = {"max_epochs": args.max_epochs, "batch_size": args.batch_size}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = {}
    with limited_threads(args.threads), tempfile.TemporaryDirectory() as out:
        backbone = load_backbone(spec, config["tilings"]["wsi"]["tile_px"], device)
        start = time.perf_counter()
        for i in range(0, len(data), 64):
            backbone.embed(data.pixels[i:i + 64])
        embed_seconds = time.perf_counter() - start
        runs = [(h, None) for h in args.heads] + [(f"finetune_{v}", {"backbone": spec, "settings": settings,
                                                                    "input_px": config["tilings"]["wsi"]["tile_px"]})
                                                 for v in args.variants]
        for name, options in runs:
            record = run_task(data, name, evaluation, Path(out) / name, {"head": name}, options=options)
            rows[name] = {"balanced_accuracy": record["overall"]["balanced_accuracy"],
                          "ci": record["ci"]["balanced_accuracy"], "train_seconds": record["train_seconds"],
                          "epochs": [f.get("training", {}).get("epochs_run") for f in record["folds"]]}
            print(f"{name}: {rows[name]}", flush=True)
    load_after = os.getloadavg()

    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, {device}; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; demo `tissue` task, {len(data)} tiles of "
          f"{len(set(data.groups))} patients, {evaluation['folds']}-fold CV; embedding them once: "
          f"{embed_seconds:.1f} s\n")
    heads = [n for n in rows if not n.startswith("finetune_")]
    print("| method | balanced accuracy [95% CI] | training s / fold | " + " | ".join(
        f"time / {h}" for h in heads) + " | vs best head |")
    print("|---|---:|---:|" + "---:|" * len(heads) + "---:|")
    best = max(rows[h]["balanced_accuracy"] for h in heads) if heads else float("nan")
    for name, r in rows.items():
        ratios = " | ".join(f"{r['train_seconds'] / rows[h]['train_seconds']:,.0f}x" for h in heads)
        print(f"| {name} | {r['balanced_accuracy']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | "
              f"{r['train_seconds']:.2f} | {ratios} | {r['balanced_accuracy'] - best:+.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tiles": len(data), "threads": args.threads, "device": device, "embed_seconds": embed_seconds,
                       "load": [load_before, load_after], "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
