"""Every registered head: learns separable embeddings, stays at chance on shuffled labels, and comes back from
its model directory (JSON + safetensors, never a pickle) predicting exactly what it predicted before saving."""

import functools
import json

import numpy as np
import pytest

from tileprobe.learn.evaluate import metrics
from tileprobe.learn.heads.common import HeadError
from tileprobe.learn.heads.registry import head_class, load_head, make_head
from tileprobe.threads import limited_threads

FEATURE_HEADS = ["logreg", "knn", "mlp", "mlp2"]


@pytest.fixture(autouse=True)
def one_thread():
    """As in a workflow job: small fits on one thread (a thread pool on a loaded machine is many times slower)."""
    with limited_threads(1):
        yield
BAG_HEADS = ["abmil", "meanpool"]


def separable(n=90, dim=16, n_classes=3, seed=0, shuffle=False):
    rng = np.random.default_rng(seed)
    idx = np.arange(n) % n_classes
    X = rng.normal(size=(n_classes, dim))[idx] * 3 + rng.normal(size=(n, dim))
    if shuffle:
        idx = rng.permutation(idx)
    y = np.array([f"c{i}" for i in range(n_classes)], dtype=object)[idx]
    return X.astype(np.float32), y, np.array([f"p{i // 2}" for i in range(n)], dtype=object)


def bags_of(X, seed=0, tiles=12):
    """Each sample becomes a bag: a few tiles carry its signal, the rest are shared background."""
    rng = np.random.default_rng(seed)
    out = []
    for row in X:
        bag = rng.normal(size=(tiles, X.shape[1])).astype(np.float32)
        bag[: tiles // 3] += row
        out.append(bag)
    return out


@functools.lru_cache(maxsize=None)  # one fit per head, shared by the tests that only read it
def train_test(name, shuffle=False, seed=0):
    X, y, groups = separable(n=120, seed=seed, shuffle=shuffle)
    Xt, yt, _ = separable(n=60, seed=seed, shuffle=shuffle)  # same centres (same seed), new noise
    Xt = Xt + np.random.default_rng(seed + 1).normal(size=Xt.shape).astype(np.float32) * 0.5
    if head_class(name).input == "bags":
        X, Xt = bags_of(X, seed), bags_of(Xt, seed + 7)
    head = make_head(name, seed=0).fit(X, y, groups)
    return head, Xt, yt


@pytest.mark.parametrize("name", FEATURE_HEADS + BAG_HEADS)
def test_separable_embeddings_are_learnt(name):
    head, Xt, yt = train_test(name)
    proba = head.predict_proba(Xt)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(axis=1), 1.0)
    scores = metrics(yt, proba, list(head.classes_))
    assert scores["balanced_accuracy"] > 0.95 and scores["auroc"] > 0.98, scores


@pytest.mark.parametrize("name", FEATURE_HEADS + BAG_HEADS)
def test_shuffled_labels_stay_at_chance(name):
    # Test labels are an independent shuffle: nothing a head learnt can carry over.
    X, y, groups = separable(n=120, seed=3, shuffle=True)
    Xt, _, _ = separable(n=300, seed=4)
    yt = np.random.default_rng(5).permutation(np.array(["c0", "c1", "c2"] * 100, dtype=object))
    if head_class(name).input == "bags":
        X, Xt = bags_of(X), bags_of(Xt, 9)
    head = make_head(name, seed=0).fit(X, y, groups)
    ba = metrics(yt, head.predict_proba(Xt), list(head.classes_))["balanced_accuracy"]
    assert abs(ba - 1 / 3) < 0.12


@pytest.mark.parametrize("name", FEATURE_HEADS + BAG_HEADS)
def test_saved_head_predicts_the_same_without_pickle(tmp_path, name):
    head, Xt, _ = train_test(name)
    head.save(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names in (["model.json"], ["model.json", "weights.safetensors"])
    if name in ("knn", "mlp", "mlp2", "abmil"):
        assert names == ["model.json", "weights.safetensors"]  # arrays as safetensors, not in JSON
        assert (tmp_path / "weights.safetensors").read_bytes()[:1] != b"\x80"  # no pickle protocol header
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["head"] == name and spec["classes"] == ["c0", "c1", "c2"]
    loaded = load_head(tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(Xt), head.predict_proba(Xt), rtol=0, atol=1e-6)


def test_logreg_tunes_regularisation_on_inner_folds():
    # Many noisy features, few samples: the inner folds should choose strong regularisation;
    # a clean low-dimensional problem should allow a weak one.
    rng = np.random.default_rng(0)
    y = np.array(["a", "b"] * 30, dtype=object)
    noisy = rng.normal(size=(60, 200)) + (y == "b")[:, None] * 0.15
    clean = rng.normal(size=(60, 2)) + (y == "b")[:, None] * 4
    groups = np.arange(60).astype(str).astype(object)
    strong = make_head("logreg", kind="binary").fit(noisy, y, groups)
    weak = make_head("logreg", kind="binary").fit(clean, y, groups)
    assert strong.C_ < weak.C_
    assert set(strong.tuning_) == {"0.001", "0.01", "0.1", "1.0", "10.0"}


def test_knn_tunes_k_and_uses_cosine():
    X, y, groups = separable(n=90)
    head = make_head("knn").fit(X * 100, y, groups)  # cosine: the scale of the vectors does not matter
    assert head.k_ in (1, 3, 5, 9, 15, 25, 51)
    np.testing.assert_allclose(head.predict_proba(X), head.predict_proba(X * 0.01))


def multilabel_data(n=120, dim=12, seed=0):
    """Three terms, each switched on by its own direction in feature space; a sample may have none or all."""
    rng = np.random.default_rng(seed)
    on = rng.random((n, 3)) < 0.4
    X = rng.normal(size=(n, dim)) + on @ (rng.normal(size=(3, dim)) * 3)
    y = np.array([";".join(t for t, o in zip(["ear", "eye", "gut"], row) if o) for row in on], dtype=object)
    return X.astype(np.float32), y, np.array([f"p{i}" for i in range(n)], dtype=object)


@pytest.mark.parametrize("name", ["multitask", "logreg", "knn"])
def test_multilabel_heads_predict_each_term(name, tmp_path):
    X, y, groups = multilabel_data(n=240)
    Xt, yt = X[120:], y[120:]
    head = make_head(name, kind="multilabel").fit(X[:120], y[:120], groups[:120])
    assert list(head.classes_) == ["ear", "eye", "gut"]
    proba = head.predict_proba(Xt)
    assert proba.shape == (len(Xt), 3) and not np.allclose(proba.sum(axis=1), 1.0)  # independent terms
    scores = metrics(yt, proba, list(head.classes_), kind="multilabel")
    assert scores["auroc"] > 0.9 and scores["micro_auroc"] > 0.9 and scores["macro_f1"] > 0.75, scores
    head.save(tmp_path)
    np.testing.assert_allclose(load_head(tmp_path).predict_proba(Xt), proba, atol=1e-6)


def test_a_head_refuses_a_kind_it_cannot_do():
    with pytest.raises(HeadError, match="multitask.*multilabel"):
        make_head("multitask", kind="multiclass")
    with pytest.raises(HeadError, match="'mlp'.*multilabel"):
        make_head("mlp", kind="multilabel")


def test_abmil_attention_finds_the_informative_tiles():
    X, y, groups = separable(n=60, n_classes=2)
    bags = bags_of(X)
    head = make_head("abmil", kind="binary").fit(bags, y, groups)
    weights = np.mean([head.attention(b) for b in bags], axis=0)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[:4].sum() > 0.5  # the 4 signal tiles of 12 get most of the attention
