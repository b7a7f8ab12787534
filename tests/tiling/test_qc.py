import numpy as np
import pytest
from PIL import Image

from tests.support.slide_factory import box, polygon_feature, tissue_image, write_aperio, write_geojson, write_png
from tileprobe.slides.registry import open_slide
from tileprobe.tiling.grid import tile_slide
from tileprobe.tiling.qc import MASK_COLOUR, UNLABELLED_COLOUR, render_qc


@pytest.fixture(scope="module")
def svs(tmp_path_factory):
    path = tmp_path_factory.mktemp("qc") / "tissue.svs"
    write_aperio(path, tissue_image(2048, 1536, (300, 200, 1700, 1300)), mpp=0.5)
    return path


def colour_count(png: np.ndarray, hex_colour: str, tolerance: int = 10) -> int:
    """Pixels within `tolerance` of a colour: tile outlines give thousands, text and legend a few hundred."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(png[..., :3].astype(int) - rgb).max(axis=-1) <= tolerance).sum())


def test_qc_png_shows_thumbnail_and_tiles(tmp_path, svs):
    with open_slide(svs) as slide:
        tiling = tile_slide(slide, {"mpp": 0.5, "tile_px": 64, "thumbnail_px": 512})
    assert 250 <= len(tiling.tiles) <= 400
    out = tmp_path / "qc" / "s1.png"
    render_qc(tiling, out, title="s1 / t64")
    assert [p.name for p in out.parent.iterdir()] == ["s1.png"]
    png = np.asarray(Image.open(out).convert("RGB"))
    assert out.stat().st_size > 10_000
    assert png.shape[1] >= 800 and 0.6 < png.shape[0] / png.shape[1] < 0.9
    assert png.std() > 20
    assert colour_count(png, UNLABELLED_COLOUR) > 5000  # ~370 tile outlines
    assert colour_count(png, MASK_COLOUR, tolerance=40) > 500


def test_qc_colours_tiles_by_label(tmp_path, svs):
    features = [polygon_feature([box(300, 200, 1000, 1300)], {"classification": {"name": "tumour"}})]
    geojson = write_geojson(tmp_path / "a.geojson", features)
    with open_slide(svs) as slide:
        tiling = tile_slide(slide, {"mpp": 2.0, "tile_px": 64, "thumbnail_px": 512}, annotations=geojson)
    render_qc(tiling, tmp_path / "labelled.png")
    png = np.asarray(Image.open(tmp_path / "labelled.png").convert("RGB"))
    assert colour_count(png, "#1f77b4") > 2000  # the first class colour: tumour tiles and region
    assert colour_count(png, UNLABELLED_COLOUR) > 2000


def test_qc_of_an_empty_tiling(tmp_path):
    write_png(tmp_path / "blank.png", np.full((300, 400, 3), 255, np.uint8))
    with open_slide(tmp_path / "blank.png", mpp=1.0) as slide, pytest.warns(UserWarning):
        tiling = tile_slide(slide, {"mpp": 1.0, "tile_px": 64})
    assert tiling.tiles.empty
    render_qc(tiling, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 5_000
