import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support.slide_factory import (
    TISSUE,
    box,
    polygon_feature,
    position_image,
    tissue_image,
    write_aperio,
    write_geojson,
    write_png,
)
from tileprobe.slides.base import SlideError
from tileprobe.slides.registry import open_slide
from tileprobe.tiling.grid import tile_slide
from tileprobe.tiling.read import read_tile
from tileprobe.tiling.table import read_tiles, write_tiles

# 2048 x 1536 at 0.5 µm/px; 256-px tiles make an 8 x 6 grid. The tissue covers 3/4 of column 2 (x 576..), all of
# columns 3-5 and 1/4 of column 6 (..1600); 3/4 of row 1 (y 320..), rows 2-3 and 1/4 of row 4 (..1088).
WIDTH, HEIGHT = 2048, 1536
TISSUE_BOX = (576, 320, 1600, 1088)
GRID = {"mpp": 0.5, "tile_px": 256, "thumbnail_px": 512}


@pytest.fixture(scope="module")
def svs(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiling") / "tissue.svs"
    write_aperio(path, tissue_image(WIDTH, HEIGHT, TISSUE_BOX), mpp=0.5)
    return path


@pytest.fixture(scope="module")
def exact_svs(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiling") / "exact.svs"
    levels = write_aperio(path, position_image(WIDTH, HEIGHT), mpp=0.5, compression="zlib")
    return path, levels


def grid_xy(tiles):
    return list(zip(tiles["x"], tiles["y"]))


def test_keeps_exactly_the_tiles_mostly_inside_the_tissue(svs):
    with open_slide(svs) as slide:
        tiling = tile_slide(slide, GRID)
    tiles = tiling.tiles
    assert list(tiles.columns) == ["x", "y", "level", "tile_px_level0", "tissue_fraction"]
    assert [str(t) for t in tiles.dtypes] == ["int64", "int64", "int32", "int32", "float32"]
    expected = [(x, y) for y in (256, 512, 768) for x in (512, 768, 1024, 1280)]
    assert grid_xy(tiles) == expected  # also checks the y-then-x order
    assert (tiles["level"] == 0).all() and (tiles["tile_px_level0"] == 256).all()
    by_xy = dict(zip(grid_xy(tiles), tiles["tissue_fraction"]))
    assert by_xy[(768, 512)] == pytest.approx(1.0, abs=0.01)
    assert by_xy[(512, 512)] == pytest.approx(0.75, abs=0.03)  # column 2 is 3/4 tissue
    assert by_xy[(512, 256)] == pytest.approx(0.75 * 0.75, abs=0.03)
    assert tiling.thumbnail.shape == (384, 512, 3) and tiling.mask.shape == (384, 512)
    assert tiling.thumb_scale == pytest.approx(4.0)
    assert tiling.regions == []


def test_min_tissue_threshold(svs):
    with open_slide(svs) as slide:
        loose = tile_slide(slide, {**GRID, "min_tissue": 0.24}).tiles
        strict = tile_slide(slide, {**GRID, "min_tissue": 0.99}).tiles
    # column 6 x rows 2-3 and row 4 x columns 3-5 (1/4 tissue) join; 3/4 x 1/4 = 0.19 corners do not
    assert len(loose) == 12 + 2 + 3
    assert grid_xy(strict) == [(x, y) for y in (512, 768) for x in (768, 1024, 1280)]


def test_tissue_none_keeps_the_full_grid_and_overlap_adds_tiles(svs):
    with open_slide(svs) as slide:
        plain = tile_slide(slide, {**GRID, "tissue": "none"}).tiles
        overlapped = tile_slide(slide, {**GRID, "tissue": "none", "overlap_px": 128}).tiles
    assert len(plain) == 8 * 6
    assert (plain["tissue_fraction"] == 1.0).all()
    # stride 128: (2048 - 256) / 128 + 1 = 15 columns, (1536 - 256) / 128 + 1 = 11 rows; no partial edge tiles
    assert len(overlapped) == 15 * 11
    assert overlapped["x"].max() == WIDTH - 256 and overlapped["y"].max() == HEIGHT - 256


def test_coarser_target_mpp_reads_from_a_coarser_level(svs):
    with open_slide(svs) as slide:
        tiles = tile_slide(slide, {"mpp": 2.0, "tile_px": 256, "tissue": "none", "thumbnail_px": 256}).tiles
        finer = tile_slide(slide, {"mpp": 1.0, "tile_px": 256, "tissue": "none", "thumbnail_px": 256}).tiles
    assert (tiles["level"] == 1).all() and (tiles["tile_px_level0"] == 1024).all()
    assert grid_xy(tiles) == [(0, 0), (1024, 0)]
    assert (finer["level"] == 0).all() and (finer["tile_px_level0"] == 512).all()


def test_no_mpp_is_an_error_that_names_the_file_and_the_fix(tmp_path):
    write_png(tmp_path / "img.png", tissue_image(600, 400, (100, 100, 500, 300)))
    with open_slide(tmp_path / "img.png") as slide, pytest.raises(SlideError) as err:
        tile_slide(slide, GRID)
    assert "img.png" in str(err.value) and "`mpp` column" in str(err.value)
    with open_slide(tmp_path / "img.png", mpp=0.5) as slide:  # the sample sheet's mpp fixes it
        assert len(tile_slide(slide, GRID).tiles) > 0


def test_tile_larger_than_slide_is_an_error(tmp_path):
    write_png(tmp_path / "small.png", tissue_image(200, 100, (0, 0, 200, 100)))
    with open_slide(tmp_path / "small.png", mpp=1.0) as slide, pytest.raises(SlideError, match="small.png"):
        tile_slide(slide, {"mpp": 1.0, "tile_px": 150})


def test_empty_slide_gives_an_empty_table_and_a_warning(tmp_path):
    write_png(tmp_path / "blank.png", np.full((512, 512, 3), 255, np.uint8))
    with open_slide(tmp_path / "blank.png", mpp=0.5) as slide, pytest.warns(UserWarning, match="min_tissue"):
        tiles = tile_slide(slide, GRID).tiles
    assert tiles.empty and str(tiles["x"].dtype) == "int64"


def test_whole_mode_is_one_tile_at_a_coarse_level(svs, tmp_path):
    with open_slide(svs) as slide:
        tiles = tile_slide(slide, {"mode": "whole", "tile_px": 128, "thumbnail_px": 256}).tiles
    assert len(tiles) == 1
    row = tiles.iloc[0]
    assert (row.x, row.y, row.level, row.tile_px_level0) == (0, 0, 2, 2048)  # 2048 / 128 = 16: level 2
    assert row.tissue_fraction == 1.0
    write_png(tmp_path / "img.png", tissue_image(300, 200, (0, 0, 300, 200)))
    with open_slide(tmp_path / "img.png") as slide:  # no mpp needed
        assert tile_slide(slide, {"mode": "whole", "tile_px": 224}).tiles["level"].tolist() == [0]


def test_read_tile_is_the_region_at_its_level(exact_svs):
    path, levels = exact_svs
    with open_slide(path) as slide:
        tiles = tile_slide(slide, {**GRID, "tissue": "none"}).tiles
        row = next(r for r in tiles.itertuples() if (r.x, r.y) == (768, 512))
        np.testing.assert_array_equal(read_tile(slide, row, 256), levels[0][512:768, 768:1024])
        coarse = tile_slide(slide, {"mpp": 2.0, "tile_px": 128, "tissue": "none"}).tiles
        row = coarse.iloc[1]  # x 512: level 1, 128 level-1 px from (128, 0)
        assert (row.x, row.level) == (512, 1)
        np.testing.assert_array_equal(read_tile(slide, row, 128), levels[1][0:128, 128:256])


def test_read_tile_resizes_when_the_level_does_not_match(svs):
    with open_slide(svs) as slide:
        tiles = tile_slide(slide, {"mpp": 0.6, "tile_px": 100, "min_tissue": 1.0, "thumbnail_px": 512}).tiles
        assert (tiles["tile_px_level0"] == 120).all() and (tiles["level"] == 0).all()
        tile = read_tile(slide, tiles.iloc[0], 100)
    assert tile.shape == (100, 100, 3) and tile.dtype == np.uint8
    assert np.abs(tile.astype(int) - TISSUE).max() <= 8


def test_read_tile_whole_image_is_padded_square(tmp_path):
    write_png(tmp_path / "wide.png", tissue_image(300, 200, (0, 0, 300, 200)))
    with open_slide(tmp_path / "wide.png") as slide:
        row = tile_slide(slide, {"mode": "whole", "tile_px": 60}).tiles.iloc[0]
        tile = read_tile(slide, row, 60)
    assert tile.shape == (60, 60, 3)
    assert (tile[:8] == 255).all() and (tile[-8:] == 255).all()  # 50 of 300 px white above and below
    assert np.abs(tile[12:48].astype(int) - TISSUE).max() <= 2


def test_labels_from_geojson_use_the_tile_centre_and_respect_holes(tmp_path, svs):
    features = [
        # covers only the centre (128, 128) of tile (0, 0), not most of it
        polygon_feature([box(100, 100, 140, 140)], {"classification": {"name": "tumour"}}),
        # tiles (256..1024, 0) centres at y 128; a hole around the centre of tile (512, 0)
        polygon_feature([box(260, 0, 1024, 256), box(600, 100, 700, 160)], {"label": "stroma"}),
        # a point covers no area and is ignored
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [900, 900]}, "properties": {}},
    ]
    geojson = write_geojson(tmp_path / "a.geojson", features)
    with open_slide(svs) as slide:
        tiles = tile_slide(slide, {**GRID, "tissue": "none"}, annotations=geojson).tiles
    assert list(tiles.columns)[-1] == "label" and isinstance(tiles["label"].dtype, pd.StringDtype)
    labels = dict(zip(grid_xy(tiles), tiles["label"]))
    assert labels[(0, 0)] == "tumour"
    assert labels[(256, 0)] == "stroma" and labels[(768, 0)] == "stroma"
    assert labels[(512, 0)] is pd.NA  # its centre (640, 128) lies in the hole
    assert labels[(1024, 0)] is pd.NA and labels[(0, 256)] is pd.NA
    assert tiles["label"].notna().sum() == 3


def test_bare_feature_list_and_multipolygon_and_smallest_region_wins(tmp_path, svs):
    multi = {
        "type": "Feature",
        "geometry": {"type": "MultiPolygon", "coordinates": [[box(0, 0, 256, 256) + [(0, 0)]],
                                                             [box(1792, 1280, 2048, 1536) + [(1792, 1280)]]]},
        "properties": {"name": "a"},
    }
    outer = polygon_feature([box(256, 256, 1024, 1024)], {"name": "tumour"})
    inner = polygon_feature([box(500, 500, 700, 700)], {"name": "necrosis"})
    geojson = write_geojson(tmp_path / "b.json", [inner, outer, multi], collection=False)
    with open_slide(svs) as slide:
        tiling = tile_slide(slide, {**GRID, "tissue": "none"}, annotations=str(geojson))
    labels = dict(zip(grid_xy(tiling.tiles), tiling.tiles["label"]))
    assert labels[(0, 0)] == "a" and labels[(1792, 1280)] == "a"
    assert labels[(512, 512)] == "necrosis" and labels[(256, 256)] == "tumour"
    assert len(tiling.regions) == 4


def test_malformed_geojson_names_the_file(tmp_path, svs):
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [')
    with open_slide(svs) as slide, pytest.raises(SlideError, match="bad.geojson"):
        tile_slide(slide, GRID, annotations=bad)


def test_feature_without_class_names_the_feature(tmp_path, svs):
    features = [
        polygon_feature([box(0, 0, 10, 10)], {"classification": {"name": "ok"}}),
        polygon_feature([box(0, 0, 10, 10)], {"objectType": "annotation"}),
    ]
    geojson = write_geojson(tmp_path / "c.geojson", features)
    with open_slide(svs) as slide, pytest.raises(SlideError, match=r"c\.geojson.*feature 1"):
        tile_slide(slide, GRID, annotations=geojson)


def test_malformed_coordinates_name_the_feature(tmp_path, svs):
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1]]]},
               "properties": {"label": "x"}}
    geojson = write_geojson(tmp_path / "d.geojson", [feature])
    with open_slide(svs) as slide, pytest.raises(SlideError, match="feature 0"):
        tile_slide(slide, GRID, annotations=geojson)


def test_missing_annotations_point_at_the_sample_sheet(tmp_path, svs):
    with open_slide(svs) as slide, pytest.raises(SlideError, match="`annotations` column"):
        tile_slide(slide, GRID, annotations=tmp_path / "none.geojson")


def test_bad_tiling_settings_name_the_key(svs):
    with open_slide(svs) as slide:
        with pytest.raises(ValueError, match="mode"):
            tile_slide(slide, {**GRID, "mode": "strips"})
        with pytest.raises(ValueError, match="overlap_px"):
            tile_slide(slide, {**GRID, "overlap_px": 256})
        with pytest.raises(ValueError, match="mpp"):
            tile_slide(slide, {"tile_px": 256})


def test_write_read_round_trip_with_meta(tmp_path, svs):
    geojson = write_geojson(tmp_path / "a.geojson", [polygon_feature([box(0, 0, 300, 300)], {"label": "t"})])
    with open_slide(svs) as slide:
        tiles = tile_slide(slide, {**GRID, "tissue": "none"}, annotations=geojson).tiles
    meta = {"tiling": {**GRID, "name": "t256"}, "slide": "s1", "mpp": np.float64(0.5), "n": np.int64(len(tiles))}
    out = tmp_path / "tiles" / "s1.parquet"
    write_tiles(tiles, out, meta)
    assert [p.name for p in out.parent.iterdir()] == ["s1.parquet"]  # no temporary left behind
    back, back_meta = read_tiles(out)
    pd.testing.assert_frame_equal(back, tiles)
    assert back_meta == {"tiling": {**GRID, "name": "t256"}, "slide": "s1", "mpp": 0.5, "n": 48}


def test_undefined_meta_values_are_strict_json_null(tmp_path):
    """NaN in the metadata is written as null, not as JSON's invalid NaN."""
    out = tmp_path / "s1.parquet"
    write_tiles(pd.DataFrame({"x": [0], "y": [0]}), out, {"slide_mpp": float("nan"), "tiling": {"mpp": np.nan}})
    raw = pq.read_schema(out).metadata[b"tileprobe"]
    assert json.loads(raw, parse_constant=lambda name: pytest.fail(f"{name} is not strict JSON")) == {
        "slide_mpp": None, "tiling": {"mpp": None}}
    assert read_tiles(out)[1] == {"slide_mpp": None, "tiling": {"mpp": None}}
