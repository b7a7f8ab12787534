"""The whole demo through the real `snakemake` command, in a temporary directory."""

import json

import pandas as pd
import pytest
import zarr

from tests.support.runner import ROOT, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

HEAD = "results/heads/stage/resnet18/final/none/logreg/metrics.json"


def test_every_stage_leaves_its_outputs(demo_run):
    results = demo_run / "results"
    manifest = pd.read_parquet(results / "manifest.parquet")
    assert len(manifest) == 36 and manifest["slide"].is_unique
    wsi = manifest[manifest["annotations"].notna()]["slide"]
    ish = manifest[manifest["stage"].notna()]["slide"]
    for slide in wsi:
        tiles = pd.read_parquet(results / f"tiles/wsi/{slide}.parquet")
        assert len(tiles) > 20 and {"x", "y", "level", "tile_px_level0", "tissue_fraction", "label"} <= set(tiles.columns)
        assert (results / f"qc/wsi/{slide}.png").stat().st_size > 10_000
        store = zarr.open_group(results / f"embeddings/wsi/resnet18/{slide}.zarr", mode="r")
        assert store["final"].shape == (1, len(tiles), 512)
        assert store.attrs["complete"] and store.attrs["model"] == "resnet18"
    # The ISH images come in shards: one table, one contact sheet and one store per shard, not per image.
    tables = [pd.read_parquet(p) for p in sorted((results / "tiles/ish").glob("shard_*.parquet"))]
    assert len(tables) >= 2 and sorted(pd.concat(tables)["slide"]) == sorted(ish)
    for table in tables:
        stores = list((results / "embeddings/ish/resnet18").glob("shard_*.zarr"))
        assert len(stores) == len(tables)
    for store in stores:
        group = zarr.open_group(store, mode="r")
        assert group["final"].shape[:2] == (1, group["image"].shape[0]) and group.attrs["complete"]
        assert (results / f"qc/ish/{store.stem}.png").stat().st_size > 1000
    assert not list((results / "tiles/ish").glob("gene_*"))
    # Every head the summary reports left its predictions, metrics and refit model.
    summary = pd.read_parquet(results / "report/summary.parquet")
    assert set(summary["task"]) == {"tissue", "tumor", "tumor_fraction", "survival", "stage"}
    for row in summary.itertuples():
        head = results / f"heads/{row.task}/{row.backbone}/{row.layer}/{row.augmentation}/{row.head}"
        predictions = pd.read_parquet(head / "predictions.parquet")
        metrics = json.loads((head / "metrics.json").read_text())
        assert len(predictions) == metrics["n_samples"] * metrics["evaluation"]["repeats"]
        assert (head / "model" / "model.json").exists()
    # No temporary or half-written file anywhere.
    assert not [p for p in results.rglob("*") if ".tmp-" in p.name]


def test_summary_shows_every_task_well_above_chance(demo_run):
    summary = pd.read_parquet(demo_run / "results/report/summary.parquet")
    assert set(summary["task"]) == {"tissue", "tumor", "tumor_fraction", "survival", "stage"}
    # `noise` is the demo's deliberately useless backbone (random features): near chance, not above it.
    useless = summary["backbone"] == "noise"
    assert set(summary.loc[useless, "task"]) == {"tissue"}
    classes = summary["kind"].isin(["binary", "multiclass", "multilabel"])
    for row in summary[~useless & classes].itertuples():
        assert row.balanced_accuracy >= row.chance_balanced_accuracy + 0.25, row
    # The tumour's share of each slide is learnt from the mean of its tiles, and survival that depends on it
    (regression,) = summary[summary["task"] == "tumor_fraction"].itertuples()
    assert regression.r2 >= regression.chance_r2 + 0.6 and regression.r2_ci_low > 0.3, regression
    (survival,) = summary[summary["task"] == "survival"].itertuples()
    assert survival.c_index >= 0.7 and survival.c_index >= survival.chance_c_index + 0.2, survival
    for row in summary[useless].itertuples():
        assert abs(row.balanced_accuracy - row.chance_balanced_accuracy) < 0.15, row
    markdown = (demo_run / "results/report/summary.md").read_text()
    assert all(task in markdown for task in ("tissue", "tumor", "tumor_fraction", "survival", "stage"))


def test_second_run_has_nothing_to_do(demo_run):
    assert planned_jobs(demo_run) == {}
    assert "Nothing to be done" in snakemake(demo_run, "-n", "--cores", "1").stdout


def test_one_target_rebuilds_only_itself(demo_run):
    metrics = demo_run / HEAD
    before = json.loads(metrics.read_text())
    metrics.unlink()
    assert planned_jobs(demo_run, HEAD) == {"head": 1}
    snakemake(demo_run, "--cores", "1", HEAD)
    assert json.loads(metrics.read_text())["overall"] == before["overall"]


def test_one_target_from_scratch_needs_only_its_inputs(tmp_path):
    jobs = planned_jobs(tmp_path, HEAD)
    # The ISH images only, in shards of at most 16: a tiling and an embedding job per shard, one head; no slide,
    # no report.
    assert jobs == {"demo_data": 1, "tile_shard": 2, "embed_shard": 2, "head": 1}


def test_dry_run_in_repository_root_lists_the_demo_jobs():
    result = snakemake(ROOT, "-n", "--cores", "1")
    for rule in ("demo_data", "manifest", "tile", "embed", "head", "select", "report", "figure_timing", "all"):
        assert rule in result.stdout


def test_lint_is_clean():
    result = snakemake(ROOT, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_the_demo_prints_no_warnings(demo_run):
    # Issue 17, point 4: Snakemake's "coroutine ... was never awaited" (disk sized from input.size_mb while the DAG
    # is built) and zarr's ".snakemake_timestamp is not recognized" filled the demo's output.
    from tests.conftest import DEMO_OUTPUT

    output = (demo_run / DEMO_OUTPUT).read_text()
    warnings = [line for line in output.splitlines() if "Warning" in line or "warnings.warn" in line]
    assert warnings == [], "\n".join(warnings[:10])
    assert "rule tile" in output  # it is the run's output, with its jobs


def test_the_demo_draws_a_heatmap_per_slide_and_class_of_its_tile_task(demo_run):
    maps = sorted(p.name for p in (demo_run / "results/heatmaps/tissue").glob("*.png"))
    slides = sorted(p.stem for p in (demo_run / "results/tiles/wsi").glob("*.parquet"))
    assert maps == sorted(f"{s}_{c}.png" for s in slides for c in ("normal", "stroma", "tumor"))
