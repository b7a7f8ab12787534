"""Embeddings in the demo run: an intermediate layer next to `final`, from one pass, with its own heads."""

import json

import pandas as pd
import pytest
import zarr

pytestmark = pytest.mark.workflow


def test_intermediate_layer_is_its_own_array_and_its_own_heads(demo_run):
    results = demo_run / "results"
    manifest = pd.read_parquet(results / "manifest.parquet")
    slide = manifest[manifest["annotations"].notna()]["slide"].iloc[0]
    store = zarr.open_group(results / f"embeddings/wsi/resnet18/{slide}.zarr", mode="r")
    n_tiles = len(pd.read_parquet(results / f"tiles/wsi/{slide}.parquet"))
    assert store["final"].shape == (1, n_tiles, 512) and store["layer3"].shape == (1, n_tiles, 256)
    assert store.attrs["layers"] == ["final", "layer3"] and store.attrs["views"] == 1
    metrics = json.loads((results / "heads/stage/resnet18/layer3/none/logreg/metrics.json").read_text())
    assert metrics["n_samples"] > 0
    summary = pd.read_parquet(results / "report/summary.parquet")
    assert {"final", "layer3"} <= set(summary.loc[summary["backbone"] == "resnet18", "layer"])


def test_config_views_and_layers_reach_the_store(tmp_path):
    """`views:` and `layers:` from the config, through rule embed, into one store: (views, tiles, dim) per layer."""
    from tests.support.runner import snakemake
    from tests.support.tiny_project import make_project, write_config

    sheet = make_project(tmp_path, n=6)
    backbone = {"model": "resnet18", "weights": "none", "batch_size": 16, "layers": ["final", "layer3"]}
    config = write_config(tmp_path / "config.yaml", sheet, tmp_path / "results", views=3, backbones={"r18": backbone})
    target = tmp_path / "results/embeddings/whole/r18/shard_all.zarr"  # six images: one shard
    snakemake(tmp_path, "--configfile", str(config), "--cores", "2", str(target))
    store = zarr.open_group(target, mode="r")
    assert store["final"].shape == (3, 6, 512) and store["layer3"].shape == (3, 6, 256)
    assert store.attrs["views"] == 3 and set(store.attrs["view_augmentations"]) == {"flip", "rot90", "colour", "hed"}
    final = store["final"][...]
    assert not (final[0] == final[1]).all() and not (final[1] == final[2]).all()
