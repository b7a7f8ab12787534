import numpy as np
import pandas as pd
import pytest
import torch
import zarr
from PIL import Image

from tileprobe.backbones import load_backbone
from tileprobe.extract import embed_slide
from tileprobe.slides import open_slide
from tileprobe.store import is_complete, load_layer, read_provenance
from tileprobe.tiling import read_tile, read_tiles, tile_table, write_tiles

SPEC = {"model": "test_resnet", "weights": "none", "batch_size": 4}
TILE = 32


@pytest.fixture
def slide(tmp_path):
    """A 96 x 64 PNG with structure, so that every tile embeds differently."""
    yy, xx = np.mgrid[0:64, 0:96]
    rgb = np.stack([xx * 2, yy * 3, (xx * yy) % 256], axis=-1).astype(np.uint8)
    path = tmp_path / "slide.png"
    Image.fromarray(rgb).save(path)
    return path


def grid_table(tmp_path, n_cols=3, n_rows=2, name="grid"):
    xs, ys = np.meshgrid(np.arange(n_cols) * TILE, np.arange(n_rows) * TILE)
    tiles = tile_table(xs.ravel(), ys.ravel(), 0, TILE, np.ones(n_cols * n_rows))
    path = tmp_path / f"{name}.parquet"
    write_tiles(tiles, path, {"tile_px": TILE})
    return path


def direct_embeddings(slide_path, tiles_path, tile_px, spec=SPEC):
    """What the store should hold: read_tile on every row, one backbone.embed call."""
    tiles, _ = read_tiles(tiles_path)
    with open_slide(slide_path) as s:
        batch = np.stack([read_tile(s, row, tile_px) for row in tiles.itertuples(index=False)])
    return load_backbone(spec, tile_px).embed(torch.from_numpy(batch))["final"]


@pytest.mark.parametrize("threads", [1, 2])
def test_store_matches_direct_embedding(tmp_path, slide, threads):
    tiles = grid_table(tmp_path)
    out = tmp_path / "emb" / "slide.zarr"
    embed_slide(slide, tiles, TILE, SPEC, out, threads=threads, provenance_extra={"tiling": {"tile_px": TILE}})
    stored = load_layer(out, "final")
    assert stored.shape == (1, 6, 96)
    np.testing.assert_allclose(stored[0], direct_embeddings(slide, tiles, TILE), rtol=1e-5, atol=1e-5)
    group = zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(group["x"][...], [0, 32, 64, 0, 32, 64])
    np.testing.assert_array_equal(group["y"][...], [0, 0, 0, 32, 32, 32])
    prov = read_provenance(out)
    assert prov["model"] == "test_resnet" and prov["tiling"] == {"tile_px": TILE}
    assert prov["n_tiles"] == 6 and "tileprobe_version" in prov and "created" in prov
    assert list((tmp_path / "emb").iterdir()) == [out]


def test_whole_image_mode(tmp_path, slide):
    tiles = pd.DataFrame(tile_table([0], [0], 0, 96, [1.0]))
    path = tmp_path / "whole.parquet"
    write_tiles(tiles, path, {})
    out = tmp_path / "whole.zarr"
    embed_slide(slide, path, 48, SPEC, out)
    np.testing.assert_allclose(load_layer(out, "final")[0], direct_embeddings(slide, path, 48), rtol=1e-5, atol=1e-5)


def test_repeated_extraction_is_identical(tmp_path, slide):
    tiles = grid_table(tmp_path)
    first, second = tmp_path / "a.zarr", tmp_path / "b.zarr"
    embed_slide(slide, tiles, TILE, SPEC, first)
    embed_slide(slide, tiles, TILE, SPEC, second)
    np.testing.assert_array_equal(load_layer(first, "final"), load_layer(second, "final"))
    a, b = read_provenance(first), read_provenance(second)
    a.pop("created"), b.pop("created")
    assert a == b


def test_no_tiles_gives_an_empty_valid_store(tmp_path, slide):
    tiles = grid_table(tmp_path, n_cols=0, n_rows=0)
    out = tmp_path / "empty.zarr"
    embed_slide(slide, tiles, TILE, SPEC, out)
    assert is_complete(out)
    assert load_layer(out, "final").shape == (1, 0, 96)


def test_unreadable_slide_leaves_no_store(tmp_path):
    tiles = grid_table(tmp_path)
    out = tmp_path / "missing.zarr"
    with pytest.raises(Exception, match="not found"):
        embed_slide(tmp_path / "missing.png", tiles, TILE, SPEC, out)
    assert not out.exists()
