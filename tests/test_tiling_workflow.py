"""Through the real `snakemake`: a bad slide fails only its own tiling job, with its message in its log, while
the other slides are tiled; a slide without tissue is tiled empty and flagged (issue 3, points 3 and 7)."""

import pytest
import yaml
from slide_factory import tissue_image, write_aperio, write_png

from tileprobe.tiling import read_tiles
from workflow import ROOT, snakemake

pytestmark = pytest.mark.workflow


def test_one_bad_slide_fails_only_its_own_jobs(tmp_path):
    images = tmp_path / "scans dir"  # a space in the path, on purpose
    images.mkdir()
    write_aperio(images / "good.svs", tissue_image(2048, 1536, (256, 256, 1792, 1280)), mpp=0.5)
    write_aperio(images / "no mpp.svs", tissue_image(2048, 1536, (256, 256, 1792, 1280)), mpp=None)
    write_png(images / "blank.png", tissue_image(1024, 1024, (0, 0, 0, 0)))
    data = (images / "good.svs").read_bytes()
    (images / "cut.svs").write_bytes(data[: len(data) // 3])  # a copy that stopped a third of the way
    rows = ["good\tscans dir/good.svs\t\tyes", "cut\tscans dir/cut.svs\t\tyes",
            "nompp\tscans dir/no mpp.svs\t\tno", "blank\tscans dir/blank.png\t0.5\tno"]
    (tmp_path / "samples.tsv").write_text("slide\tpath\tmpp\ttumor\n" + "\n".join(rows) + "\n")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    del config["demo"]
    config.update(samples="samples.tsv", tilings={"wsi": {"mpp": 1.0, "tile_px": 128}},
                  tasks={"tumor": {"level": "slide", "label": "tumor", "kind": "binary", "tiling": "wsi",
                                   "backbones": ["noise"]}},
                  backbones={"noise": {"model": "noise:8"}})
    config.pop("selection", None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/tiles/wsi/{s}.parquet" for s in ("good", "cut", "nompp", "blank")]
    result = snakemake(tmp_path, "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", "--keep-going",
                       *targets, check=False)
    assert result.returncode != 0
    results = tmp_path / "results"
    good, meta = read_tiles(results / "tiles/wsi/good.parquet")
    assert len(good) == 6 * 4 and meta["flags"] == [] and meta["mpp_source"] == "metadata"
    blank, meta = read_tiles(results / "tiles/wsi/blank.parquet")
    assert blank.empty and meta["flags"] == ["no_tiles"] and meta["mpp_source"] == "sample sheet"
    assert "blank.png: no tile has tissue_fraction" in (results / "logs/tile/wsi/blank.log").read_text()
    for slide, message in [("cut", "cut.svs"), ("nompp", "`mpp` column")]:
        assert not (results / f"tiles/wsi/{slide}.parquet").exists()
        log = (results / f"logs/tile/wsi/{slide}.log").read_text()
        assert message in log and "Traceback" not in log
