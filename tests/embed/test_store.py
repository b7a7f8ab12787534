import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tileprobe.embed.store import (
    EmbeddingWriter,
    StoreError,
    is_complete,
    layers,
    load_layer,
    open_embeddings,
    read_provenance,
    sample_features,
)
from tileprobe.jsonable import jsonable


def write_store(path, n=10, dims=None, views=1, seed=0, batch=4, attrs=None):
    dims = dims or {"final": 6, "block3": 4}
    rng = np.random.default_rng(seed)
    data = {layer: rng.normal(size=(views, n, d)).astype("float32") for layer, d in dims.items()}
    coords = {"x": np.arange(n) * 256, "y": np.arange(n) * 512 + seed}
    with EmbeddingWriter(path, n, dims, n_views=views, coords=coords,
                         attrs=attrs or {"model": "m", "input_px": 64, "mean": (0.5, 0.5, 0.5)}) as out:
        for view in range(views):
            for start in range(0, n, batch):
                out.write(view, start, {layer: a[view, start : start + batch] for layer, a in data.items()})
    return data, coords


def test_round_trip(tmp_path):
    path = tmp_path / "s.zarr"
    data, coords = write_store(path, n=11, views=2)
    assert is_complete(path)
    assert layers(path) == ["block3", "final"]
    for layer, values in data.items():
        np.testing.assert_array_equal(load_layer(path, layer), values)
    prov = read_provenance(path)
    assert prov["complete"] is True and prov["model"] == "m" and prov["mean"] == [0.5, 0.5, 0.5]
    ds = xr.open_zarr(path, consolidated=False)
    assert ds["final"].dims == ("view", "tile", "final_dim")
    assert set(ds.coords) >= {"x", "y"} and ds["x"].dims == ("tile",)
    np.testing.assert_array_equal(ds["y"].values, coords["y"])


def test_chunks_follow_the_size_target(tmp_path):
    path = tmp_path / "big.zarr"
    write_store(path, n=3000, dims={"final": 1024}, batch=500)
    import zarr

    chunks = zarr.open_group(path, mode="r")["final"].chunks
    assert chunks[0] == 1 and chunks[2] == 1024
    assert 2 * 2**20 <= chunks[1] * 1024 * 4 <= 4 * 2**20


def test_out_of_order_writes_and_empty_store(tmp_path):
    path = tmp_path / "o.zarr"
    rows = np.arange(12, dtype="float32").reshape(6, 2)
    with EmbeddingWriter(path, 6, {"final": 2}, coords={"x": np.arange(6), "y": np.arange(6)}) as out:
        out.write(0, 4, {"final": rows[4:]})
        out.write(0, 0, {"final": rows[:4]})
    np.testing.assert_array_equal(load_layer(path, "final")[0], rows)
    empty = tmp_path / "e.zarr"
    with EmbeddingWriter(empty, 0, {"final": 8}, coords={"x": np.zeros(0, int), "y": np.zeros(0, int)}):
        pass
    assert is_complete(empty) and load_layer(empty, "final").shape == (1, 0, 8)


def test_failure_leaves_no_store_and_no_temporary(tmp_path):
    path = tmp_path / "s.zarr"
    with pytest.raises(RuntimeError):
        with EmbeddingWriter(path, 4, {"final": 2}) as out:
            out.write(0, 0, {"final": np.ones((2, 2))})
            raise RuntimeError("killed mid-slide")
    assert list(tmp_path.iterdir()) == []
    assert not is_complete(path)


def test_unwritten_tiles_fail_the_store(tmp_path):
    path = tmp_path / "s.zarr"
    with pytest.raises(StoreError, match="never written"):
        with EmbeddingWriter(path, 4, {"final": 2}) as out:
            out.write(0, 0, {"final": np.ones((3, 2))})
    assert list(tmp_path.iterdir()) == []


def test_bad_writes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="do not fit"):
        with EmbeddingWriter(tmp_path / "s.zarr", 4, {"final": 2}) as out:
            out.write(0, 3, {"final": np.ones((2, 2))})
    with pytest.raises(ValueError, match="layers"):
        with EmbeddingWriter(tmp_path / "s.zarr", 4, {"final": 2}) as out:
            out.write(0, 0, {"other": np.ones((2, 2))})
    assert list(tmp_path.iterdir()) == []


def test_incomplete_store_is_not_read(tmp_path):
    path = tmp_path / "s.zarr"
    write_store(path)
    import zarr

    zarr.open_group(path, mode="r+").attrs["complete"] = False  # as if the writer died after a partial copy
    assert not is_complete(path)
    with pytest.raises(StoreError, match="incomplete"):
        load_layer(path, "final")


def test_missing_layer_names_the_alternatives(tmp_path):
    path = tmp_path / "s.zarr"
    write_store(path)
    with pytest.raises(StoreError, match=r"block3.*final"):
        load_layer(path, "block9")


def test_open_embeddings_concatenates_lazily(tmp_path):
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    data_a, _ = write_store(a, n=5, seed=1)
    data_b, coords_b = write_store(b, n=3, seed=2)
    sheet = pd.DataFrame({"slide": ["A", "B"], "patient": ["P1", None]})
    ds = open_embeddings({"A": a, "B": b}, "final", sheet=sheet)
    assert ds["final"].dims == ("view", "tile", "final_dim") and ds.sizes["tile"] == 8
    assert hasattr(ds["final"].data, "dask")
    assert list(ds["slide"].values) == ["A"] * 5 + ["B"] * 3
    assert list(ds["patient"].values) == ["P1"] * 5 + ["B"] * 3  # missing patient defaults to the slide
    np.testing.assert_array_equal(ds["y"].values[5:], coords_b["y"])
    np.testing.assert_array_equal(ds["tile_index"].values, [0, 1, 2, 3, 4, 0, 1, 2])
    np.testing.assert_array_equal(ds["final"].values[:, 5:], data_b["final"])
    assert ds.attrs["model"] == "m"


def test_corrupted_chunk_names_the_store_and_array_and_the_fix(tmp_path):
    # Issue 14: numcodecs' bare "Zstd decompression error: invalid input data" named no store.
    good, bad = tmp_path / "a.zarr", tmp_path / "b.zarr"
    write_store(good, seed=1)
    write_store(bad, seed=2)
    chunk = next(f for f in (bad / "final" / "c").rglob("*") if f.is_file())
    chunk.write_bytes(b"not zstd" * 16)
    ds = open_embeddings({"A": good, "B": bad}, "final")  # lazy: the error comes when the rows are read
    for read in (lambda: load_layer(bad, "final"), lambda: sample_features(ds, "final")):
        with pytest.raises(StoreError) as caught:
            read()
        message = str(caught.value)
        assert str(bad) in message and "'final'" in message
        assert f"delete {bad} and rerun snakemake" in message
        assert str(good) not in message


def test_open_embeddings_refuses_mixed_backbones(tmp_path):
    write_store(tmp_path / "a.zarr", attrs={"model": "m1"})
    write_store(tmp_path / "b.zarr", attrs={"model": "m2"})
    with pytest.raises(StoreError, match="disagree on.*model"):
        open_embeddings({"A": tmp_path / "a.zarr", "B": tmp_path / "b.zarr"}, "final")


def test_attrs_become_plain_json(tmp_path):
    value = jsonable({"a": np.int64(2), "b": (1, np.float32(0.5)), "c": np.arange(2), "d": None, "e": tmp_path})
    assert value == {"a": 2, "b": [1, 0.5], "c": [0, 1], "d": None, "e": str(tmp_path)}
    with pytest.raises(TypeError, match="of type object is not JSON serialisable"):
        write_store(tmp_path / "s.zarr", attrs={"model": "m", "odd": object()})  # not silently str()-ed


def test_open_embeddings_adds_tile_labels(tmp_path):
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    write_store(a, n=3, seed=1)
    write_store(b, n=2, seed=2)
    tiles_a = pd.DataFrame({"x": [0, 1, 2], "label": pd.array(["tumour", None, "stroma"], dtype="string")})
    tiles_b = tmp_path / "b.parquet"
    pd.DataFrame({"x": [0, 1]}).to_parquet(tiles_b)  # no annotations: no label column
    ds = open_embeddings({"A": a, "B": b}, "final", tiles={"A": tiles_a, "B": tiles_b})
    assert list(ds["label"].values) == ["tumour", "", "stroma", "", ""]
    assert ds["label"].dims == ("tile",)
    with pytest.raises(StoreError, match="another tiling"):
        open_embeddings({"A": a}, "final", tiles={"A": tiles_a.iloc[:2]})


def test_memory_holds_at_most_one_chunk_per_layer_and_view(tmp_path):
    """Streaming: rows in tile order are flushed chunk by chunk, so the buffer does not grow with the slide."""
    n, dims, views = 3000, {"final": 1024, "mid": 512}, 2
    most = 0
    with EmbeddingWriter(tmp_path / "s.zarr", n, dims, n_views=views) as out:
        chunk = out.chunks["final"]
        assert n > 3 * chunk  # several chunks, else the check says nothing
        for start in range(0, n, 250):
            for view in range(views):
                out.write(view, start, {k: np.ones((min(250, n - start), d)) for k, d in dims.items()})
            most = max(most, len(out.pending))
    assert most <= len(dims) * views


def test_store_chunks_are_compressed(tmp_path):
    path = tmp_path / "s.zarr"
    with EmbeddingWriter(path, 1000, {"final": 256}) as out:
        out.write(0, 0, {"final": np.zeros((1000, 256))})
    stored = sum(p.stat().st_size for p in (path / "final").rglob("*") if p.is_file())
    assert stored < 1000 * 256 * 4 / 20  # constant rows compress far below their float32 size


def test_undefined_attrs_are_stored_as_null(tmp_path):
    """NaN and infinities become JSON null, as in metrics.json and tile tables (they were the string 'nan')."""
    write_store(tmp_path / "s.zarr", attrs={"model": "m", "slide_mpp": float("nan"), "scale": np.float32("inf")})
    prov = read_provenance(tmp_path / "s.zarr")
    assert prov["slide_mpp"] is None and prov["scale"] is None and prov["model"] == "m"
