"""Feature-space augmentation on frozen embeddings (after Nivaggioli et al., arXiv 2303.05180).

Two families, by what an augmented row may depend on:

- Per-tile (`views`, `dropout`): a copy is a function of one tile alone, so it is precomputed once with Dask,
  chunk by chunk over the embedding stores, into results/augmented/{tiling}/{backbone}/{augmentation}.zarr.
  A head adds the copies of its *training* rows only (see `precomputed`).
- In-fold (`gaussian_noise`, `mixup`, `interpolate`, `balance`): they use other rows (a spread, a partner, a
  neighbour, class counts), so they run on the training part of each cross-validation fold and never see the
  test part.

Every augmentation takes `copies` (synthetic rows per original row; `balance` makes as many as it needs) and
`seed`. Per-tile random numbers come from a counter-based hash of (seed, slide, copy, tile, dimension), not from
a generator walked chunk by chunk, so results are identical whatever the chunking or number of workers.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable

import numpy as np

import tileprobe
from tileprobe.atomic import atomic_path
from tileprobe.errors import TileprobeError

# kind -> its parameters and their defaults. Names a user types in `augmentations: {name: {kind: ..., ...}}`.
KINDS: dict[str, dict] = {
    "views": {"copies": 1, "seed": 0},
    "dropout": {"p": 0.1, "copies": 1, "seed": 0},
    "gaussian_noise": {"sigma": 0.1, "copies": 1, "seed": 0},
    "mixup": {"alpha": 0.4, "copies": 1, "seed": 0},
    "interpolate": {"k": 5, "copies": 1, "seed": 0},
    "balance": {"k": 5, "seed": 0},
}
PER_TILE = ("views", "dropout")
NONE = "none"

Augment = Callable[[np.ndarray, np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


class AugmentError(TileprobeError):
    """An augmentation is misconfigured or its store does not fit; the message names it and says the fix."""


# ----------------------------------------------------------------------------------------------- config


def resolve(name: str, spec: dict | None) -> dict:
    """The spec of augmentation `name` with `kind` (default: the name itself) and every default filled in."""
    spec = dict(spec or {})
    kind = spec.pop("kind", name)
    if kind not in KINDS:
        raise AugmentError(
            f"config: `augmentations.{name}` has kind {kind!r}; set `kind:` to one of {', '.join(KINDS)}."
        )
    unknown = sorted(set(spec) - set(KINDS[kind]))
    if unknown:
        raise AugmentError(
            f"config: `augmentations.{name}` ({kind}) has unknown parameter(s) {unknown}; "
            f"valid: {', '.join(KINDS[kind])}."
        )
    out = {"kind": kind, **KINDS[kind], **spec}
    checks = {
        "copies": out.get("copies", 1) >= 1,
        "p": 0 <= out.get("p", 0) < 1,
        "sigma": out.get("sigma", 0) >= 0,
        "alpha": out.get("alpha", 1) > 0,
        "k": out.get("k", 1) >= 1,
    }
    bad = [key for key, ok in checks.items() if key in out and not ok]
    if bad:
        raise AugmentError(
            f"config: `augmentations.{name}.{bad[0]}` = {out[bad[0]]!r} is out of range "
            "(copies >= 1, 0 <= p < 1, sigma >= 0, alpha > 0, k >= 1)."
        )
    return out


def check_augmentations(augmentations: dict | None) -> dict[str, dict]:
    """All configured augmentations, resolved; `none` is the un-augmented row every table has already."""
    if NONE in (augmentations or {}):
        raise AugmentError("config: `augmentations.none` is reserved for the un-augmented heads; rename it.")
    return {name: resolve(name, spec) for name, spec in (augmentations or {}).items()}


def is_per_tile(spec: dict) -> bool:
    return spec["kind"] in PER_TILE


# ------------------------------------------------------------------------------- counter-based randoms

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform(key: int, *index: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers, one per broadcast element of `index`, fixed by (key, index) alone."""
    with np.errstate(over="ignore"):
        h = _mix64(np.full((), key & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64) + _GOLDEN)
        for idx in index:
            h = _mix64(h ^ (np.asarray(idx, dtype=np.uint64) + _GOLDEN))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def stream_key(seed: int, slide: str, copy: int) -> int:
    """One random stream per (seed, slide, copy): two slides never share their masks or view draws."""
    with np.errstate(over="ignore"):
        h = uniform(int(seed), np.uint64(zlib.crc32(slide.encode())), np.uint64(copy))
    return int(h * (1 << 53))


# --------------------------------------------------------------------------------- per-tile, with Dask


def _views_block(x: np.ndarray, key: int, block_info=None) -> np.ndarray:
    """x: (views, tiles, dim) of one chunk -> (tiles, dim), each tile from one of its own views."""
    start = block_info[None]["array-location"][0][0]
    tiles = np.arange(start, start + x.shape[1], dtype=np.uint64)
    view = np.minimum((uniform(key, tiles) * x.shape[0]).astype(np.int64), x.shape[0] - 1)
    return x[view, np.arange(x.shape[1])]


def _dropout_block(x: np.ndarray, key: int, p: float, block_info=None) -> np.ndarray:
    """x: (tiles, dim) -> the same with each value zeroed with probability p, the rest scaled by 1/(1-p)."""
    start = block_info[None]["array-location"][0][0]
    tiles = np.arange(start, start + x.shape[0], dtype=np.uint64)[:, None]
    dims = np.arange(x.shape[1], dtype=np.uint64)[None, :]
    keep = uniform(key, tiles, dims) >= p
    return np.where(keep, x / (1.0 - p), 0.0).astype(x.dtype)


def augment_array(source, spec: dict, slide: str, chunk_tiles: int | None = None):
    """Lazy (copies, tiles, dim) dask array of per-tile copies of one layer (views, tiles, dim) of one slide."""
    import dask.array as da

    arr = source if isinstance(source, da.Array) else da.from_zarr(source)
    if chunk_tiles:
        arr = arr.rechunk({1: int(chunk_tiles)})
    copies = []
    for copy in range(spec["copies"]):
        key = stream_key(spec["seed"], slide, copy)
        if spec["kind"] == "views":
            # All views of a chunk of tiles in one block: memory is views x chunk, never the store.
            src = arr.rechunk({0: -1, 2: -1})
            out = da.map_blocks(_views_block, src, key=key, drop_axis=0, chunks=src.chunks[1:], dtype=arr.dtype,
                                meta=np.empty((0, 0), arr.dtype))
        else:
            out = da.map_blocks(_dropout_block, arr[0], key=key, p=float(spec["p"]), dtype=arr.dtype,
                                meta=np.empty((0, 0), arr.dtype))
        copies.append(out)
    return da.stack(copies)


def augment_stores(stores: dict[str, str | Path], out: str | Path, name: str, spec: dict,
                   layers: list[str] | None = None, chunk_tiles: int | None = None) -> Path:
    """Precompute per-tile copies of every slide's layers into one Zarr group `out`: {slide}/{layer}.

    Runs on whatever Dask scheduler is current (threads, or a distributed Client from tileprobe.cluster).
    Written under a temporary name with `complete: true` set last, then renamed.
    """
    import dask
    import dask.array as da
    import zarr
    from zarr.codecs import ZstdCodec

    from tileprobe.store import IDENTITY_KEYS, _complete_group, layers as store_layers, to_json

    spec = resolve(name, spec)
    if not is_per_tile(spec):
        raise AugmentError(f"augmentation {name!r} ({spec['kind']}) runs inside each fold; nothing to precompute.")
    out = Path(out)
    identity = None
    with atomic_path(out) as tmp:
        root = zarr.open_group(tmp, mode="w", zarr_format=3)
        root.attrs.update(to_json({"augmentation": name, "spec": spec, "complete": False,
                                   "tileprobe_version": tileprobe.__version__}))
        writes = []
        for slide, path in stores.items():
            group = _complete_group(path)
            identity = identity or {k: group.attrs.get(k) for k in IDENTITY_KEYS}
            sub = root.create_group(slide, attributes={"source": str(path)})
            for layer in layers or store_layers(path):
                source = group[layer]
                if spec["kind"] == "views" and source.shape[0] < 2:
                    raise AugmentError(
                        f"{path}: layer {layer!r} has {source.shape[0]} view; `views` samples among image-space "
                        "views, so set `views:` above 1 in the config and re-embed, or use another augmentation."
                    )
                lazy = augment_array(source, spec, slide, chunk_tiles)
                target = sub.create_array(
                    layer, shape=lazy.shape, chunks=(1, max(lazy.chunks[1][0], 1), lazy.shape[2]),
                    dtype=lazy.dtype, fill_value=np.nan, compressors=ZstdCodec(level=3),
                    dimension_names=("copy", "tile", f"{layer}_dim"),
                )
                if lazy.shape[1]:
                    # to_zarr regroups blocks up to `array.chunk-size`; one stored chunk keeps memory per task
                    # at chunk size, whatever the store size.
                    with dask.config.set({"array.chunk-size": int(np.prod(target.chunks)) * lazy.dtype.itemsize}):
                        writes.append(da.to_zarr(lazy, target, compute=False))
        dask.compute(*writes)  # one graph over every slide, so the scheduler keeps all workers busy
        root.attrs.update(to_json({"source": identity or {}, "complete": True}))
    return out


def load_copies(path: str | Path, slide: str, layer: str) -> np.ndarray:
    """Precomputed copies (copies, tiles, dim) of one slide's layer."""
    import zarr

    try:
        root = zarr.open_group(Path(path), mode="r", zarr_format=3)
    except Exception as exc:
        raise AugmentError(f"{path}: not an augmented store ({exc}); re-run the augment rule for it") from exc
    if root.attrs.get("complete") is not True:
        raise AugmentError(f"{path}: augmented store is incomplete; delete it and re-run the augment rule")
    if slide not in root or layer not in root[slide]:
        raise AugmentError(f"{path}: no copies of slide {slide!r} layer {layer!r}; delete it and re-run the "
                           "augment rule (the task's slides or the backbone's layers changed)")
    return root[slide][layer][...]


# ----------------------------------------------------------------------------------- inside each fold


def _append(X, y, groups, new_X, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Originals first, then synthetic rows labelled (and grouped) like the original row they came from."""
    rows = np.asarray(rows, dtype=np.int64)
    return (np.concatenate([X, np.asarray(new_X, dtype=X.dtype).reshape(-1, X.shape[1])]),
            np.concatenate([y, y[rows]]), np.concatenate([groups, groups[rows]]))


def gaussian_noise(X, y, groups, rng, sigma, copies):
    spread = X.std(axis=0)  # of the training part only: the test part must not shape the noise
    rows = np.tile(np.arange(len(X)), copies)
    return _append(X, y, groups, X[rows] + sigma * spread * rng.standard_normal((len(rows), X.shape[1])), rows)


def mixup(X, y, groups, rng, alpha, copies):
    """Each row mixed with a random row of its own class: label-preserving, so no soft labels are needed."""
    rows = np.tile(np.arange(len(X)), copies)
    partners = np.empty_like(rows)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        mask = y[rows] == label
        partners[mask] = members[rng.integers(len(members), size=int(mask.sum()))]
    lam = rng.beta(alpha, alpha, size=(len(rows), 1))
    return _append(X, y, groups, lam * X[rows] + (1 - lam) * X[partners], rows)


def _same_class_neighbours(X, y, k) -> list[np.ndarray]:
    """For each row, indices of its (up to) k nearest other rows of the same class; itself when it is alone."""
    from sklearn.neighbors import NearestNeighbors

    out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(X)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) == 1:
            out[members[0]] = members
            continue
        n = min(k, len(members) - 1) + 1
        _, idx = NearestNeighbors(n_neighbors=n).fit(X[members]).kneighbors(X[members])
        for row, near in zip(members, idx):
            near = members[near]
            out[row] = near[near != row][: n - 1] if (near != row).any() else near[:1]
    return out


def _smote(X, rows, neighbours, rng) -> np.ndarray:
    """A random point on the segment from each row to one of its same-class nearest neighbours."""
    partners = np.array([neighbours[r][rng.integers(len(neighbours[r]))] for r in rows], dtype=np.int64)
    lam = rng.random((len(rows), 1))
    return X[rows] + lam * (X[partners] - X[rows])


def interpolate(X, y, groups, rng, k, copies):
    rows = np.tile(np.arange(len(X)), copies)
    return _append(X, y, groups, _smote(X, rows, _same_class_neighbours(X, y, k), rng), rows)


def balance(X, y, groups, rng, k):
    """Oversample every class up to the largest one with SMOTE-like rows; the largest class is left alone."""
    labels, counts = np.unique(y, return_counts=True)
    rows = np.concatenate([rng.choice(np.flatnonzero(y == label), size=counts.max() - n)
                           for label, n in zip(labels, counts)]).astype(np.int64)
    return _append(X, y, groups, _smote(X, rows, _same_class_neighbours(X, y, k), rng), rows)


IN_FOLD = {"gaussian_noise": gaussian_noise, "mixup": mixup, "interpolate": interpolate, "balance": balance}


def in_fold(spec: dict) -> Augment:
    """augment(X, y, groups, seed) for the training part of a fold; `seed` is the fold's, mixed with spec's."""
    fn = IN_FOLD[spec["kind"]]
    params = {k: v for k, v in spec.items() if k not in ("kind", "seed")}

    def augment(X, y, groups, seed):
        rng = np.random.default_rng([int(spec["seed"]), int(seed)])
        return fn(np.asarray(X), np.asarray(y, dtype=object), np.asarray(groups, dtype=object), rng, **params)

    return augment


def precomputed(X: np.ndarray, copies: np.ndarray) -> Augment:
    """augment(...) that appends the precomputed copies (copies, n, dim) of exactly the rows it is given.

    The hook receives training rows, not their indices, so rows are found by their bytes; a test row is never
    given, so its copies never reach training.
    """
    X = np.ascontiguousarray(X)
    index: dict[bytes, int] = {}
    for i, row in enumerate(X):
        index.setdefault(row.tobytes(), i)
    if copies.shape[1:] != X.shape:
        raise AugmentError(f"precomputed copies have shape {copies.shape}, rows {X.shape}: re-run the augment rule")

    def augment(X_train, y, groups, seed):
        X_train = np.ascontiguousarray(X_train, dtype=X.dtype)
        try:
            idx = np.array([index[row.tobytes()] for row in X_train], dtype=np.int64)
        except KeyError:
            raise AugmentError("a training row is not among the task's rows; precomputed copies do not apply") from None
        rows = np.tile(np.arange(len(X_train)), copies.shape[0])
        return _append(X_train, np.asarray(y, dtype=object), np.asarray(groups, dtype=object),
                       copies[:, idx].reshape(-1, X.shape[1]), rows)

    return augment
