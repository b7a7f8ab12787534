import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import zarr
from PIL import Image

from tests.support.slide_factory import position_image, write_aperio
from tileprobe.embed.extract import embed_slide, model_batch
from tileprobe.embed.load import load_backbone
from tileprobe.embed.store import is_complete, load_layer, read_provenance
from tileprobe.embed.views import make_views
from tileprobe.slides.base import Slide, SlideError
from tileprobe.slides.registry import open_slide
from tileprobe.tiling.grid import tile_slide, tile_table
from tileprobe.tiling.read import read_tile
from tileprobe.tiling.table import read_tiles, write_tiles

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


def test_views_and_layers_in_one_pass_are_deterministic(tmp_path, slide):
    """views: 3 and two layers: (views, tiles, dim) per layer, view 0 = the plain tile, the same bytes every run
    of the same config; another thread count changes only float rounding (torch's reduction order)."""
    tiles = grid_table(tmp_path)
    spec = {**SPEC, "layers": ["final", "layer2"]}
    runs = []
    for i, threads in enumerate((2, 2, 1)):
        out = tmp_path / f"v{i}.zarr"
        embed_slide(slide, tiles, TILE, spec, out, threads=threads, views=3)
        runs.append({layer: load_layer(out, layer) for layer in ("final", "layer2")})
    first = runs[0]
    assert first["final"].shape == (3, 6, 96) and first["layer2"].shape[:2] == (3, 6)
    for layer in first:
        np.testing.assert_array_equal(runs[1][layer], first[layer])
        np.testing.assert_allclose(runs[2][layer], first[layer], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(first["final"][0], direct_embeddings(slide, tiles, TILE), rtol=1e-5, atol=1e-5)
    assert not np.allclose(first["final"][1], first["final"][0], atol=1e-3)
    assert not np.allclose(first["final"][1], first["final"][2], atol=1e-3)
    prov = read_provenance(tmp_path / "v0.zarr")
    assert prov["views"] == 3 and set(prov["view_augmentations"]) == {"flip", "rot90", "colour", "hed"}
    assert prov["layers"] == ["final", "layer2"]


def test_many_slides_load_the_model_once(tmp_path, slide, monkeypatch):
    from tileprobe.embed import extract

    loads = []
    real = extract.load_backbone
    monkeypatch.setattr(extract, "load_backbone", lambda *a, **k: loads.append(1) or real(*a, **k))
    tiles_a, tiles_b = grid_table(tmp_path, name="a"), grid_table(tmp_path, n_cols=2, n_rows=1, name="b")
    jobs = [extract.SlideJob(slide, tiles_a, tmp_path / "a.zarr"), extract.SlideJob(slide, tiles_b, tmp_path / "b.zarr")]
    extract.embed_slides(jobs, TILE, SPEC)
    assert len(loads) == 1
    np.testing.assert_allclose(load_layer(tmp_path / "b.zarr", "final")[0], direct_embeddings(slide, tiles_b, TILE),
                               rtol=1e-5, atol=1e-5)
    assert load_layer(tmp_path / "a.zarr", "final").shape == (1, 6, 96)


@pytest.mark.parametrize("threads", [1, 2])  # 2: reader processes, stopped with the job
def test_a_job_killed_mid_slide_leaves_no_store(tmp_path, slide, threads):
    from tileprobe.embed import registry as backbones

    @backbones.register_family("dies")
    def build(spec, input_px, device):
        calls = []

        def forward(x):
            calls.append(1)
            if len(calls) > 2:  # the probe batch and the first real batch succeed
                raise KeyboardInterrupt("killed")
            return {"final": x.mean(dim=(2, 3))}

        return backbones.Backbone(name=spec["model"], forward=forward, layers=["final"], input_px=input_px,
                                  mean=(0, 0, 0), std=(1, 1, 1), batch_size=2, dtype="float32", device=device)

    try:
        with pytest.raises(KeyboardInterrupt):
            embed_slide(slide, grid_table(tmp_path), TILE, {"model": "dies:x", "batch_size": 2}, tmp_path / "k.zarr",
                        threads=threads)
    finally:
        backbones.unregister_family("dies")
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".zarr" or ".tmp" in p.name]


def test_batches_go_to_the_model_tile_by_tile_with_their_views_and_channels_last():
    pixels = np.random.default_rng(0).integers(0, 256, (4, 3, TILE, TILE, 3), dtype=np.uint8)  # 4 tiles x 3 views
    batch = model_batch(pixels, torch.device("cpu"))
    assert batch.shape == (12, TILE, TILE, 3) and not batch.is_pinned()  # pinned only where a GPU copies it
    np.testing.assert_array_equal(batch[2 * 3 + 1].numpy(), pixels[2, 1])  # tile 2, view 1
    x = load_backbone(SPEC, TILE).preprocess(batch)
    assert x.is_contiguous(memory_format=torch.channels_last) and x.shape == (12, 3, TILE, TILE)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs CUDA")
def test_batches_for_a_gpu_are_pinned():
    assert model_batch(np.zeros((2, TILE, TILE, 3), np.uint8), torch.device("cuda")).is_pinned()


@pytest.fixture(scope="module")
def aperio(tmp_path_factory):
    """A real Aperio-style pyramid, exact pixels (zlib), 0.25 µm/px; at 0.5 µm/px its tiles are 96-px squares
    of level 0 resized to 48 px, 27 x 21 of them in two blocks of the block reader, side by side."""
    path = tmp_path_factory.mktemp("aperio") / "slide.svs"
    write_aperio(path, position_image(2600, 2100), mpp=0.25, compression="zlib")
    with open_slide(path) as s:
        tiles = tile_slide(s, {"tissue": "none", "thumbnail_px": 256, "mpp": 0.5, "tile_px": 48}).tiles
    table = path.with_suffix(".parquet")
    write_tiles(tiles, table, {})
    return path, table


def test_reader_processes_give_read_tile_pixels_and_their_views(tmp_path, aperio):
    """threads: 2 reads through two reader processes, each batch cut from both blocks: view 0 of the store is
    the backbone on `read_tile`'s pixels, view 1 on `make_views` of them seeded by the tile's row, as before."""
    slide, table = aperio
    out = tmp_path / "s.zarr"
    embed_slide(slide, table, 48, SPEC, out, threads=2, views=2, view_seed=7)
    tiles, _ = read_tiles(table)
    with open_slide(slide) as s:
        pixels = np.stack([read_tile(s, row, 48) for row in tiles.itertuples(index=False)])
    views = np.stack([make_views(tile, 2, 7, i)[1] for i, tile in enumerate(pixels)])
    backbone = load_backbone(SPEC, 48)
    stored = load_layer(out, "final")
    assert stored.shape == (2, len(tiles), 96) and len(tiles) == 27 * 21
    for view, expected in enumerate((pixels, views)):
        np.testing.assert_allclose(stored[view], backbone.embed(expected)["final"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(zarr.open_group(out, mode="r")["x"][...], tiles["x"])


def test_extraction_reads_a_block_of_tiles_at_a_time(tmp_path, aperio, monkeypatch):
    """One region read per block of neighbouring tiles, not one per tile (counted in-process: one thread on a
    CPU reads in the job's own process)."""
    from tileprobe.embed import extract

    slide, table = aperio
    with open_slide(slide) as s:
        cls = type(s)
    reads = []
    for owner, name in ((Slide, "read_region"), (cls, "read_level")):
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda self, *a, real=real, name=name: reads.append(name) or real(self, *a))
    extract.embed_slides([extract.SlideJob(slide, table, tmp_path / "s.zarr")], 48, SPEC, threads=1, device="cpu")
    assert reads == ["read_level"] * 2  # 567 tiles, two blocks, TIFF tiles decoded straight from the pages


def test_a_reader_process_error_reaches_the_user_with_its_own_message(tmp_path):
    """Also where exceptions pickle with their chain (tblib, installed by dask.distributed): the worker's error
    must not carry the codec's exception, which cannot be rebuilt here and would break the pool."""
    pytest.importorskip("tblib.pickling_support").install()
    path = tmp_path / "damaged.svs"
    write_aperio(path, position_image(1024, 768), mpp=0.25, compression="zlib")
    with tifffile.TiffFile(path) as tif:  # zero one scanner tile of level 0: the slide opens, its pixels do not
        offset, count = tif.pages[0].dataoffsets[5], tif.pages[0].databytecounts[5]
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\0" * count)
    tiles = tmp_path / "tiles.parquet"
    write_tiles(tile_table([0, 256], [0, 256], 0, 256, [1.0, 1.0]), tiles, {})  # the second on the zeroed tile
    with pytest.raises(SlideError, match=r"^cannot read pixels of .*damaged\.svs.*the file may be damaged$") as err:
        embed_slide(path, tiles, TILE, SPEC, tmp_path / "d.zarr", threads=2)
    assert err.value.__cause__ is None and err.value.__context__ is None  # no worker traceback to wade through
    assert not (tmp_path / "d.zarr").exists()


def test_embedding_caps_torch_and_blas_threads_and_restores_torch(tmp_path, slide, monkeypatch):
    """Embedding runs under the same thread limit as head training: a job given one core uses one."""
    from threadpoolctl import threadpool_info

    from tileprobe.embed import extract

    seen = {}

    def record(backbone, job, *args):
        seen["torch"] = torch.get_num_threads()
        seen["pools"] = {pool["num_threads"] for pool in threadpool_info()}
        return job.out_store

    monkeypatch.setattr(extract, "_embed", record)
    before = torch.get_num_threads()
    embed_slide(slide, grid_table(tmp_path), TILE, SPEC, tmp_path / "s.zarr", threads=1)
    assert seen == {"torch": 1, "pools": {1}}
    assert torch.get_num_threads() == before
