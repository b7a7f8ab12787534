"""Per-tile augmentation (`views`, `dropout`), precomputed once with Dask over the embedding stores.

A copy is a function of one tile alone. Random numbers come from a counter-based hash of (seed, slide, copy,
tile, dimension), not from a generator walked chunk by chunk, so results are identical whatever the chunking
or number of workers. A head adds the copies of its *training* rows only (`in_fold.precomputed`).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

import tileprobe
from tileprobe.atomic import atomic_path
from tileprobe.augment.specs import AugmentError, is_per_tile, resolve

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

    from tileprobe.embed.store import IDENTITY_KEYS, complete_group, lazy_array
    from tileprobe.embed.store import layers as store_layers
    from tileprobe.jsonable import jsonable

    spec = resolve(name, spec)
    if not is_per_tile(spec):
        raise AugmentError(f"augmentation {name!r} ({spec['kind']}) runs inside each fold; nothing to precompute.")
    out = Path(out)
    identity = None
    with atomic_path(out) as tmp:
        root = zarr.open_group(tmp, mode="w", zarr_format=3)
        root.attrs.update(jsonable({"augmentation": name, "spec": spec, "complete": False,
                                    "tileprobe_version": tileprobe.__version__}))
        writes = []
        for slide, path in stores.items():
            group = complete_group(path)
            identity = identity or {k: group.attrs.get(k) for k in IDENTITY_KEYS}
            sub = root.create_group(slide, attributes={"source": str(path)})
            for layer in layers or store_layers(path):
                source = group[layer]
                if spec["kind"] == "views" and source.shape[0] < 2:
                    raise AugmentError(
                        f"{path}: layer {layer!r} has {source.shape[0]} view; `views` samples among image-space "
                        "views, so set `views:` above 1 in the config and re-embed, or use another augmentation."
                    )
                lazy = augment_array(lazy_array(source, path), spec, slide, chunk_tiles)  # damaged chunks named
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
        root.attrs.update(jsonable({"source": identity or {}, "complete": True}))
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
