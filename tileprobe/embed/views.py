"""Image-space augmented views of a tile: flips, 90-degree rotations, colour and HED stain jitter.

View 0 is always the tile itself (heads train on it); views 1..K-1 are random augmentations whose parameters
come from a generator seeded by (seed, tile index, view), so a view does not depend on batching, worker
count or order: the same config gives the same pixels. Runs in the readers' worker processes, beside tile reading.
"""

from __future__ import annotations

import numpy as np
from skimage.color import hed2rgb, rgb2hed

# Jitter strengths: mild enough that a tile stays what it was (HED: Tellez et al. 2018, "light" setting).
BRIGHTNESS = 0.1  # multiplicative, 1 +- this
CONTRAST = 0.1
SATURATION = 0.1
HED_SCALE = 0.05  # per stain channel: h * U(1 +- s) + U(+- b)
HED_SHIFT = 0.01

AUGMENTATIONS = {
    "flip": "horizontal flip with p=0.5",
    "rot90": "rotation by k*90 degrees, k uniform in 0..3",
    "colour": f"brightness, contrast, saturation x U(1 +- {BRIGHTNESS}, {CONTRAST}, {SATURATION})",
    "hed": f"HED stain channels x U(1 +- {HED_SCALE}) + U(+- {HED_SHIFT})",
}


def view_rng(seed: int, tile: int, view: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(tile), int(view)])


def augment(tile: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view of a uint8 (H, W, 3) tile."""
    out = tile
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = np.rot90(out, k=int(rng.integers(4)))
    x = out.astype(np.float32) / 255.0
    x = _colour_jitter(x, rng)
    x = _hed_jitter(x, rng)
    return np.ascontiguousarray(np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8))


def _colour_jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    b, c, s = (rng.uniform(1 - v, 1 + v) for v in (BRIGHTNESS, CONTRAST, SATURATION))
    x = x * b
    x = (x - x.mean()) * c + x.mean()
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - grey[..., None]) * s + grey[..., None]
    return np.clip(x, 0.0, 1.0)


def _hed_jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scale = rng.uniform(1 - HED_SCALE, 1 + HED_SCALE, size=3)
    shift = rng.uniform(-HED_SHIFT, HED_SHIFT, size=3)
    hed = rgb2hed(x) * scale + shift
    return np.clip(hed2rgb(hed), 0.0, 1.0).astype(np.float32)


def make_views(tile: np.ndarray, n_views: int, seed: int, index: int) -> np.ndarray:
    """uint8 (n_views, H, W, 3): the tile itself, then n_views - 1 seeded augmentations of it."""
    if n_views < 1:
        raise ValueError(f"views must be at least 1, got {n_views}")
    out = np.empty((n_views, *tile.shape), dtype=np.uint8)
    out[0] = tile
    for view in range(1, n_views):
        out[view] = augment(tile, view_rng(seed, index, view))
    return out


def provenance(n_views: int, seed: int) -> dict:
    """What made the views, for the store's attrs."""
    return {"views": int(n_views), "view_seed": int(seed), "view_augmentations": AUGMENTATIONS if n_views > 1 else {}}
