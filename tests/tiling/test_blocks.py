"""Block reads give the same tiles as `read_tile`, in table order, from worker processes too (issue 3, point 6)."""

import numpy as np
import pytest

from tests.support.slide_factory import position_image, tissue_image, write_aperio, write_ome_tiff, write_png
from tileprobe.slides.registry import open_slide
from tileprobe.tiling.blocks import TileReader, level_pages, plan_blocks
from tileprobe.tiling.grid import tile_slide
from tileprobe.tiling.read import read_tile

# 2000 x 1500 at 0.25 µm/px: not a multiple of the 256-px scanner tiles, so blocks and tiles cross them.
W, H = 2000, 1500


def expected(path, tiles, tile_px, mpp=None):
    with open_slide(path, mpp=mpp) as slide:
        return np.stack([read_tile(slide, row, tile_px) for row in tiles.itertuples()])


def read_all(reader, batch_size=7):
    starts, parts = zip(*reader.batches(batch_size))
    assert list(starts) == list(range(0, len(reader), batch_size))  # contiguous, in table order
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def exact_svs(tmp_path_factory):
    path = tmp_path_factory.mktemp("reading") / "exact.svs"
    write_aperio(path, position_image(W, H), mpp=0.25, compression="zlib")
    return path


def tiles_of(path, **tiling):
    with open_slide(path, mpp=tiling.pop("slide_mpp", None)) as slide:
        return tile_slide(slide, {"tissue": "none", "thumbnail_px": 256, **tiling}).tiles


@pytest.mark.parametrize("tiling", [
    {"mpp": 0.25, "tile_px": 224, "overlap_px": 32},  # level 0, no resize, overlapping
    {"mpp": 0.5, "tile_px": 100, "edge": "pad"},  # level 0, resized, padded edge tiles
])
def test_block_reads_equal_read_tile_on_an_aperio_slide(exact_svs, tiling):
    tiles = tiles_of(exact_svs, **tiling)
    reader = TileReader(exact_svs, tiles, tiling["tile_px"], block_px=600)
    assert len(reader.blocks) < len(tiles) / 3  # several tiles per read
    np.testing.assert_array_equal(read_all(reader), expected(exact_svs, tiles, tiling["tile_px"]))


def test_aperio_levels_are_decoded_straight_from_the_tiff_pages(exact_svs, tmp_path):
    with open_slide(exact_svs) as slide:
        _, pages = level_pages(slide)
        assert [(p.imagewidth, p.imagelength) for p in pages] == [tuple(d) for d in slide.level_dimensions]
    write_png(tmp_path / "p.png", position_image(300, 200))
    with open_slide(tmp_path / "p.png") as slide:
        assert level_pages(slide) is None  # read through Slide.read_region


def test_ome_coarse_level_and_png_equal_read_tile(tmp_path):
    write_ome_tiff(tmp_path / "s.ome.tif", position_image(W, H), mpp=0.25)
    tiles = tiles_of(tmp_path / "s.ome.tif", mpp=1.3, tile_px=64)  # level 1 (downsample 4), resized
    assert (tiles["level"] == 1).all()
    got = read_all(TileReader(tmp_path / "s.ome.tif", tiles, 64, block_px=300))
    np.testing.assert_array_equal(got, expected(tmp_path / "s.ome.tif", tiles, 64))
    write_png(tmp_path / "p.png", position_image(700, 500))
    tiles = tiles_of(tmp_path / "p.png", mpp=1.0, tile_px=128, slide_mpp=1.0)
    got = read_all(TileReader(tmp_path / "p.png", tiles, 128, mpp=1.0, block_px=300), batch_size=4)
    np.testing.assert_array_equal(got, expected(tmp_path / "p.png", tiles, 128, mpp=1.0))


@pytest.mark.parametrize("compression", ["jpeg", "jp2k"])
def test_jpeg_and_jpeg2000_tiles_match_openslide_decoding(tmp_path, compression):
    write_aperio(tmp_path / "j.svs", tissue_image(W, H, (300, 200, 1700, 1300)), mpp=0.25, compression=compression)
    with open_slide(tmp_path / "j.svs") as slide:
        assert level_pages(slide) is not None  # decoded from the TIFF pages, not by OpenSlide
    tiles = tiles_of(tmp_path / "j.svs", mpp=0.25, tile_px=256)
    got = read_all(TileReader(tmp_path / "j.svs", tiles, 256))
    assert np.abs(got.astype(int) - expected(tmp_path / "j.svs", tiles, 256)).max() <= 2


def test_worker_processes_give_the_same_tiles(exact_svs):
    tiles = tiles_of(exact_svs, mpp=0.5, tile_px=64)
    reader = TileReader(exact_svs, tiles, 64, workers=2, block_px=300)
    np.testing.assert_array_equal(read_all(reader, batch_size=50), expected(exact_svs, tiles, 64))


def test_whole_image_tiles_are_read_alone(tmp_path):
    write_png(tmp_path / "w.png", position_image(300, 200))
    with open_slide(tmp_path / "w.png") as slide:
        tiles = tile_slide(slide, {"mode": "whole", "tile_px": 60}).tiles
    blocks = plan_blocks(tiles, (300, 200), (1.0,))
    assert len(blocks) == 1 and blocks[0].whole
    np.testing.assert_array_equal(read_all(TileReader(tmp_path / "w.png", tiles, 60)),
                                  expected(tmp_path / "w.png", tiles, 60))


def tag_with_rows(rows, pixels):
    """A transform: each tile beside a plane holding its row number (mod 256)."""
    tags = np.broadcast_to((rows % 256).astype(np.uint8)[:, None, None, None], pixels.shape)
    return np.stack([pixels, tags], axis=1)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_transform_runs_on_each_block_with_the_tiles_row_numbers(exact_svs, workers):
    """What extraction makes its views with: run where the block is read, given each tile's row in the table."""
    tiles = tiles_of(exact_svs, mpp=0.5, tile_px=64)
    reader = TileReader(exact_svs, tiles, 64, workers=workers, block_px=300, transform=tag_with_rows)
    got = read_all(reader, batch_size=50)
    assert got.shape == (len(tiles), 2, 64, 64, 3)
    np.testing.assert_array_equal(got[:, 0], expected(exact_svs, tiles, 64))
    np.testing.assert_array_equal(got[:, 1, 0, 0, 0], np.arange(len(tiles)) % 256)


def test_workers_die_with_a_main_process_killed_by_sigkill(exact_svs, tmp_path):
    """A job killed with SIGKILL (OOM killer, time limit) cannot stop its pool: its readers must not live on,
    holding the job's output pipe open (snakemake then waits for them forever)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import os, sys, time, multiprocessing as mp; from tileprobe.tiling.blocks import TileReader; "
        "from tests.tiling.test_blocks import tiles_of; "
        "path = sys.argv[1]; reader = TileReader(path, tiles_of(path, mpp=0.5, tile_px=64), 64, workers=2, "
        "block_px=300); batches = reader.batches(10); next(batches); "
        "print(*[p.pid for p in mp.active_children()], flush=True); time.sleep(120)"
    )
    main = subprocess.Popen([sys.executable, "-c", code, str(exact_svs)], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    workers = [int(p) for p in main.stdout.readline().split()]
    assert len(workers) == 2
    os.kill(main.pid, signal.SIGKILL)
    main.wait()

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as f:  # an exited child not yet reaped by init is gone too
            return f.read().split(")")[-1].split()[0] != "Z"

    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)
