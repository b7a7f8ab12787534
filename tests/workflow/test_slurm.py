"""The demo through `snakemake --profile profiles/slurm` on a real single-node SLURM equals a local run.

Needs a running cluster: `make test-slurm` installs and starts one (.ci/slurm/), runs this, and stops it.
"""

import json
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from tests.support.runner import ROOT, snakemake

pytestmark = pytest.mark.slurm

TIMINGS = {"fit_seconds", "cv_seconds", "train_seconds", "seconds"}  # wall-clock, differs between any two runs


def without_timings(value):
    """A metrics.json record without its wall-clock entries, at any depth (each fold has its own)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


@pytest.fixture(scope="module")
def partition():
    """The cluster's default partition; fails (not skips) without a cluster, since CI must run this for real."""
    state = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True) if shutil.which(
        "sinfo") else None
    if state is None or state.returncode != 0 or not state.stdout.strip():
        pytest.fail("no SLURM cluster answers: run `make test-slurm` (it installs and starts one) or "
                    ".ci/slurm/install.sh && .ci/slurm/start.sh", pytrace=False)
    defaults = [line.split()[0] for line in state.stdout.splitlines() if line.split()[0].endswith("*")]
    return (defaults or state.stdout.split())[0].rstrip("*")


def demo_config(path):
    """The demo, smaller: 6 slides and 9 ISH images, its tile- and image-level tasks (each in a few jobs)."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["demo"] = {"seed": 0, "slides": 6, "images": 9}
    config["backbones"] = {"resnet18": config["backbones"]["resnet18"]}
    config["tasks"] = {name: {**config["tasks"][name], "backbones": ["resnet18"]} for name in ("tissue", "stage")}
    config.pop("selection", None)
    path.write_text(yaml.safe_dump(config))
    return path


def test_profile_has_what_a_cluster_user_needs():
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    assert {"slurm_partition", "slurm_account"} <= set(profile["default-resources"])
    assert all(profile["set-resources"][rule]["gpu"] == 1 for rule in ("embed", "embed_batch", "embed_shard"))
    # Bigger units of work than a laptop's: several slides per GPU job, big shards of images.
    assert {"slides_per_job=8", "shard_size=10000"} <= set(profile["config"])
    assert "attempt" in str(profile["set-resources"]["embed"]["mem_mb"]) and profile["retries"] >= 1
    assert profile["group-components"]["embed"] > 1


def slurm_profile(folder, partition):
    """profiles/slurm as a user without GPUs would layer it: the same, with embed on CPUs this node has."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = partition
    profile["default-resources"]["mem_mb"] = "1000 * attempt"
    for rule in ("embed", "embed_batch", "embed_shard"):
        profile["set-resources"][rule].update(gpu=0, cpus_per_task=2, mem_mb="3000 * attempt")
    for rule in ("tile", "tile_shard", "head"):
        profile["set-resources"][rule].update(mem_mb="2000 * attempt")
    profile["set-threads"].update(embed=2, embed_batch=2, embed_shard=2)
    profile["cores"] = 2  # this node's CPUs: groups run their jobs one or two at a time
    profile["resources"] = ["mem_mb=6000"]
    profile["latency-wait"] = 10
    profile["slurm-init-seconds-before-status-checks"] = 5  # jobs here take seconds, not hours
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def test_demo_on_slurm_equals_a_local_run(tmp_path, partition):
    config = demo_config(tmp_path / "config.yaml")
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    # The heads pull in everything they are made from (demo data, tiles, embeddings); the report is left out.
    heads = [f"results/heads/{task}/resnet18/final/none/logreg/metrics.json" for task in ("tissue", "stage")]
    snakemake(local, "--configfile", str(config), "--cores", "2", *heads, timeout=1800)
    run = snakemake(cluster, "--configfile", str(config), "--profile", str(slurm_profile(tmp_path / "p", partition)),
                    *heads, timeout=1800)
    log = run.stdout + run.stderr
    assert "SLURM run ID" in log, log[-3000:]
    # Batched (the profile's slides_per_job=8): the slides' stores came from fewer SLURM jobs than there are slides,
    # each loading the model once, and still land one store per slide.
    slides = len(list((cluster / "results/embeddings/wsi/resnet18").glob("*.zarr")))
    submitted = re.findall(r"submitted with SLURM jobid \d+ \(log: \S*/slurm_logs/(\w+?)/", log)
    assert slides == 6 and 0 < submitted.count("rule_embed_batch") < slides, submitted
    assert "rule_embed" not in submitted and "group_embed_embed" not in submitted, submitted

    a, b = local / "results", cluster / "results"
    tiles = sorted(p.relative_to(a) for p in a.glob("tiles/*/*.parquet"))
    # 6 slide tables and the ISH images' one shard (9 images, fewer than either run's shard_size)
    assert tiles == sorted(p.relative_to(b) for p in b.glob("tiles/*/*.parquet")) and len(tiles) == 7
    for path in tiles:
        pd.testing.assert_frame_equal(pd.read_parquet(a / path), pd.read_parquet(b / path))
    metrics = sorted(p.relative_to(a) for p in a.glob("heads/**/metrics.json"))
    assert len(metrics) == 2
    for path in metrics:
        ours, theirs = (json.loads((root / path).read_text()) for root in (a, b))
        assert without_timings(ours) == without_timings(theirs)
