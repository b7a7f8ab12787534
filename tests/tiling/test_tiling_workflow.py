"""Through the real `snakemake`: a bad slide fails only its own tiling job, with its message in its log, while
the other slides are tiled; a slide without tissue is tiled empty and flagged (issue 3, points 3 and 7)."""

import pytest
import yaml

from tests.support.runner import ROOT, snakemake
from tests.support.slide_factory import tissue_image, write_aperio, write_png
from tileprobe.tiling.table import read_tiles

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


def test_slide_without_tiles_is_listed_in_the_tiling_manifest_and_the_report(tmp_path):
    """Issue 3, point 3: the empty slide is flagged after tiling, listed with its QC picture in the summary, and
    the task skips it with a warning that names it, instead of failing or silently shrinking."""
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for i in range(6):
        write_png(images / f"s{i}.png", tissue_image(1024, 1024, (128, 128, 896, 896)))
        rows.append(f"s{i}\timages/s{i}.png\t0.5\tp{i}\t{'yes' if i % 2 else 'no'}")
    write_png(images / "blank.png", tissue_image(1024, 1024, (0, 0, 0, 0)))
    rows.append("blank\timages/blank.png\t0.5\tp9\tyes")
    (tmp_path / "samples.tsv").write_text("slide\tpath\tmpp\tpatient\ttumor\n" + "\n".join(rows) + "\n")
    config = {"results": "results", "samples": "samples.tsv", "tilings": {"wsi": {"mpp": 1.0, "tile_px": 128}},
              "backbones": {"noise": {"model": "noise:8"}},
              "tasks": {"tumor": {"level": "slide", "label": "tumor", "kind": "binary", "tiling": "wsi",
                                  "backbones": ["noise"], "heads": ["meanpool"]}},
              "evaluation": {"folds": 2, "repeats": 1, "seed": 0, "bootstrap": 20}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", "results/report/summary.md")

    results = tmp_path / "results"
    import pandas as pd

    manifest = pd.read_parquet(results / "tiling_manifest.parquet").set_index("slide")
    assert manifest.loc["blank", "flags"] == "no_tiles" and manifest.loc["blank", "n_tiles"] == 0
    assert (manifest.drop(index="blank")["flags"] == "").all() and (manifest.drop(index="blank")["n_tiles"] > 0).all()
    assert manifest.loc["blank", "qc"].endswith("qc/wsi/blank.png")
    summary = (results / "report/summary.md").read_text()
    assert "7 tiled (wsi: 7); 1 flagged." in summary
    assert "| wsi | blank | 0 | no_tiles | [../qc/wsi/blank.png](../qc/wsi/blank.png) |" in summary
    assert (results / "report" / "../qc/wsi/blank.png").is_file()
    assert "blank" in (results / "report/summary.html").read_text()
    head_log = (results / "logs/head/tumor/noise/final/none/meanpool.log").read_text()
    assert "skipped 1 slide(s) with zero tiles" in head_log and "blank" in head_log


def _jobs(workdir, config, target):
    out = snakemake(workdir, "--configfile", str(config), "-n", "--cores", "1", target).stdout
    return sorted(line.split("shard=")[1].strip() for line in out.splitlines() if "wildcards:" in line and "shard=" in line)


def test_adding_images_to_a_collection_retiles_only_the_shards_they_land_in(tmp_path):
    """Issue 13, point 1, through the real `snakemake`: 40 images in shards of at most 8; five more images
    rerun only the shards that hold them (their names and members unchanged elsewhere)."""
    from tests.support.tiny_project import write_config, write_images, write_sheet
    from tileprobe.tiling.shards import assign_shards

    rows = write_images(tmp_path / "data/images", n=45, size=24)
    results = tmp_path / "results"
    tiling = {"whole": {"mode": "whole", "tile_px": 32, "tissue": "none", "shard_size": 8}}
    config = write_config(tmp_path / "config.yaml", write_sheet(tmp_path / "data", rows[:40]), results,
                          tilings=tiling)
    target = str(results / "tiling_manifest.parquet")
    snakemake(tmp_path, "--configfile", str(config), "--cores", "2", target)
    before = {s: set(images) for s, images in assign_shards([r["slide"] for r in rows[:40]], 8).items()}
    assert {p.stem for p in (results / "tiles/whole").glob("shard_*.parquet")} == set(before)
    assert len(before) >= 5

    write_sheet(tmp_path / "data", rows)  # the same sheet, five more images
    after = assign_shards([r["slide"] for r in rows], 8)
    # A shard reruns only if its members changed: it received a new image, or it split because one overflowed it.
    changed = sorted(s for s, images in after.items() if before.get(s) != set(images))
    assert _jobs(tmp_path, config, target) == changed
    kept = set(after) - set(changed)
    assert kept and kept <= set(before)  # the rest of the collection is left as it was
