"""A tiny real project for workflow tests that must run many times: a few plain images, one small backbone.

Each run takes seconds, not the demo's minutes, so reruns, shared results and faults can be tested for real.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

TASK = "colour"
BACKBONE = "r18"
HEAD_METRICS = f"heads/{TASK}/{BACKBONE}/final/none/logreg/metrics.json"


def write_images(folder: Path, n: int = 6, size: int = 48, big: dict[str, int] | None = None) -> list[dict]:
    """`n` images, half reddish and half bluish (the label), one patient each; `big` adds larger ones (id: px)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    sizes = {f"img{i}": size for i in range(n)} | (big or {})
    for i, (name, px) in enumerate(sizes.items()):
        colour = np.array([200, 60, 90]) if i % 2 else np.array([70, 80, 200])
        pixels = np.clip(colour + rng.normal(0, 25, (px, px, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
        rows.append({"slide": name, "path": f"images/{name}.png", "patient": f"p{i}", "mpp": 0.5,
                     TASK: "red" if i % 2 else "blue"})
    return rows


def write_sheet(folder: Path, rows: list[dict]) -> Path:
    columns = ["slide", "path", "patient", "mpp", TASK]
    lines = ["\t".join(columns)] + ["\t".join(str(row[c]) for c in columns) for row in rows]
    path = folder / "samples.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(path: Path, samples: Path, results: Path, tiling: str = "whole", **changes) -> Path:
    """A config with one tiling (`whole` 32-px images, or `grid` 32-px tiles at 0.5 µm/px), one backbone, one task."""
    tilings = {
        "whole": {"mode": "whole", "tile_px": 32, "tissue": "none"},
        "grid": {"mode": "grid", "mpp": 0.5, "tile_px": 32, "tissue": "none", "min_tissue": 0.0},
    }
    config = {
        "results": str(results),
        "samples": str(samples),
        "tilings": {tiling: tilings[tiling]},
        "backbones": {BACKBONE: {"model": "resnet18", "weights": "none", "batch_size": 16}},
        "tasks": {TASK: {"level": "image", "label": TASK, "kind": "binary", "tiling": tiling,
                         "backbones": [BACKBONE]}},
        "evaluation": {"folds": 2, "repeats": 1, "seed": 0},
    }
    for key, value in changes.items():
        config[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def make_project(root: Path, n: int = 6, big: dict[str, int] | None = None) -> Path:
    """Images and a sheet under `root`; returns the sheet."""
    return write_sheet(root, write_images(root / "images", n=n, big=big))
