"""Each format the tests can write goes to the right backend and comes back as written (issue 3, points 1, 8).

Formats no writer exists for offline (Hamamatsu NDPI, MIRAX, Leica SCN, Philips TIFF, Ventana) go to OpenSlide by
the same dispatch as the Aperio, generic TIFF and DICOM slides here.
"""

import numpy as np
import pytest
import tifffile

from tests.support.slide_factory import (
    TISSUE,
    position_image,
    tissue_image,
    write_aperio,
    write_dicom,
    write_generic_tiff,
    write_ome_tiff,
    write_plain_tiff,
)
from tileprobe.slides.base import SlideError
from tileprobe.slides.openslide_reader import OpenSlideSlide
from tileprobe.slides.registry import open_slide
from tileprobe.slides.tifffile_reader import TiffFileSlide
from tileprobe.tiling.grid import tile_slide


def test_aperio_jpeg2000_tiles(tmp_path):
    image = tissue_image(1024, 768, (256, 256, 768, 512))
    write_aperio(tmp_path / "j2k.svs", image, compression="jp2k")
    with open_slide(tmp_path / "j2k.svs") as slide:
        assert isinstance(slide, OpenSlideSlide) and slide.format == "aperio"
        assert slide.level_dimensions == ((1024, 768), (256, 192), (64, 48))
        assert slide.mpp == pytest.approx(0.5) and slide.objective_power == 20
        inside = slide.read_region(300, 300, 0, 64, 64)
        assert np.abs(inside.astype(int) - TISSUE).max() <= 3
        assert slide.read_region(0, 0, 0, 64, 64).min() >= 250


def test_generic_tiled_pyramid_with_resolution_tags(tmp_path):
    path = tmp_path / "generic.tif"
    levels = write_generic_tiff(path, position_image(1024, 768), pixels_per_cm=40000, compression="zlib")
    with open_slide(path) as slide:
        assert isinstance(slide, OpenSlideSlide) and slide.format == "generic-tiff"
        assert slide.level_dimensions == ((1024, 768), (256, 192))
        assert slide.mpp == pytest.approx(0.25)
        np.testing.assert_array_equal(slide.read_region(200, 100, 0, 300, 200), levels[0][100:300, 200:500])


def test_dicom_wsi_through_openslide(tmp_path):
    """A DICOM VL Whole Slide Microscopy series (one file per level): any file of it opens the slide."""
    levels = write_dicom(tmp_path / "series", position_image(1000, 700), mpp=0.5)
    with open_slide(tmp_path / "series/level1.dcm") as slide:
        assert isinstance(slide, OpenSlideSlide) and slide.format == "dicom"
        assert slide.level_dimensions == ((1000, 700), (500, 350)) and slide.level_downsamples == (1.0, 2.0)
        assert slide.mpp == pytest.approx(0.5)  # from the pixel spacing, in mm in DICOM
        # across frame boundaries at both levels; level-1 region at level-0 (400, 100) = level-1 (200, 50)
        np.testing.assert_array_equal(slide.read_region(200, 230, 0, 300, 60), levels[0][230:290, 200:500])
        np.testing.assert_array_equal(slide.read_region(400, 100, 1, 150, 30), levels[1][50:80, 200:350])
    write_dicom(tmp_path / "tissue", tissue_image(1024, 1024, (256, 256, 768, 768)), mpp=0.5)
    with open_slide(tmp_path / "tissue/level0.dcm") as slide:
        tiles = tile_slide(slide, {"mpp": 1.0, "tile_px": 128, "thumbnail_px": 512}).tiles
    assert (tiles["level"] == 1).all() and sorted(zip(tiles["x"], tiles["y"])) == [
        (x, y) for x in (256, 512) for y in (256, 512)]


def test_ome_tiff_pyramid_from_subifds_with_ome_mpp(tmp_path):
    path = tmp_path / "slide.ome.tif"
    levels = write_ome_tiff(path, position_image(1024, 768), mpp=0.25, magnification=40)
    with open_slide(path) as slide:  # OpenSlide would read it as a one-level generic TIFF without mpp
        assert isinstance(slide, TiffFileSlide) and slide.format == "ome-tiff"
        assert slide.level_dimensions == ((1024, 768), (256, 192))
        assert slide.level_downsamples == (1.0, 4.0)
        assert slide.mpp == pytest.approx(0.25) and slide.objective_power == 40
        # crosses tile boundaries at both levels; level-1 region at level-0 (400, 100) = level-1 (100, 25)
        np.testing.assert_array_equal(slide.read_region(200, 230, 0, 300, 60), levels[0][230:290, 200:500])
        np.testing.assert_array_equal(slide.read_region(400, 100, 1, 150, 30), levels[1][25:55, 100:250])
        edge = slide.read_region(1000, 700, 0, 50, 100)
    np.testing.assert_array_equal(edge[:68, :24], levels[0][700:, 1000:])
    assert (edge[68:] == 255).all() and (edge[:, 24:] == 255).all()


def test_ome_tiff_tiles_like_any_slide(tmp_path):
    path = tmp_path / "t.ome.tif"
    write_ome_tiff(path, tissue_image(2048, 1536, (512, 512, 1536, 1024)), mpp=0.5)
    with open_slide(path) as slide:
        tiles = tile_slide(slide, {"mpp": 2.0, "tile_px": 128, "thumbnail_px": 512}).tiles
    assert (tiles["level"] == 1).all() and (tiles["tile_px_level0"] == 512).all()
    assert sorted(zip(tiles["x"], tiles["y"])) == [(512, 512), (1024, 512)]


def test_stripped_tiff_reads_only_the_strips_it_needs(tmp_path):
    """A big non-pyramidal TIFF is never decoded whole: with its last strips destroyed, the top still reads."""
    image = position_image(512, 4096)
    path = tmp_path / "big plain.tif"
    write_plain_tiff(path, image, rowsperstrip=64, compression="zlib", pixels_per_cm=20000)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        last_offset, last_count = page.dataoffsets[-1], page.databytecounts[-1]
    with open(path, "r+b") as f:  # overwrite the last strip's deflate stream with garbage
        f.seek(last_offset)
        f.write(b"\xff" * last_count)
    with open_slide(path) as slide:
        assert isinstance(slide, TiffFileSlide) and slide.level_count == 1 and slide.mpp == pytest.approx(0.5)
        np.testing.assert_array_equal(slide.read_region(100, 60, 0, 200, 300), image[60:360, 100:300])
        with pytest.raises(SlideError, match="big plain.tif"):
            slide.read_region(0, 4090, 0, 10, 6)


def test_greyscale_and_16_bit_tiffs_become_rgb(tmp_path):
    grey = (np.arange(64 * 32).reshape(32, 64) % 256).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "g16.tif", grey, photometric="minisblack")
    with open_slide(tmp_path / "g16.tif") as slide:
        region = slide.read_region(0, 0, 0, 64, 32)
    assert region.shape == (32, 64, 3) and region.dtype == np.uint8
    np.testing.assert_array_equal(region[..., 1], (grey >> 8).astype(np.uint8))


def test_multichannel_ome_tiff_says_what_to_export(tmp_path):
    path = tmp_path / "fluo.ome.tif"
    tifffile.imwrite(path, np.zeros((5, 64, 64), np.uint16), ome=True, metadata={"axes": "CYX"})
    with pytest.raises(SlideError, match=r"fluo\.ome\.tif.*RGB"):
        open_slide(path)


@pytest.mark.parametrize("name", ["dir with spaces/slide 1.svs", "präparat/schnitt_ä_µ.svs"])
def test_paths_with_spaces_and_non_ascii(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir()
    write_aperio(path, tissue_image(1024, 768, (256, 256, 768, 512)), mpp=0.5)
    with open_slide(path) as slide:
        assert isinstance(slide, OpenSlideSlide)
        tiles = tile_slide(slide, {"mpp": 0.5, "tile_px": 256, "thumbnail_px": 256}).tiles
    assert sorted(zip(tiles["x"], tiles["y"])) == [(256, 256), (512, 256)]


def test_unsupported_format_names_the_file(tmp_path):
    path = tmp_path / "scan.vsi"  # Olympus VSI: neither OpenSlide nor Pillow reads it
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(SlideError, match=r"scan\.vsi.*neither OpenSlide nor Pillow"):
        open_slide(path)


def test_truncated_slide_says_so(tmp_path):
    write_aperio(tmp_path / "whole.svs", tissue_image(1024, 768, (256, 256, 768, 512)), mpp=0.5)
    data = (tmp_path / "whole.svs").read_bytes()
    (tmp_path / "cut.svs").write_bytes(data[: len(data) // 3])
    with pytest.raises(SlideError, match=r"cut\.svs is truncated.*copy it again"):
        open_slide(tmp_path / "cut.svs")


def test_jpeg_image_with_and_without_a_density(tmp_path):
    from PIL import Image

    image = tissue_image(300, 200, (50, 50, 250, 150))
    Image.fromarray(image).save(tmp_path / "scope.jpg", quality=95, dpi=(50800, 50800))  # 0.5 µm per pixel
    Image.fromarray(image).save(tmp_path / "photo.jpg", quality=95)  # Pillow writes no density: 72 dpi
    with open_slide(tmp_path / "scope.jpg") as slide:
        assert slide.format == "image (jpeg)" and slide.mpp == pytest.approx(0.5, rel=1e-3)
        assert np.abs(slide.read_region(100, 80, 0, 20, 20).astype(int) - TISSUE).max() <= 6
    with open_slide(tmp_path / "photo.jpg") as slide:
        assert slide.mpp is None
