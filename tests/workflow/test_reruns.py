"""Reruns do only the work a change calls for: dry runs over the finished demo, which is left as it was."""

import re

import pytest

from tests.support.runner import ROOT, snakemake

pytestmark = pytest.mark.workflow

def planned(workdir, *args):
    """(rule, wildcards) of every job a dry run plans."""
    out = snakemake(workdir, "-n", "--cores", "1", *args).stdout
    jobs, current = [], None
    for line in out.splitlines():
        match = re.match(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):$", line)
        if match:
            current = (match[1], {})
            jobs.append(current)
        elif current and (match := re.match(r"^\s*wildcards: (.*)$", line)):
            current[1].update(pair.split("=", 1) for pair in match[1].split(", "))
    return jobs


def _overlay(tmp_path, text):
    """The demo config with `text` merged over it (a config file alone must be complete: it gets no demo)."""
    path = tmp_path / "change.yaml"
    path.write_text(text)
    return ["--configfile", str(ROOT / "config" / "config.yaml"), str(path)]


def _slides(results, kind, *parts):
    return sorted(p.name.split(".")[0] for p in (results / kind).joinpath(*parts).iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("tiling, expected", [
    ("wsi", lambda slide: [("embed", {"tiling": "wsi", "backbone": "resnet18", "slide": slide})]),
    # An image collection: the store is a shard's, rebuilt by one job (the model loaded once).
    ("ish", lambda shard: [("embed_shard", {"tiling": "ish", "backbone": "resnet18", "shard": shard})]),
])
def test_asking_for_one_store_rebuilds_only_that_store(demo_run, tiling, expected):
    stores = demo_run / f"results/embeddings/{tiling}/resnet18"
    slide = _slides(demo_run / "results", "embeddings", tiling, "resnet18")[0]
    aside = stores / f".{slide}.aside"
    (stores / f"{slide}.zarr").rename(aside)  # a rename keeps every modification time
    try:
        # Its tile table is there: no tiling, no other slide, no head (a head is rebuilt only when asked for).
        assert sorted(planned(demo_run, f"results/embeddings/{tiling}/resnet18/{slide}.zarr")) == expected(slide)
    finally:
        aside.rename(stores / f"{slide}.zarr")


def test_changing_one_tiling_parameter_redoes_only_that_tiling(demo_run, tmp_path):
    jobs = planned(demo_run, *_overlay(tmp_path, "tilings: {ish: {tile_px: 96}}\n"))
    tiles = [w for rule, w in jobs if rule == "tile_shard"]
    assert sorted(w["shard"] for w in tiles) == _slides(demo_run / "results", "tiles", "ish")
    assert {w["tiling"] for rule, w in jobs if rule in ("tile", "tile_shard", "embed", "embed_shard")} == {"ish"}
    assert {w["task"] for rule, w in jobs if rule == "head"} == {"stage"}  # the one task on that tiling
    assert not {"demo_data", "manifest"} & {rule for rule, _ in jobs}


def test_changing_one_backbone_parameter_redoes_only_its_embeddings(demo_run, tmp_path):
    jobs = planned(demo_run, *_overlay(tmp_path, "backbones: {resnet18: {seed: 1}}\n"))
    embeds = [w for rule, w in jobs if rule in ("embed", "embed_shard")]
    made = sum(len(_slides(demo_run / "results", "embeddings", t, "resnet18")) for t in ("ish", "wsi"))
    assert len(embeds) == made and {w["backbone"] for w in embeds} == {"resnet18"}
    assert {w["backbone"] for rule, w in jobs if rule == "head"} == {"resnet18"}  # no head of another backbone
    assert not {"demo_data", "manifest", "tile", "tile_shard"} & {rule for rule, _ in jobs}
