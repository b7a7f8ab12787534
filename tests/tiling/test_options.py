"""Tiling options of issue 3: edge handling, objective-power fallback for mpp, artefact removal, known classes."""

import numpy as np
import pytest

from tests.support.slide_factory import box, polygon_feature, position_image, tissue_image, write_aperio, write_geojson
from tileprobe.slides.base import SlideError
from tileprobe.slides.registry import open_slide
from tileprobe.tiling.grid import TilingError, tile_slide
from tileprobe.tiling.read import read_tile

# 1000 x 700 at 0.5 µm/px with 256-px tiles: 3 x 2 whole tiles, 4 x 3 with the partial edge tiles.
W, H = 1000, 700


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    path = tmp_path_factory.mktemp("options") / "edge.svs"
    levels = write_aperio(path, position_image(W, H), mpp=0.5, compression="zlib", downsamples=(1, 4))
    return path, levels[0]


def test_edge_drop_keeps_whole_tiles_and_pad_covers_the_slide(exact):
    path, image = exact
    settings = {"mpp": 0.5, "tile_px": 256, "tissue": "none", "thumbnail_px": 250}
    with open_slide(path) as slide:
        dropped = tile_slide(slide, {**settings, "edge": "drop"}).tiles
        padded = tile_slide(slide, {**settings, "edge": "pad"}).tiles
        corner = padded[(padded["x"] == 768) & (padded["y"] == 512)].iloc[0]
        pixels = read_tile(slide, corner, 256)
    assert sorted(set(dropped["x"])) == [0, 256, 512] and sorted(set(dropped["y"])) == [0, 256]
    assert sorted(set(padded["x"])) == [0, 256, 512, 768] and sorted(set(padded["y"])) == [0, 256, 512]
    # the corner tile holds 232 x 188 px of slide; the rest reads white and counts as glass
    assert corner["tissue_fraction"] == pytest.approx(232 * 188 / 256**2, abs=0.02)
    np.testing.assert_array_equal(pixels[:188, :232], image[512:, 768:])
    assert (pixels[188:] == 255).all() and (pixels[:, 232:] == 255).all()


def test_pad_with_overlap_ends_at_the_first_tile_past_the_edge(exact):
    with open_slide(exact[0]) as slide:
        tiles = tile_slide(slide, {"mpp": 0.5, "tile_px": 256, "overlap_px": 56, "tissue": "none",
                                   "edge": "pad", "min_tissue": 0.0, "thumbnail_px": 250}).tiles
    # stride 200: x 0..800 (800 + 256 > 1000 covers the edge), y 0..600
    assert sorted(set(tiles["x"])) == [0, 200, 400, 600, 800] and sorted(set(tiles["y"])) == [0, 200, 400, 600]


def test_tile_larger_than_slide_is_one_padded_tile_with_pad(exact):
    with open_slide(exact[0]) as slide:
        with pytest.raises(SlideError, match=r"edge\.svs.*`edge: pad`"):
            tile_slide(slide, {"mpp": 1.0, "tile_px": 512, "tissue": "none"})
        tiles = tile_slide(slide, {"mpp": 1.0, "tile_px": 512, "tissue": "none", "edge": "pad"}).tiles
    assert list(zip(tiles["x"], tiles["y"], tiles["tile_px_level0"])) == [(0, 0, 1024)]


def test_objective_power_is_a_fallback_only_when_asked(tmp_path):
    path = tmp_path / "no mpp.svs"  # AppMag = 20 in the description, no MPP
    write_aperio(path, tissue_image(2048, 1536, (512, 512, 1536, 1024)), mpp=None)
    settings = {"mpp": 1.0, "tile_px": 256, "thumbnail_px": 512}
    with open_slide(path) as slide:
        assert slide.mpp is None and slide.objective_power == 20
        with pytest.raises(SlideError) as err:
            tile_slide(slide, settings)
    message = str(err.value)
    assert "no mpp.svs" in message and "`mpp` column" in message and "mpp_from_objective" in message
    with open_slide(path) as slide, pytest.warns(UserWarning, match="assuming 0.5 from its 20x objective"):
        tiles = tile_slide(slide, {**settings, "mpp_from_objective": True}).tiles
        assert slide.mpp == 0.5 and slide.mpp_source == "objective power"
    assert (tiles["tile_px_level0"] == 512).all() and sorted(set(tiles["x"])) == [512, 1024]
    with open_slide(path, mpp=0.25) as slide:  # the sheet wins over both
        tile_slide(slide, {**settings, "mpp_from_objective": True, "min_tissue": 0.2})
        assert slide.mpp == 0.25 and slide.mpp_source == "sample sheet"


def test_remove_artefacts_drops_tiles_on_pen_marks(tmp_path):
    image = tissue_image(2048, 1536, (256, 256, 1024, 1280))
    image[256:1280, 1280:1536] = (30, 70, 200)  # a thick blue marker line beside the tissue
    write_aperio(tmp_path / "pen.svs", image, mpp=0.5)
    settings = {"mpp": 0.5, "tile_px": 256, "thumbnail_px": 512}
    with open_slide(tmp_path / "pen.svs") as slide:
        with_pen = tile_slide(slide, settings).tiles
        without = tile_slide(slide, {**settings, "remove_artefacts": ["pen"]}).tiles
    assert 1280 in set(with_pen["x"])
    assert sorted(set(without["x"])) == [256, 512, 768] and len(without) == 3 * 4


def test_unknown_region_class_names_the_file_and_the_class(tmp_path, exact):
    features = [polygon_feature([box(0, 0, 500, 500)], {"label": "tumour"}),
                polygon_feature([box(500, 0, 900, 500)], {"label": "tumor"})]
    geojson = write_geojson(tmp_path / "typo.geojson", features)
    settings = {"mpp": 0.5, "tile_px": 256, "tissue": "none", "thumbnail_px": 250}
    with open_slide(exact[0]) as slide:
        with pytest.raises(SlideError, match=r"typo\.geojson.*'tumor'.*`classes`"):
            tile_slide(slide, {**settings, "classes": ["tumour", "stroma"]}, annotations=geojson)
        labels = tile_slide(slide, {**settings, "classes": ["tumour", "tumor"]}, annotations=geojson).tiles["label"]
    assert set(labels.dropna()) == {"tumour", "tumor"}


@pytest.mark.parametrize("key, value", [("edge", "wrap"), ("remove_artefacts", ["glitter"])])
def test_bad_option_names_the_key(exact, key, value):
    with open_slide(exact[0]) as slide, pytest.raises(TilingError, match=key):
        tile_slide(slide, {"mpp": 0.5, "tile_px": 256, key: value})
