import numpy as np
import pytest

from tests.support.slide_factory import (
    TISSUE,
    position_image,
    tissue_image,
    write_aperio,
    write_plain_tiff,
    write_png,
)
from tileprobe.slides import base as slides
from tileprobe.slides.base import SlideError, best_level
from tileprobe.slides.openslide_reader import OpenSlideSlide
from tileprobe.slides.pillow_reader import PillowSlide
from tileprobe.slides.registry import open_slide
from tileprobe.slides.tifffile_reader import TiffFileSlide


@pytest.fixture(scope="module")
def exact_svs(tmp_path_factory):
    """A lossless Aperio pyramid of a position-coded image, so pixels can be compared exactly."""
    path = tmp_path_factory.mktemp("slides") / "exact.svs"
    levels = write_aperio(path, position_image(1024, 768), mpp=0.5, compression="zlib")
    return path, levels


def test_aperio_dimensions_levels_and_mpp(exact_svs):
    path, _ = exact_svs
    with open_slide(path) as slide:
        assert isinstance(slide, OpenSlideSlide)
        assert slide.dimensions == (1024, 768)
        assert slide.level_count == 3
        assert slide.level_dimensions == ((1024, 768), (256, 192), (64, 48))
        assert slide.level_downsamples == pytest.approx((1.0, 4.0, 16.0))
        assert slide.mpp == pytest.approx(0.5)


def test_mpp_argument_overrides_metadata(exact_svs):
    with open_slide(exact_svs[0], mpp=0.4) as slide:
        assert slide.mpp == 0.4 and slide.mpp_source == "sample sheet"


@pytest.mark.parametrize("kind, make", [
    ("aperio", lambda p: write_aperio(p / "s.svs", position_image(256, 256), mpp=0.5)),
    ("plain tiff", lambda p: write_plain_tiff(p / "s.tif", position_image(256, 256), pixels_per_cm=20000)),
])
def test_a_sheet_mpp_far_from_the_files_own_warns_naming_the_slide(tmp_path, kind, make):
    make(tmp_path)
    [path] = tmp_path.iterdir()
    with pytest.warns(UserWarning, match=rf"{path.name}: the sample sheet says 2 µm/px, 4x the file's own 0.5 "
                                         r"µm/px.*`mpp` cell"):
        with open_slide(path, mpp=2.0) as slide:
            assert slide.mpp == 2.0


def test_blank_mpp_means_metadata_and_bad_mpp_is_an_error(exact_svs):
    with open_slide(exact_svs[0], mpp=float("nan")) as slide:
        assert slide.mpp == pytest.approx(0.5)
    with pytest.raises(SlideError, match="mpp"):
        open_slide(exact_svs[0], mpp=-1)


def test_read_region_is_pixel_exact_at_every_level(exact_svs):
    path, levels = exact_svs
    image = levels[0]
    with open_slide(path) as slide:
        np.testing.assert_array_equal(slide.read_region(300, 200, 0, 50, 40), image[200:240, 300:350])
        # level-1 region whose top-left is (400, 100) in level-0 px = (100, 25) in level-1 px
        np.testing.assert_array_equal(slide.read_region(400, 100, 1, 30, 20), levels[1][25:45, 100:130])
        region = slide.read_region(0, 0, 2, 64, 48)
        assert region.dtype == np.uint8 and region.shape == (48, 64, 3)
        np.testing.assert_array_equal(region, levels[2])


def test_read_region_outside_the_slide_is_white(exact_svs):
    path, levels = exact_svs
    with open_slide(path) as slide:
        region = slide.read_region(1000, 760, 0, 40, 20)
    np.testing.assert_array_equal(region[:8, :24], levels[0][760:768, 1000:1024])
    assert (region[8:] == 255).all() and (region[:, 24:] == 255).all()


def test_jpeg_aperio_pixels_within_jpeg_tolerance(tmp_path):
    image = tissue_image(1024, 768, (256, 256, 768, 512))
    write_aperio(tmp_path / "s.svs", image, compression="jpeg")
    with open_slide(tmp_path / "s.svs") as slide:
        region = slide.read_region(300, 300, 0, 64, 64)  # well inside the rectangle
        background = slide.read_region(0, 0, 0, 64, 64)
    assert np.abs(region.astype(int) - TISSUE).max() <= 8
    assert background.min() >= 247


def test_thumbnail_keeps_aspect_and_content(exact_svs, tmp_path):
    image = tissue_image(1024, 768, (512, 0, 1024, 768))
    write_aperio(tmp_path / "half.svs", image, compression="zlib")
    with open_slide(tmp_path / "half.svs") as slide:
        thumb = slide.thumbnail(100)
    assert thumb.shape == (75, 100, 3) and thumb.dtype == np.uint8
    assert (thumb[:, :45] == 255).all()
    assert np.abs(thumb[:, 55:].astype(int) - TISSUE).max() <= 2


def test_thumbnail_read_in_bands_matches_one_piece(exact_svs, monkeypatch):
    with open_slide(exact_svs[0]) as slide:
        whole = [slide.thumbnail(300), slide.thumbnail(100)]  # from level 0 (reduced by 3) and level 1 (by 2)
        monkeypatch.setattr(slides, "_THUMBNAIL_BAND_PX", 1024 * 31)  # level 0: 30-row bands; level 1: 124
        banded = [slide.thumbnail(300), slide.thumbnail(100)]
    assert [b.shape for b in banded] == [(225, 300, 3), (75, 100, 3)]
    for b, w in zip(banded, whole):
        np.testing.assert_array_equal(b, w)


def test_thumbnail_never_enlarges(tmp_path):
    write_png(tmp_path / "small.png", tissue_image(60, 40, (0, 0, 30, 40)))
    with open_slide(tmp_path / "small.png") as slide:
        assert slide.thumbnail(2048).shape == (40, 60, 3)


def test_png_is_read_by_pillow_with_single_level(tmp_path):
    image = position_image(300, 200)
    write_png(tmp_path / "p.png", image)
    with open_slide(tmp_path / "p.png") as slide:
        assert isinstance(slide, PillowSlide)
        assert slide.dimensions == (300, 200)
        assert slide.level_count == 1 and slide.level_downsamples == (1.0,)
        assert slide.mpp is None
        np.testing.assert_array_equal(slide.read_region(10, 20, 0, 30, 40), image[20:60, 10:40])
        outside = slide.read_region(290, 190, 0, 20, 20)
    np.testing.assert_array_equal(outside[:10, :10], image[190:, 290:])
    assert (outside[10:] == 255).all() and (outside[:, 10:] == 255).all()
    with open_slide(tmp_path / "p.png", mpp=2.0) as slide:
        assert slide.mpp == 2.0


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 5:, 3] = 255  # left half fully transparent
    write_png(tmp_path / "a.png", rgba)
    with open_slide(tmp_path / "a.png") as slide:
        region = slide.read_region(0, 0, 0, 10, 10)
    assert (region[:, :5] == 255).all()
    np.testing.assert_array_equal(region[0, 7], (200, 0, 0))


def test_plain_tiff_resolution_tags_give_mpp(tmp_path):
    write_plain_tiff(tmp_path / "r.tif", position_image(64, 32), pixels_per_cm=20000)  # 0.5 µm per pixel
    write_plain_tiff(tmp_path / "n.tif", position_image(64, 32))
    with open_slide(tmp_path / "r.tif") as slide:
        assert isinstance(slide, TiffFileSlide)  # stripped TIFFs: tifffile, strip by strip (test_slides_formats)
        assert slide.mpp == pytest.approx(0.5) and slide.mpp_source == "metadata"
    with open_slide(tmp_path / "n.tif") as slide:
        assert slide.mpp is None


def test_missing_file_names_it_and_the_sample_sheet(tmp_path):
    missing = tmp_path / "nope.svs"
    with pytest.raises(SlideError, match="not found") as err:
        open_slide(missing)
    assert str(missing) in str(err.value) and "`path` column" in str(err.value)


@pytest.mark.parametrize("content", [b"II*\x00" + b"\x00" * 200, b"this is not an image", b""])
def test_corrupt_file_names_it(tmp_path, content):
    bad = tmp_path / "bad.svs"
    bad.write_bytes(content)
    with pytest.raises(SlideError) as err:
        open_slide(bad)
    assert str(bad) in str(err.value)


def test_truncated_png_fails_with_slide_error_on_read(tmp_path):
    write_png(tmp_path / "t.png", position_image(256, 256))
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(SlideError, match="t.png"):
        with open_slide(tmp_path / "t.png") as slide:
            slide.read_region(0, 0, 0, 10, 10)


def test_best_level(exact_svs):
    with open_slide(exact_svs[0]) as slide:
        assert best_level(slide, 1.0) == 0
        assert best_level(slide, 3.9) == 0
        assert best_level(slide, 3.99) == 1  # within tolerance of 4
        assert best_level(slide, 4.0) == 1
        assert best_level(slide, 15.0) == 1
        assert best_level(slide, 100.0) == 2
        assert best_level(slide, 0.5) == 0


def test_read_region_rejects_bad_level(exact_svs):
    with open_slide(exact_svs[0]) as slide, pytest.raises(ValueError, match="level 5"):
        slide.read_region(0, 0, 5, 10, 10)
