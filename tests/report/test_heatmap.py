"""Heatmaps drawn from stored tables: the right tiles marked, on a real slide, for tile and attention tasks."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.support.slide_factory import tissue_image, write_aperio
from tileprobe.learn.data import TaskData
from tileprobe.learn.train import ATTENTION_FILE, run_task
from tileprobe.report.heatmaps import task_heatmaps
from tileprobe.report.plots.heatmap import draw_heatmap
from tileprobe.tiling.table import write_tiles

SIDE = 64


def grid(n=6):
    x, y = np.meshgrid(np.arange(n) * SIDE + 128, np.arange(n) * SIDE + 128)
    return pd.DataFrame({"x": x.ravel(), "y": y.ravel(), "level": 0, "tile_px_level0": SIDE})


def test_the_hottest_tile_is_marked_first_and_the_top_k_are_the_highest(tmp_path):
    tiles = grid()
    rng = np.random.default_rng(0)
    tiles["value"] = rng.random(len(tiles))
    thumbnail = tissue_image(256, 256, (30, 30, 220, 220))
    drawn = draw_heatmap(thumbnail, (640, 640), tiles, tmp_path / "h.png", "t", "p", top_k=3)
    hottest = tiles.loc[tiles["value"].idxmax()]
    assert (drawn.top.loc[0, ["x", "y"]] == hottest[["x", "y"]]).all()
    assert list(drawn.top["value"]) == sorted(tiles["value"], reverse=True)[:3]
    with Image.open(drawn.path) as image:
        assert image.size[0] >= 700


def slide_with_tiles(tmp_path, name):
    path = tmp_path / f"{name}.tiff"
    write_aperio(path, tissue_image(640, 640, (100, 100, 540, 540)), mpp=0.5, compression="zlib")
    tiles = grid()
    write_tiles(tiles, tmp_path / f"{name}.parquet", {"n_tiles": len(tiles)})
    return {"slide": name, "path": str(path), "mpp": 0.5}, str(tmp_path / f"{name}.parquet"), tiles


def test_tile_task_heatmaps_show_the_out_of_fold_probability_of_each_tile(tmp_path):
    slide, tiles_path, tiles = slide_with_tiles(tmp_path, "s1")
    head = tmp_path / "head"
    head.mkdir()
    p = np.linspace(0, 1, len(tiles))
    pd.DataFrame({"slide": "s1", "x": tiles["x"], "y": tiles["y"], "repeat": 0, "fold": 0, "y_true": "a",
                  "y_pred": "a", "prob_a": 1 - p, "prob_b": p}).to_parquet(head / "predictions.parquet")
    drawn = task_heatmaps("t", {"level": "tile", "kind": "binary"}, head, {"s1": tiles_path}, {"s1": slide},
                          tmp_path / "maps")
    assert [d.path.name for d in drawn] == ["s1.png"]
    # the hottest is the tile with the highest p(b): the last one
    assert tuple(drawn[0].top.loc[0, ["x", "y"]]) == tuple(tiles.iloc[-1][["x", "y"]])


def test_slide_task_heatmaps_show_out_of_fold_attention_of_abmil(tmp_path):
    rng = np.random.default_rng(0)
    n = 24
    y = np.array(["no", "yes"] * (n // 2), dtype=object)
    bags = [rng.normal(size=(36, 4)).astype(np.float32) for _ in range(n)]
    for i in np.flatnonzero(y == "yes"):
        bags[i][7] += 4  # one telling tile per positive slide
    data = TaskData(X=np.stack([b.mean(0) for b in bags]), y=y, groups=np.array([f"p{i}" for i in range(n)],
                    dtype=object), ids=pd.DataFrame({"slide": [f"s{i}" for i in range(n)]}), kind="binary", bags=bags)
    head = tmp_path / "head"
    run_task(data, "abmil", {"folds": 3, "bootstrap": 0}, head, {"head": "abmil"})
    attention = pd.read_parquet(head / ATTENTION_FILE)
    assert len(attention) == 36 * n and attention.groupby("slide")["attention"].sum().round(6).eq(1).all()
    folds = pd.read_parquet(head / "predictions.parquet").set_index("slide")["fold"]
    assert (attention.groupby("slide")["fold"].first() == folds.loc[attention.groupby("slide").size().index]).all()
    slide, tiles_path, _ = slide_with_tiles(tmp_path, "s1")
    ids = [f"s{i}" for i in range(n)]  # every slide drawn on the same test slide and tile table
    drawn = task_heatmaps("t", {"level": "slide", "kind": "binary"}, head, dict.fromkeys(ids, tiles_path),
                          dict.fromkeys(ids, slide), tmp_path / "maps")
    assert len(drawn) == n  # every slide of the task has its attention map (all drawn on this one test slide)
    one = drawn[1]  # s1, a positive slide: its telling tile is where the head looked most
    assert one.path.name == "s1.png"
    mine = attention[attention["slide"] == "s1"]
    assert one.top.loc[0, "value"] == pytest.approx(mine["attention"].max())


def test_new_slides_get_heatmaps_of_their_tile_scores_or_attention(tmp_path):
    from tileprobe.report.heatmaps import prediction_heatmaps

    slide, tiles_path, tiles = slide_with_tiles(tmp_path, "new")
    p = np.linspace(1, 0, len(tiles))
    table = pd.DataFrame({"slide": "new", "x": tiles["x"], "y": tiles["y"], "prob_a": 1 - p, "prob_b": p,
                          "prob_c": 0.0})
    drawn = prediction_heatmaps("t", {"level": "tile"}, "new", table, tiles_path, slide, tmp_path / "tile")
    assert [d.path.name for d in drawn] == ["new_a.png", "new_b.png", "new_c.png"]  # multiclass: one per class
    assert tuple(drawn[1].top.loc[0, ["x", "y"]]) == tuple(tiles.iloc[0][["x", "y"]])  # p(b) is highest first
    attention = np.full(len(tiles), 0.5 / (len(tiles) - 1))
    attention[4] = 0.5
    (one,) = prediction_heatmaps("t", {"level": "slide"}, "new", pd.DataFrame({"y_pred": ["yes"]}), tiles_path,
                                 slide, tmp_path / "mil", attention=attention)
    assert tuple(one.top.loc[0, ["x", "y"]]) == tuple(tiles.iloc[4][["x", "y"]])


@pytest.mark.workflow
def test_a_predict_sheet_plans_heatmaps_of_the_new_slides(demo_run, tmp_path):
    from tests.support.runner import planned_jobs

    results = demo_run / "results"
    manifest = pd.read_parquet(results / "manifest.parquet")
    slide = manifest[manifest["annotations"].notna()].iloc[0]
    sheet = tmp_path / "predict.tsv"
    sheet.write_text(f"slide\tpath\nnew_{slide['slide']}\t{demo_run / slide['path']}\n")
    jobs = planned_jobs(demo_run, "--config", f"predict={sheet}")
    # the tissue task (tile level) maps the new slide; the slide-level tasks deploy logreg, ridge, cox: no map
    assert jobs.get("predict_heatmaps") == 1 and jobs.get("predict", 0) >= 1, jobs
