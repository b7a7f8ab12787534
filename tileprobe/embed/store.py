"""Embedding stores: one Zarr v3 group per slide, one array per layer shaped (views, tiles, dim); or, for an
image collection (`mode: whole`), one group per shard shaped (views, images, dim) with the image ids as the
`image` coordinate.

Arrays carry zarr v3 `dimension_names`, so xarray opens a store as a Dataset with dims view, tile (or image) and
`{layer}_dim` and coordinates x, y (or image). Group attrs hold the provenance and, written last,
`complete: true`. A store is built under a temporary name and renamed when whole: a crashed job leaves nothing
at `path`. `open_embeddings` reads both kinds through one lazy interface.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import ZstdCodec

from tileprobe.atomic import atomic_path
from tileprobe.errors import TileprobeError
from tileprobe.jsonable import jsonable

CHUNK_BYTES = 3 * 1024 * 1024  # per chunk along tiles: big enough to compress well, small enough to stream
AXES = ("tile", "image")  # a slide store's rows are tiles; a shard store's are whole images
# Provenance keys that must agree before slides are analysed together.
IDENTITY_KEYS = ("model", "weights_sha256", "input_px", "mean", "std", "pool", "dtype")


class StoreError(TileprobeError):
    """A store is missing, incomplete or does not fit; the message names the store and says the fix."""


def chunk_tiles(dim: int, itemsize: int, n_tiles: int) -> int:
    return max(1, min(max(n_tiles, 1), CHUNK_BYTES // max(1, dim * itemsize)))


class _ChunkBuffer:
    """Collects rows of one chunk of one (view, layer) so each chunk is compressed and written once."""

    def __init__(self, lo: int, hi: int, dim: int, dtype: np.dtype):
        self.lo = lo
        self.data = np.full((hi - lo, dim), np.nan, dtype=dtype)
        self.filled = np.zeros(hi - lo, dtype=bool)

    def put(self, start: int, rows: np.ndarray) -> None:
        self.data[start - self.lo : start - self.lo + len(rows)] = rows
        self.filled[start - self.lo : start - self.lo + len(rows)] = True

    @property
    def full(self) -> bool:
        return bool(self.filled.all())


class EmbeddingWriter:
    """Stream embeddings of one slide into a Zarr v3 store, atomically.

    with EmbeddingWriter(path, n_tiles, {"final": 512}, coords={"x": xs, "y": ys}, attrs=prov) as w:
        w.write(view=0, start=0, arrays={"final": feats})   # feats (b, 512), any order of starts

    On leaving the block every tile of every view and layer must have been written; then `complete: true` is
    set and the store is renamed to `path`. Any exception leaves neither `path` nor a temporary behind.
    """

    def __init__(
        self,
        path: str | Path,
        n_tiles: int,
        dims: dict[str, int],
        n_views: int = 1,
        coords: dict[str, np.ndarray] | None = None,
        attrs: dict | None = None,
        dtype: str = "float32",
        axis: str = "tile",
    ):
        if axis not in AXES:
            raise ValueError(f"{path}: axis must be one of {AXES}, got {axis!r}")
        self.axis = axis
        self.path = Path(path)
        self.n_tiles = int(n_tiles)
        self.n_views = int(n_views)
        self.dims = {str(k): int(v) for k, v in dims.items()}
        self.coords = {k: np.asarray(v) for k, v in (coords or {}).items()}
        self.attrs = jsonable(dict(attrs or {}))
        self.dtype = np.dtype(dtype)
        self._check_args()
        self._stack: contextlib.ExitStack | None = None

    def _check_args(self) -> None:
        if self.n_tiles < 0 or self.n_views < 1 or not self.dims:
            raise ValueError(f"{self.path}: need n_tiles >= 0, n_views >= 1 and at least one layer")
        reserved = {"view", self.axis}
        clash = (set(self.dims) & (set(self.coords) | reserved)) | (set(self.coords) & {"view"})
        if self.axis in self.dims:
            clash.add(self.axis)
        if clash:
            raise ValueError(f"{self.path}: names {sorted(clash)} are used twice; layers, coords, view, {self.axis}")
        for name, values in self.coords.items():
            if values.shape != (self.n_tiles,):
                raise ValueError(f"{self.path}: coord {name!r} has shape {values.shape}, need ({self.n_tiles},)")

    def __enter__(self) -> EmbeddingWriter:
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._open(tmp)
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def _open(self, tmp: Path) -> None:
        self.group = zarr.open_group(tmp, mode="w", zarr_format=3)
        self.group.attrs.update({**self.attrs, "complete": False})
        self.arrays = {}
        self.chunks = {}
        for layer, dim in self.dims.items():
            chunk = chunk_tiles(dim, self.dtype.itemsize, self.n_tiles)
            self.chunks[layer] = chunk
            self.arrays[layer] = self.group.create_array(
                layer,
                shape=(self.n_views, self.n_tiles, dim),
                chunks=(1, chunk, dim),
                dtype=self.dtype,
                fill_value=np.nan,
                compressors=ZstdCodec(level=3),
                dimension_names=("view", self.axis, f"{layer}_dim"),
                attributes={"coordinates": " ".join(self.coords)},  # xarray: x, y belong to every tile
            )
        for name, values in self.coords.items():
            text = values.dtype.kind in "OUT"  # image ids
            arr = self.group.create_array(
                name, shape=values.shape, chunks=(max(1, len(values)),), dtype=str if text else values.dtype,
                compressors=ZstdCodec(level=3), dimension_names=(self.axis,),
            )
            values = values.astype(str) if text else values
            if len(values):
                arr[:] = values
        self.pending: dict[tuple[str, int, int], _ChunkBuffer] = {}
        self.written = {layer: np.zeros((self.n_views, self.n_tiles), dtype=bool) for layer in self.dims}

    def write(self, view: int, start: int, arrays: dict[str, np.ndarray]) -> None:
        """Put rows start..start+b of one view for every layer."""
        if set(arrays) != set(self.dims):
            raise ValueError(f"{self.path}: write got layers {sorted(arrays)}, store has {sorted(self.dims)}")
        if not 0 <= view < self.n_views:
            raise ValueError(f"{self.path}: view {view} is outside 0..{self.n_views - 1}")
        for layer, rows in arrays.items():
            rows = np.asarray(rows, dtype=self.dtype)
            if rows.ndim != 2 or rows.shape[1] != self.dims[layer] or not 0 <= start <= self.n_tiles - len(rows):
                raise ValueError(
                    f"{self.path}: layer {layer!r} rows {rows.shape} at tile {start} do not fit "
                    f"(tiles {self.n_tiles}, dim {self.dims[layer]})"
                )
            self._put(layer, view, start, rows)
            self.written[layer][view, start : start + len(rows)] = True

    def _put(self, layer: str, view: int, start: int, rows: np.ndarray) -> None:
        chunk = self.chunks[layer]
        stop = start + len(rows)
        if stop == start:
            return
        for index in range(start // chunk, (stop - 1) // chunk + 1):
            lo, hi = index * chunk, min((index + 1) * chunk, self.n_tiles)
            key = (layer, view, index)
            buffer = self.pending.setdefault(key, _ChunkBuffer(lo, hi, self.dims[layer], self.dtype))
            a, b = max(lo, start), min(hi, stop)
            buffer.put(a, rows[a - start : b - start])
            if buffer.full:
                self._flush(key)

    def _flush(self, key: tuple[str, int, int]) -> None:
        layer, view, _ = key
        buffer = self.pending.pop(key)
        self.arrays[layer][view, buffer.lo : buffer.lo + len(buffer.data)] = buffer.data

    def _finish(self) -> None:
        # Every chunk was flushed the moment its last row arrived, so only unwritten tiles can remain.
        for layer, written in self.written.items():
            if not written.all():
                view, tile = np.argwhere(~written)[0]
                raise StoreError(
                    f"{self.path}: layer {layer!r} has {int((~written).sum())} tile(s) never written "
                    f"(first: view {view}, tile {tile}); the store was not kept"
                )
        self.group.attrs["complete"] = True  # last: a store without it was never finished

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._stack is not None
        stack, self._stack = self._stack, None
        if exc_type is None:
            try:
                self._finish()
            except BaseException:
                stack.__exit__(*sys.exc_info())
                raise
        return bool(stack.__exit__(exc_type, exc, tb))


# ---------------------------------------------------------------------------------------------- reading


def _open_group(path: str | Path) -> zarr.Group:
    try:
        return zarr.open_group(Path(path), mode="r", zarr_format=3)
    except Exception as exc:
        raise StoreError(f"{path}: not an embedding store ({exc}); re-run the embed step for it") from exc


def is_complete(path: str | Path) -> bool:
    """True only for a store whose writer finished."""
    try:
        return _open_group(path).attrs.get("complete") is True
    except StoreError:
        return False


def complete_group(path: str | Path) -> zarr.Group:
    group = _open_group(path)
    if group.attrs.get("complete") is not True:
        raise StoreError(f"{path}: store is incomplete (its writer did not finish); delete it and re-run")
    return group


def read_provenance(path: str | Path) -> dict:
    """The store's attrs: provenance of its embeddings plus `complete`."""
    return json.loads(json.dumps(dict(complete_group(path).attrs)))


def _is_layer(arr: zarr.Array) -> bool:
    names = tuple(arr.metadata.dimension_names or ())
    return len(names) == 3 and names[0] == "view" and names[1] in AXES


def layers(path: str | Path) -> list[str]:
    """Names of the layer arrays in a store, sorted."""
    group = complete_group(path)
    return sorted(name for name, arr in group.arrays() if _is_layer(arr))


# What zarr and its codecs raise for a chunk whose bytes do not decode (a truncated or overwritten file).
DECODE_ERRORS = (RuntimeError, ValueError)


def _read(arr: zarr.Array, path: str | Path, key=Ellipsis) -> np.ndarray:
    """`arr[key]`, a chunk that does not decode raised as a StoreError that names the store and the array."""
    try:
        return arr[key]
    except DECODE_ERRORS as exc:
        raise StoreError(f"{path}: array {arr.basename!r} cannot be read, a chunk is damaged ({exc}); "
                         f"delete {path} and rerun snakemake to recompute it") from exc


def lazy_array(arr: zarr.Array, path: str | Path):
    """`arr` as a dask array, like da.from_zarr, but a chunk that does not decode (read at compute time, far
    from here) raises a StoreError that names the store and the array."""
    import dask.array as da
    from dask.base import tokenize

    return da.from_array(_CheckedArray(arr, path), arr.chunks, name=f"from-zarr-{tokenize(arr)}")


class _CheckedArray:
    """A zarr array for dask.array.from_array whose chunk reads go through `_read` (they run at compute time)."""

    def __init__(self, arr: zarr.Array, path: str | Path):
        self.arr, self.path = arr, str(path)
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim

    def __getitem__(self, key):
        return _read(self.arr, self.path, key)


def _layer_array(group: zarr.Group, path: str | Path, layer: str) -> zarr.Array:
    names = layers(path)
    if layer not in names:
        raise StoreError(f"{path}: no layer {layer!r}; it has {names}. Add the layer to the backbone and re-embed")
    return group[layer]


def load_layer(path: str | Path, layer: str) -> np.ndarray:
    """One layer in memory: float array (views, tiles, dim)."""
    group = complete_group(path)
    return _read(_layer_array(group, path, layer), path)


def is_shard(group: zarr.Group) -> bool:
    """A store of a collection's shard: rows are whole images, named by its `image` coordinate."""
    return "image" in group and tuple(group["image"].metadata.dimension_names or ()) == ("image",)


def store_images(path: str | Path) -> list[str]:
    """The image ids of a shard store, in row order."""
    group = complete_group(path)
    if not is_shard(group):
        raise StoreError(f"{path}: a slide's store, not a shard of images")
    return _read(group["image"], path).astype(object).tolist()


def open_embeddings(stores: dict[str, str | Path], layer: str, sheet: pd.DataFrame | None = None,
                    tiles: dict[str, pd.DataFrame | str | Path] | None = None):
    """Lazy xarray.Dataset of one layer over many stores, slide stores and shard stores alike: dims
    (view, tile, `{layer}_dim`), where an image of a collection is one row.

    `stores` maps a slide's name to its store, or a shard's name to its store. Per-row coords: slide (the
    sample: a slide, or an image of a shard), tile_index (row in the slide's tile table; 0 for an image), x, y,
    store (the name it came from), patient when `sheet` has a `patient` column (missing patients default to the
    slide), and `label` (the annotated class, "" where none) when `tiles` maps slides to their tile tables
    (DataFrames or Parquet paths) with a `label` column. Values stay on disk until computed (Dask), so memory is
    bounded by the chunk size, not by the collection. attrs: the backbone identity, `samples` (every sample in
    row order, slides without tiles too) and `unreadable` ({image: error} of images a shard could not read).
    """
    import dask.array as da
    import xarray as xr

    if not stores:
        raise StoreError("open_embeddings got no stores; check the task selects at least one slide")
    parts, columns, samples, unreadable, reference = [], [], [], {}, None
    for name, path in stores.items():
        group = complete_group(path)
        arr = _layer_array(group, path, layer)
        attrs = dict(group.attrs)
        reference = _check_same_backbone(reference, name, path, attrs)
        n = arr.shape[1]
        if is_shard(group):
            ids = _read(group["image"], path).astype(object)
            columns.append(pd.DataFrame({"slide": ids, "tile_index": 0, "x": 0, "y": 0, "store": name}))
            samples.extend(ids.tolist())
            unreadable.update(attrs.get("unreadable") or {})
        else:
            xy = {c: _read(group[c], path) if c in group else np.zeros(n, np.int64) for c in ("x", "y")}
            columns.append(pd.DataFrame({"slide": name, "tile_index": np.arange(n), **xy, "store": name}))
            samples.append(name)
        parts.append(lazy_array(arr, path))
    dims = {p.shape[2] for p in parts}
    if len(dims) > 1:
        raise StoreError(f"stores for layer {layer!r} have different widths {sorted(dims)}; re-embed them alike")
    rows = pd.concat(columns, ignore_index=True)
    coords = {c: ("tile", rows[c].to_numpy(dtype=object if c in ("slide", "store") else np.int64))
              for c in rows.columns}
    patients = _patients(sheet, samples)
    if patients is not None:
        coords["patient"] = ("tile", rows["slide"].map(patients).to_numpy(dtype=object))
    if tiles is not None:
        coords["label"] = ("tile", _tile_labels(tiles, stores, rows))
    data = da.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    ds = xr.Dataset({layer: (("view", "tile", f"{layer}_dim"), data)}, coords=coords)
    ds.attrs = {**{k: v for k, v in reference[2].items() if k in IDENTITY_KEYS}, "samples": samples,
                "unreadable": unreadable}
    return ds


def sample_features(ds, layer: str, view: int = 0, values: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """{sample: (rows, dim) array} of one view of `open_embeddings`' dataset, every sample of attrs["samples"]
    (a slide without tiles gets zero rows). Reads the view once, chunk by chunk. `values`: other rows aligned
    with the dataset's (precomputed augmented copies, say) to split the same way instead."""
    values = np.asarray(ds[layer].isel(view=view).values if values is None else values)
    if len(values) != ds.sizes["tile"]:
        raise StoreError(f"{len(values)} rows given for {ds.sizes['tile']} rows of the stores; rebuild them alike")
    slides = ds["slide"].values
    cuts = np.flatnonzero(slides[1:] != slides[:-1]) + 1 if len(slides) else np.array([], np.int64)
    out = {s: values[a:b] for s, a, b in zip(slides[np.r_[0, cuts]] if len(slides) else [],
                                             np.r_[0, cuts], np.r_[cuts, len(slides)])}
    empty = np.empty((0, values.shape[-1]), values.dtype)
    return {s: out.get(s, empty) for s in ds.attrs["samples"]}


def _tile_labels(tiles: dict, stores: dict, rows: pd.DataFrame) -> np.ndarray:
    """Per row, its slide's tile-table `label` as objects ("" where no region covers a tile)."""
    missing = [s for s in stores if s not in tiles]
    if missing:
        raise StoreError(f"slides {missing[:5]} have stores but no tile table in `tiles`; pass one per slide")
    out = []
    for slide, part in rows.groupby("store", sort=False):
        table = tiles[slide]
        if not isinstance(table, pd.DataFrame):
            table = pd.read_parquet(table)
        if len(table) != len(part):
            raise StoreError(
                f"{stores[slide]}: {len(part)} tiles, but the tile table of slide {slide!r} has {len(table)} rows; "
                "the store was made from another tiling: re-embed it"
            )
        if "label" in table.columns:
            out.append(table["label"].astype(object).where(table["label"].notna(), "").to_numpy(dtype=object))
        else:
            out.append(np.full(len(table), "", dtype=object))
    return np.concatenate(out) if out else np.array([], dtype=object)


def _patients(sheet: pd.DataFrame | None, slides: list[str]) -> dict[str, str] | None:
    if sheet is None or "patient" not in sheet.columns:
        return None
    table = sheet.set_index("slide")["patient"]
    missing = pd.Index(slides).difference(table.index)
    if len(missing):
        raise StoreError(f"slides {list(missing[:5])} have stores but no row in the sample sheet; add them")
    return {s: str(p) if pd.notna(p) else s for s, p in zip(slides, table.reindex(slides))}


def _check_same_backbone(reference, name, path, attrs):
    """Slides analysed together must come from the same backbone and preprocessing."""
    if reference is None:
        return name, path, attrs
    ref_name, ref_path, ref = reference
    differ = [k for k in IDENTITY_KEYS if ref.get(k) != attrs.get(k)]
    if differ:
        raise StoreError(
            f"stores {ref_path} ({ref_name}) and {path} ({name}) disagree on {differ}; "
            "re-embed them with one backbone spec"
        )
    return reference
