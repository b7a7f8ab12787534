"""A shard's tiling: unreadable images are recorded with their error, not fatal (issue 13, point 2)."""

import numpy as np
import pytest

from tests.support.slide_factory import position_image, write_png
from tileprobe.tiling.collection import ShardError, readable, tile_shard
from tileprobe.tiling.manifest import flagged, tiling_manifest
from tileprobe.tiling.qc import render_contact_sheet
from tileprobe.tiling.table import write_tiles


def bad_images(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    write_png(folder / "whole.png", position_image(140, 100))
    (folder / "truncated.png").write_bytes((folder / "whole.png").read_bytes()[:150])
    (folder / "text.png").write_text("not an image\n")
    return [{"slide": p, "path": folder / f"{p}.png", "mpp": None}
            for p in ("good1", "empty", "truncated", "text", "missing")]


def test_unreadable_images_get_their_error_and_the_rest_are_read(tmp_path):
    images = bad_images(tmp_path)
    write_png(tmp_path / "good1.png", position_image(120, 160))
    table, pixels = tile_shard(images, 64, "shard_all")
    assert list(table["slide"]) == ["good1", "empty", "truncated", "text", "missing"]
    errors = dict(zip(table["slide"], table["error"]))
    assert errors["good1"] == "" and pixels[0].shape == (64, 64, 3)
    for name in ("empty", "truncated", "text", "missing"):
        assert errors[name] and pixels[list(table["slide"]).index(name)] is None
    assert str(tmp_path / "missing.png") in errors["missing"]
    assert list(readable(table)["slide"]) == ["good1"]
    assert (table.loc[0, ["width", "height"]] == [120, 160]).all()

    write_tiles(table, tmp_path / "t.parquet", {"shard": "shard_all", "tiling": {}})
    render_contact_sheet(list(table["slide"]), pixels, tmp_path / "qc.png", title="shard_all")
    manifest = tiling_manifest([("ish", "shard_all")], [tmp_path / "t.parquet"], [tmp_path / "qc.png"])
    assert list(flagged(manifest)["slide"]) == ["empty", "truncated", "text", "missing"]
    assert set(flagged(manifest)["flags"]) == {"unreadable"} and manifest["error"].str.len().iloc[1:].gt(0).all()
    assert (tmp_path / "qc.png").stat().st_size > 0


def test_a_shard_with_no_readable_image_fails_naming_the_first(tmp_path):
    images = [i for i in bad_images(tmp_path) if i["slide"] != "good1"]
    with pytest.raises(ShardError, match=r"shard_7: none of its 4 image\(s\) can be read; the first, empty"):
        tile_shard(images, 64, "shard_7")


def test_shard_pixels_are_the_whole_image_tile(tmp_path):
    from tileprobe.slides.registry import open_slide
    from tileprobe.tiling.grid import whole_tile
    from tileprobe.tiling.read import read_tile

    write_png(tmp_path / "a.png", position_image(150, 110))
    _, pixels = tile_shard([{"slide": "a", "path": tmp_path / "a.png"}], 96)
    with open_slide(tmp_path / "a.png") as slide:
        np.testing.assert_array_equal(pixels[0], read_tile(slide, whole_tile(slide, 96).iloc[0], 96))
