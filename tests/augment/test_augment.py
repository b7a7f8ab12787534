"""Feature-space augmentation: per-tile copies with Dask over real Zarr stores, and in-fold augmentations."""

import inspect

import numpy as np
import pandas as pd
import pytest

from tileprobe import augment
from tileprobe.augment.per_tile import augment_stores, load_copies
from tileprobe.augment.specs import AugmentError, check_augmentations, resolve
from tileprobe.embed.store import EmbeddingWriter
from tileprobe.learn.data import TaskData


def write_store(path, n=300, dim=16, views=1, seed=0):
    data = np.random.default_rng(seed).normal(size=(views, n, dim)).astype("float32")
    with EmbeddingWriter(path, n, {"final": dim}, n_views=views, attrs={"model": "m"}) as out:
        for view in range(views):
            for start in range(0, n, 128):
                out.write(view, start, {"final": data[view, start : start + 128]})
    return data


@pytest.fixture
def stores(tmp_path):
    """Two slides, three image-space views per tile."""
    paths = {s: tmp_path / f"{s}.zarr" for s in ("a", "b")}
    data = {s: write_store(p, n=250 + 50 * i, views=3, seed=i) for i, (s, p) in enumerate(paths.items())}
    return paths, data


def run(stores, tmp_path, name, spec, chunk_tiles=None):
    out = tmp_path / f"{name}-{chunk_tiles}.zarr"
    augment_stores(stores, out, name, spec, chunk_tiles=chunk_tiles)
    return {s: load_copies(out, s, "final") for s in stores}


# ---------------------------------------------------------------------------------------------- point 1


def test_views_picks_each_tile_from_its_own_stored_views(stores, tmp_path):
    paths, data = stores
    copies = run(paths, tmp_path, "views", {"copies": 4, "seed": 1})
    for slide, values in data.items():
        out = copies[slide]
        assert out.shape == (4, values.shape[1], values.shape[2])
        # Every copy of tile t is exactly one of tile t's views ...
        same = (out[:, None] == values[None]).all(axis=-1)  # (copies, views, tiles)
        assert same.any(axis=1).all()
        # ... and all views get sampled, about evenly.
        counts = np.bincount(same.argmax(axis=1).ravel(), minlength=3)
        assert counts.min() > counts.sum() / 6


def test_views_on_a_one_view_store_says_to_embed_views(tmp_path):
    write_store(tmp_path / "one.zarr", views=1)
    with pytest.raises(AugmentError, match="views"):
        augment_stores({"one": tmp_path / "one.zarr"}, tmp_path / "o.zarr", "views", {})
    assert not (tmp_path / "o.zarr").exists()


def test_dropout_zeroes_about_p_and_keeps_the_mean(stores, tmp_path):
    paths, data = stores
    out = run(paths, tmp_path, "drop", {"kind": "dropout", "p": 0.3, "copies": 2})["b"]
    source = data["b"][0]
    zero = out == 0
    assert abs(zero.mean() - 0.3) < 0.02
    np.testing.assert_allclose(out[~zero], np.broadcast_to(source / 0.7, out.shape)[~zero], rtol=1e-6)
    assert not np.array_equal(zero[0], zero[1])  # copies differ from one another


def test_a_damaged_chunk_names_its_store_and_loses_no_finished_output(stores, tmp_path):
    """Augmenting is often the first job to read a store: a chunk that does not decode names the store and the
    fix there too, not numcodecs' bare message, and no half-written augmented store is left."""
    from tileprobe.embed.store import StoreError

    paths, _ = stores
    chunk = next(f for f in (paths["b"] / "final" / "c" / "0").rglob("*") if f.is_file())  # view 0: dropout reads it
    chunk.write_bytes(b"not zstd" * 16)
    with pytest.raises(StoreError, match=rf"{paths['b']}: array 'final' cannot be read.*delete {paths['b']}"):
        augment_stores(paths, tmp_path / "drop.zarr", "drop", {"kind": "dropout", "p": 0.3, "copies": 1})
    assert not (tmp_path / "drop.zarr").exists()


def test_gaussian_noise_scales_with_each_dimensions_spread():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 3)) * np.array([0.1, 1.0, 10.0])
    y = np.array(["a"] * len(X), dtype=object)
    fn = augment.in_fold(resolve("noise", {"kind": "gaussian_noise", "sigma": 0.5}))
    X2, y2, g2 = fn(X, y, y.copy(), seed=0)
    noise = X2[len(X):] - X
    np.testing.assert_allclose(noise.std(axis=0) / X.std(axis=0), 0.5, rtol=0.05)
    assert len(X2) == 2 * len(X) and (y2 == "a").all()


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["a"] * (n - n // 4) + ["b"] * (n // 4), dtype=object)
    X = rng.normal(size=(n, 5)) + np.where(y == "a", 0.0, 8.0)[:, None]
    groups = np.array([f"p{i % 10}" for i in range(n)], dtype=object)
    return X, y, groups


def on_segment(point, a, b):
    """True when `point` lies on the segment a-b."""
    d = b - a
    if not d.any():
        return np.allclose(point, a)
    lam = np.dot(point - a, d) / np.dot(d, d)
    return -1e-9 <= lam <= 1 + 1e-9 and np.allclose(a + lam * d, point)


@pytest.mark.parametrize("kind", ["mixup", "interpolate"])
def test_mixup_and_interpolate_stay_between_two_rows_of_one_class(kind):
    X, y, groups = blobs()
    X2, y2, g2 = augment.in_fold(resolve(kind, {"copies": 2, "k": 3} if kind == "interpolate" else {"copies": 2}))(
        X, y, groups, seed=3)
    assert len(X2) == 3 * len(X)
    np.testing.assert_array_equal(X2[: len(X)], X)
    for row in range(len(X), len(X2)):
        anchor = (row - len(X)) % len(X)
        assert y2[row] == y[anchor] and g2[row] == groups[anchor]
        same = np.flatnonzero(y == y2[row])
        assert any(on_segment(X2[row], X[anchor], X[j]) for j in same), row


def test_interpolate_uses_only_nearest_neighbours():
    X, y, groups = blobs()
    k = 2
    X2, _, _ = augment.in_fold(resolve("interpolate", {"k": k}))(X, y, groups, seed=0)
    for row in range(len(X), len(X2)):
        anchor = row - len(X)
        same = np.flatnonzero((y == y[anchor]) & (np.arange(len(X)) != anchor))
        near = same[np.argsort(np.linalg.norm(X[same] - X[anchor], axis=1))[:k]]
        assert any(on_segment(X2[row], X[anchor], X[j]) for j in near)


def test_balance_evens_out_the_classes():
    X, y, groups = blobs()
    X2, y2, _ = augment.in_fold(resolve("balance", {}))(X, y, groups, seed=0)
    labels, counts = np.unique(y2, return_counts=True)
    assert list(counts) == [45, 45]
    new_b = X2[len(X):]
    assert (new_b.mean(axis=1) > 4).all()  # synthetic rows of "b" stay in b's blob


def test_config_errors_name_the_key_and_the_fix():
    with pytest.raises(AugmentError, match=r"augmentations\.blur.*kind"):
        resolve("blur", {})
    with pytest.raises(AugmentError, match=r"augmentations\.m.*sigma.*valid: alpha"):
        resolve("m", {"kind": "mixup", "sigma": 1})
    with pytest.raises(AugmentError, match=r"augmentations\.d\.p"):
        resolve("d", {"kind": "dropout", "p": 1.5})
    with pytest.raises(AugmentError, match="reserved"):
        check_augmentations({"none": {"kind": "dropout"}})
    assert check_augmentations({"mixup": {}})["mixup"] == {"kind": "mixup", "alpha": 0.4, "copies": 1, "seed": 0}


# ---------------------------------------------------------------------------------------------- point 3


def test_same_seed_same_copies_whatever_the_chunking(stores, tmp_path):
    paths, _ = stores
    for spec in ({"kind": "views", "copies": 2, "seed": 7}, {"kind": "dropout", "p": 0.2, "seed": 7}):
        base = run(paths, tmp_path, spec["kind"], spec)
        for chunk in (7, 37, 1000):
            other = run(paths, tmp_path, spec["kind"], spec, chunk_tiles=chunk)
            for slide in paths:
                np.testing.assert_array_equal(other[slide], base[slide])
        reseeded = run(paths, tmp_path, spec["kind"] + "2", {**spec, "seed": 8})
        assert not np.array_equal(reseeded["a"], base["a"])
        assert not np.array_equal(base["a"][:, :100], base["b"][:, :100])  # slides draw their own numbers


def test_no_task_holds_more_than_a_chunk(tmp_path, monkeypatch):
    """Memory is bounded by chunk size, not store size: the largest value any task of the graph produces is one
    stored chunk of tiles (times the views it samples from)."""
    from dask.callbacks import Callback

    from tileprobe.embed import store

    monkeypatch.setattr(store, "CHUNK_BYTES", 40 * 16 * 4)  # 40 tiles of 16 float32 per stored chunk
    paths = {s: tmp_path / f"{s}.zarr" for s in ("a", "b")}
    data = {s: write_store(p, n=250, views=3, seed=i) for i, (s, p) in enumerate(paths.items())}
    largest = []

    class Largest(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            largest.append(getattr(result, "nbytes", 0))

    with Largest():
        run(paths, tmp_path, "views", {"copies": 2})
    chunk = 3 * 40 * 16 * 4
    assert 0 < max(largest) <= chunk
    assert max(largest) * 6 < data["a"].nbytes


# ---------------------------------------------------------------------------------------------- point 2


def test_precomputed_copies_are_added_for_training_rows_only():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4)).astype("float32")
    copies = np.stack([X + 100, X + 200])
    y = np.array(["a", "b"] * 10, dtype=object)
    fn = augment.precomputed(X, copies)
    train = np.array([3, 0, 7])
    X2, y2, g2 = fn(X[train], y[train], y[train], seed=0)
    np.testing.assert_array_equal(X2, np.concatenate([X[train], X[train] + 100, X[train] + 200]))
    assert list(y2) == list(y[train]) * 3
    with pytest.raises(AugmentError):
        fn(X[train] + 1, y[train], y[train], seed=0)


def leak_data(seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b"] * 40, dtype=object)
    X = rng.normal(size=(80, 6)) + (y == "b")[:, None] * 3.0
    groups = np.array([f"p{i // 2}" for i in range(80)], dtype=object)
    return TaskData(X=X, y=y, groups=groups, ids=pd.DataFrame({"slide": groups}))


@pytest.mark.parametrize("kind", list(augment.IN_FOLD) + ["precomputed"])
def test_no_test_fold_information_reaches_training(kind):
    """Every augmented training set is a function of that fold's training rows alone.

    The augmentation sees the training part of each fold only; changing every test row's features and labels
    leaves the augmented training set of that fold bit for bit the same.
    """
    from tileprobe.learn import evaluate

    if "augment" not in inspect.signature(evaluate.cross_validate).parameters:
        pytest.skip("evaluate.cross_validate has no augment hook yet (issue 6)")
    data = leak_data()
    if kind == "precomputed":
        fn = augment.precomputed(data.X, np.stack([data.X * 2, data.X - 1]))
    else:
        fn = augment.in_fold(resolve(kind, {}))
    seen = []

    def spy(X, y, groups, seed):
        seen.append((np.array(X), np.array(y), seed))
        return fn(X, y, groups, seed)

    cfg = {"folds": 4, "repeats": 1, "seed": 0, "bootstrap": 0}
    evaluate.cross_validate(data, "knn", cfg, augment=spy)
    splits = list(evaluate.cv_splits(data.y, data.groups, 4, 1, 0))
    assert len(seen) >= len(splits)
    for (_, _, train, test), (X_train, y_train, seed) in zip(splits, seen):
        # Only training rows went in ...
        np.testing.assert_array_equal(X_train, data.X[train])
        # ... and what came out does not change when every test row does.
        changed = data.X.copy()
        changed[test] = 1e6
        other = fn
        if kind == "precomputed":
            copies = np.stack([data.X * 2, data.X - 1])
            copies[:, test] = -1e6
            other = augment.precomputed(changed, copies)
        before = fn(data.X[train], data.y[train], data.groups[train], seed)
        after = other(changed[train], data.y[train], data.groups[train], seed)
        for a, b in zip(before, after):
            np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------ points 1, 5


@pytest.mark.workflow
def test_demo_shows_each_augmentation_as_its_own_row(demo_run):
    """The demo's augmentations are rows beside `none`, with confidence intervals; the per-tile one went through
    the augment rule's Dask store, copies aligned with the embeddings."""
    import zarr

    results = demo_run / "results"
    everything = pd.read_parquet(results / "report/summary.parquet")
    classes = everything["kind"].isin(["binary", "multiclass", "multilabel"])
    summary = everything[classes]
    keys = ["task", "backbone", "layer", "head"]
    per_model = summary.groupby(keys)["augmentation"].apply(set)
    assert (per_model == {"none", "dropout", "mixup"}).all(), per_model
    # the demo's regression and survival tasks ask for `augmentations: []`: `none` only
    assert set(everything.loc[~classes, "augmentation"]) == {"none"}
    assert summary[["balanced_accuracy_ci_low", "balanced_accuracy_ci_high"]].notna().all().all()
    assert (summary["balanced_accuracy_ci_low"] <= summary["balanced_accuracy_ci_high"]).all()
    store = zarr.open_group(results / "augmented/wsi/resnet18/dropout.zarr", mode="r")
    assert store.attrs["complete"] and store.attrs["spec"]["kind"] == "dropout"
    for slide in list(store.group_keys())[:2]:
        emb = zarr.open_group(results / f"embeddings/wsi/resnet18/{slide}.zarr", mode="r")["final"]
        copies = store[slide]["final"]
        assert copies.shape == (1, *emb.shape[1:])
        values, source = copies[0], emb[0]
        dropped = (values == 0) & (source != 0)
        assert 0.1 < dropped.sum() / (source != 0).sum() < 0.3
        np.testing.assert_allclose(values[~dropped], source[~dropped] / 0.8, rtol=1e-6)
