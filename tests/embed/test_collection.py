"""A shard's store: one row per readable image, equal to embedding each image alone; unreadable images named in
its attrs and skipped by the one reading interface (issue 13, points 1-3)."""

import numpy as np
import pytest

from tests.support.slide_factory import position_image, write_png
from tileprobe.embed.collection import embed_shard
from tileprobe.embed.load import load_backbone
from tileprobe.embed.store import open_embeddings, read_provenance, sample_features, store_images
from tileprobe.tiling.collection import tile_shard

SPEC = {"model": "test_resnet", "weights": "none", "batch_size": 3}
TILE = 32


@pytest.fixture
def images(tmp_path):
    rows = []
    for i, (w, h) in enumerate([(120, 100), (100, 150), (130, 130), (90, 160)]):
        write_png(tmp_path / f"im{i}.png", np.roll(position_image(w, h), 17 * i, axis=1))
        rows.append({"slide": f"im{i}", "path": tmp_path / f"im{i}.png", "mpp": None})
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"cut short" * 5)
    rows.insert(2, {"slide": "bad", "path": tmp_path / "bad.png", "mpp": None})
    return rows


def shard_store(rows, out, views=1, threads=1):
    table, _ = tile_shard(rows, TILE, out.stem)
    return embed_shard(table, {"shard": out.stem}, TILE, load_backbone(SPEC, TILE), out, threads=threads,
                       views=views)


@pytest.mark.parametrize("views", [1, 2])
def test_open_embeddings_over_shards_equals_embedding_each_image_alone(tmp_path, images, views):
    first = shard_store(images[:3], tmp_path / "shard_0.zarr", views, threads=2)
    second = shard_store(images[3:], tmp_path / "shard_1.zarr", views)
    assert store_images(first) == ["im0", "im1"]  # `bad` is not a row of the store ...
    assert read_provenance(first)["unreadable"]["bad"].startswith("cannot read")  # ... but named in its attrs
    ds = open_embeddings({"shard_0": first, "shard_1": second}, "final")
    assert ds.attrs["samples"] == ["im0", "im1", "im2", "im3"] and list(ds.attrs["unreadable"]) == ["bad"]
    assert ds.sizes["view"] == views and list(ds["store"].values) == ["shard_0"] * 2 + ["shard_1"] * 2
    for view in range(views):
        got = sample_features(ds, "final", view=view)
        for row in (r for r in images if r["slide"] != "bad"):
            alone = open_embeddings({"x": shard_store([row], tmp_path / f"alone_{row['slide']}.zarr", views)},
                                    "final")
            np.testing.assert_allclose(got[row["slide"]], sample_features(alone, "final", view=view)[row["slide"]],
                                       rtol=1e-5, atol=1e-6)
    assert not np.allclose(sample_features(ds, "final")["im0"], sample_features(ds, "final")["im1"])


def test_shard_and_slide_stores_read_alike(tmp_path, images):
    """A slide store beside a shard store: one interface, a `slide` coordinate for both."""
    from tileprobe.embed.store import EmbeddingWriter

    shard = shard_store(images[:2], tmp_path / "shard_0.zarr")
    attrs = read_provenance(shard)
    with EmbeddingWriter(tmp_path / "s.zarr", 3, {"final": 96}, coords={"x": np.arange(3), "y": np.zeros(3, int)},
                         attrs=attrs) as w:
        w.write(0, 0, {"final": np.ones((3, 96))})
    ds = open_embeddings({"shard_0": shard, "slideA": tmp_path / "s.zarr"}, "final")
    features = sample_features(ds, "final")
    assert list(features) == ["im0", "im1", "slideA"]
    assert features["slideA"].shape == (3, 96) and features["im0"].shape == (1, 96)
    assert list(ds["tile_index"].values) == [0, 0, 0, 1, 2]
