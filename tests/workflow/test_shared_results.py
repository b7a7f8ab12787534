"""One results directory shared by runs from different working directories (people, projects)."""

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.support.runner import ROOT, SNAKEMAKE, snakemake
from tests.support.tiny_project import BACKBONE, HEAD_METRICS, TASK, make_project, write_config
from tileprobe.embed.provenance import ProvenanceError, check_store, check_tiles
from tileprobe.embed.store import EmbeddingWriter
from tileprobe.tiling.table import write_tiles
from tileprobe.workflow.shared_results import writes_results

SPEC = {"model": "resnet18", "weights": "none", "seed": 0, "layers": ["final"], "pool": "avg", "dtype": "float32",
        "batch_size": 16}
TILING = {"mode": "whole", "tile_px": 32, "tissue": "none"}


def _store(path, spec=SPEC, tiling=TILING):
    with EmbeddingWriter(path, 2, {"final": 4}, coords={"x": np.zeros(2, int), "y": np.zeros(2, int)},
                         attrs={"spec": spec, "tiling": tiling}) as writer:
        writer.write(0, 0, {"final": np.ones((2, 4), np.float32)})
    return path


def test_store_made_with_the_same_settings_passes(tmp_path):
    # batch_size changes no number in a store, so it may differ.
    check_store(_store(tmp_path / "a.zarr"), "r18", {**SPEC, "batch_size": 64}, "whole", TILING)


def test_store_from_another_backbone_spec_names_the_key_and_the_fix(tmp_path):
    store = _store(tmp_path / "a.zarr")
    with pytest.raises(ProvenanceError) as err:
        check_store(store, "r18", {**SPEC, "seed": 1}, "whole", TILING)
    message = str(err.value)
    assert str(store) in message and "backbones.r18.seed was 0, the config says 1" in message
    assert "new name" in message and "delete" in message


def test_store_or_tiles_from_another_tiling_are_refused(tmp_path):
    store = _store(tmp_path / "a.zarr")
    other = {**TILING, "tile_px": 64}
    with pytest.raises(ProvenanceError, match="tilings.whole.tile_px was 32, the config says 64"):
        check_store(store, "r18", SPEC, "whole", other)
    tiles = tmp_path / "tiles.parquet"
    write_tiles(__import__("pandas").DataFrame({"x": [0], "y": [0]}), tiles, {"tiling": TILING})
    check_tiles(tiles, "whole", TILING)
    with pytest.raises(ProvenanceError, match="tilings.whole.tile_px"):
        check_tiles(tiles, "whole", other)


@pytest.mark.parametrize("argv, writes", [
    (["snakemake", "--cores", "2"], True),
    (["snakemake", "-n"], False),
    (["snakemake", "-np", "target"], False),
    (["snakemake", "--dry-run"], False),
    (["snakemake", "--lint"], False),
    (["snakemake", "--configfile", "n.yaml"], True),
])
def test_only_runs_that_write_take_the_results_lock(argv, writes):
    assert writes_results(argv) is writes


def _start(workdir, config, *args):
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--configfile",
               str(config), "--cores", "2", *args]
    env = dict(os.environ, PATH=f"{SNAKEMAKE.parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.mark.workflow
def test_two_projects_at_once_share_embeddings_without_recomputing_or_corrupting(tmp_path):
    sheet = make_project(tmp_path / "data", n=6)  # 3 per class: the head's inner CV needs them
    shared = tmp_path / "shared"
    hue = {"hue": {"level": "image", "label": TASK, "kind": "binary", "tiling": "whole", "backbones": [BACKBONE],
                   "heads": ["logreg"]}}
    config_a = write_config(tmp_path / "a" / "config.yaml", sheet, shared, group_writable=True)
    config_b = write_config(tmp_path / "b" / "config.yaml", sheet, shared, group_writable=True, tasks=hue)
    target_b = str(shared / HEAD_METRICS.replace(f"heads/{TASK}/", "heads/hue/"))

    first = _start(tmp_path / "a", config_a, str(shared / HEAD_METRICS))
    lock = shared / ".tileprobe.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    # The second project starts while the first is building the very stores it needs.
    second = _start(tmp_path / "b", config_b, target_b)
    out_a, out_b = first.communicate(timeout=900)[0], second.communicate(timeout=900)[0]
    assert first.returncode == 0, out_a[-4000:]
    assert second.returncode == 0, out_b[-4000:]

    assert "waiting for it to finish" in out_b
    assert out_a.count("rule embed_shard:") == 1  # six images, one shard: one model load
    assert not re.search(r"rule (embed\w*|tile\w*):", out_b), "the second project recomputed"
    for store in (shared / "embeddings/whole" / BACKBONE).iterdir():
        assert zarr.open_group(store, mode="r").attrs["complete"] is True
    assert not [p for p in shared.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]

    # group_writable: true — colleagues in the group can rebuild any of it; new folders keep the group.
    assert shared.stat().st_mode & stat.S_ISGID
    made = [p for p in shared.rglob("*") if not p.is_symlink()]
    assert made and all(p.stat().st_mode & stat.S_IWGRP for p in made), [
        p for p in made if not p.stat().st_mode & stat.S_IWGRP][:5]

    # A third project names the same backbone but with another seed: its stores are refused, not reused.
    stores = {p: p.stat().st_mtime_ns for p in (shared / "embeddings/whole" / BACKBONE).iterdir()}
    other = dict(model="resnet18", weights="none", batch_size=16, seed=1)
    config_c = write_config(tmp_path / "c" / "config.yaml", sheet, shared, backbones={BACKBONE: other})
    (shared / HEAD_METRICS).unlink()
    # Snakemake has no metadata of another working directory's jobs, so it plans by modification times only.
    third = _start(tmp_path / "c", config_c, "--rerun-triggers=mtime", str(shared / HEAD_METRICS))
    out_c = third.communicate(timeout=600)[0]
    assert third.returncode != 0
    assert f"backbones.{BACKBONE}.seed was 0, the config says 1" in out_c
    assert not (shared / HEAD_METRICS).exists()
    assert {p: p.stat().st_mtime_ns for p in stores} == stores


@pytest.mark.workflow
def test_a_project_with_trained_weights_never_reuses_random_weight_stores(tmp_path):
    """Project A embeds with random weights; B names the same backbone with a weights file on the same `results`.
    Every rule of B that reads A's stores (heads, augmentation, selection, embedding figure, deployment) stops
    and names the weights, and A's stores stay as they were."""
    from tileprobe.workflow.paths import ResultPaths

    sheet = make_project(tmp_path / "data", n=6)
    shared = tmp_path / "shared"
    paths = ResultPaths(shared)
    colour = {TASK: {"level": "image", "label": TASK, "kind": "binary", "tiling": "whole", "backbones": [BACKBONE],
                     "heads": ["logreg"]}}
    config_a = write_config(tmp_path / "a" / "config.yaml", sheet, shared, tasks=colour)
    snakemake(tmp_path / "a", "--configfile", str(config_a), "--cores", "2", str(shared / HEAD_METRICS))
    stores = {p: p.stat().st_mtime_ns for p in (shared / "embeddings/whole" / BACKBONE).iterdir()}

    weights = tmp_path / "r18.pth"
    weights.write_bytes(b"a fine-tuned checkpoint")
    config_b = write_config(
        tmp_path / "b" / "config.yaml", sheet, shared,
        backbones={BACKBONE: {"model": "resnet18", "weights": str(weights), "batch_size": 16}},
        tasks={**colour, "hue": {**colour[TASK], "heads": ["logreg"]}},
        augmentations={"drop": {"kind": "dropout"}}, selection={"proxy_task": "hue"}, predict=str(sheet))
    targets = {
        "head": paths.head_file("metrics", "hue", BACKBONE, "final", "none", "logreg"),
        "augment": paths.augmented("whole", BACKBONE, "drop"),
        "select": paths.selection("hue"),
        "figure_embedding": paths.figure("embedding_hue"),
        "predict": paths.predict(TASK, "img0"),
    }
    out = snakemake(tmp_path / "b", "--configfile", str(config_b), "--cores", "2", "--keep-going",
                    *targets.values(), check=False)
    assert out.returncode != 0
    said = f"backbones.{BACKBONE}.weights was 'none', the config says '{weights}'"
    logs = {"head": paths.log("head", "hue", BACKBONE, "final", "none", "logreg"),
            "augment": paths.log("augment", "whole", BACKBONE, "drop"), "select": paths.log("select", "hue"),
            "figure_embedding": paths.log("figures", "embedding_hue"), "predict": paths.log("predict", TASK, "img0")}
    for rule, log in logs.items():
        assert said in Path(log).read_text(), f"rule {rule} read random-weight stores: {out.stdout[-3000:]}"
        assert not Path(targets[rule]).exists()
    assert {p: p.stat().st_mtime_ns for p in stores} == stores
