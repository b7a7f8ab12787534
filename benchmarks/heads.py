"""Training time of every head on N x D frozen embeddings, against fine-tuning a small backbone end to end for
one epoch on the same number of tiles (CPU), as ratios measured in one run on one machine.

    .venv/bin/python benchmarks/heads.py                          # 100,000 x 1,024, every head; Markdown table
    .venv/bin/python benchmarks/heads.py --rows 20000 --heads logreg mlp

Embeddings are synthetic Gaussian classes (3 classes, 500 patients). A head's time is one `fit` as the refit
on all data runs it: with its own tuning (inner folds for logreg C and knn k, early stopping for the torch
heads). Bag heads (abmil, meanpool) get the same rows as 500 bags of N/500 tiles. Fine-tuning is timm's
resnet18 (random weights, 3 outputs) with AdamW, forward + backward on `--finetune-tiles` random tiles of
`--tile-px` px; one epoch over N tiles is that time scaled to N (a full epoch on CPU takes hours). Both sides
use the same thread count. The ratio is fine-tune epoch time / head time: how many heads fit in one epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

ALL_HEADS = ["logreg", "knn", "mlp", "mlp2", "meanpool", "abmil"]
N_CLASSES, N_PATIENTS = 3, 500


def embeddings(rows: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    patient = np.arange(rows) % N_PATIENTS
    cls = patient % N_CLASSES
    X = (rng.normal(size=(N_CLASSES, dim)) * 0.3)[cls] + rng.normal(size=(rows, dim))
    y = np.array([f"c{i}" for i in range(N_CLASSES)], dtype=object)[cls]
    return X.astype(np.float32), y, np.array([f"p{p}" for p in patient], dtype=object)


def time_head(name: str, X, y, groups) -> float:
    from tileprobe.learn.heads.registry import head_class, make_head

    head = make_head(name, seed=0, kind="multiclass")
    if head_class(name).input == "bags":
        order = np.argsort(groups, kind="stable")
        split = np.cumsum(np.unique(groups, return_counts=True)[1])[:-1]
        bags = np.split(X[order], split)
        first = order[np.r_[0, split]]
        inputs, y, groups = bags, y[first], groups[first]
    else:
        inputs = X
    start = time.perf_counter()
    head.fit(inputs, y, groups)
    return time.perf_counter() - start


def time_finetune(tiles: int, tile_px: int, batch: int) -> float:
    """Seconds per tile of one training step of resnet18 (forward + backward + AdamW update)."""
    import timm
    import torch

    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=N_CLASSES)
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-4)
    loss = torch.nn.CrossEntropyLoss()
    images = torch.rand(batch, 3, tile_px, tile_px)
    labels = torch.randint(0, N_CLASSES, (batch,))
    net.train()

    def step():
        optimiser.zero_grad()
        loss(net(images), labels).backward()
        optimiser.step()

    step()  # warm-up: first-call allocations are not part of an epoch's steady state
    steps = max(1, tiles // batch)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / (steps * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--heads", nargs="+", default=ALL_HEADS)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--tile-px", type=int, default=224)
    parser.add_argument("--finetune-tiles", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from tileprobe.threads import limited_threads

    load_before = os.getloadavg()
    X, y, groups = embeddings(args.rows, args.dim)
    with limited_threads(args.threads):
        per_tile = time_finetune(args.finetune_tiles, args.tile_px, args.batch)
        epoch = per_tile * args.rows
        print(f"fine-tune: {per_tile * 1000:.0f} ms per tile", flush=True)
        heads = {}
        for name in args.heads:
            heads[name] = time_head(name, X, y, groups)
            print(f"{name}: {heads[name]:.1f} s", flush=True)
    load_after = os.getloadavg()

    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; {args.rows:,} x {args.dim:,} embeddings\n")
    print(f"Fine-tuning resnet18, {args.tile_px} px: {per_tile * 1000:.0f} ms per tile "
          f"(measured on {args.finetune_tiles} tiles) -> one epoch over {args.rows:,} tiles ~ {epoch / 3600:.1f} h\n")
    print("| head | training time (s) | fine-tune epoch / head |")
    print("|---|---:|---:|")
    for name, seconds in heads.items():
        print(f"| {name} | {seconds:.1f} | {epoch / seconds:,.0f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": args.rows, "dim": args.dim, "threads": args.threads, "load": [load_before, load_after],
                       "finetune_seconds_per_tile": per_tile, "finetune_epoch_seconds": epoch,
                       "heads_seconds": heads}, f, indent=1)


if __name__ == "__main__":
    main()
