"""The heatmaps of one task, from what its deployed head left: a tile-level task's out-of-fold tile
probabilities (predictions.parquet), or a slide-level task's out-of-fold attention of its `abmil` head
(attention.parquet, with the out-of-fold slide prediction in the title), on each slide's thumbnail."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tileprobe.learn.train import ATTENTION_FILE
from tileprobe.report.plots.heatmap import THUMBNAIL_PX, Heatmap, draw_heatmap
from tileprobe.slides.registry import open_slide
from tileprobe.tiling.table import read_tiles

PROB = "prob_"


def _thumbnail(slide: dict):
    with open_slide(slide["path"], mpp=slide.get("mpp")) as opened:
        return opened.thumbnail(THUMBNAIL_PX), opened.dimensions


def tile_maps(title: str, slide: str, rows: pd.DataFrame, tiles_path: str, slide_info: dict,
              out_dir: Path) -> list[Heatmap]:
    """One slide's maps of per-tile probabilities (`rows`: x, y, prob_{class}): binary the second class (as the
    metrics), multiclass one map per class (`{slide}_{class}.png`)."""
    classes = [c[len(PROB):] for c in rows.columns if c.startswith(PROB)]
    shown = classes[1:] if len(classes) == 2 else classes
    table = read_tiles(tiles_path)[0][["x", "y", "tile_px_level0"]]
    rows = rows.merge(table, on=["x", "y"], how="left")
    thumbnail, dimensions = _thumbnail(slide_info)
    return [draw_heatmap(thumbnail, dimensions, rows.assign(value=rows[PROB + c]),
                         Path(out_dir) / (f"{slide}.png" if len(shown) == 1 else f"{slide}_{c}.png"),
                         f"{title} p({c}) per tile", f"p({c})", vmin=0.0, vmax=1.0) for c in shown]


def prediction_heatmaps(task_name: str, task: dict, slide: str, prediction: pd.DataFrame, tiles_path: str,
                        slide_info: dict, out_dir: str | Path, attention=None) -> list[Heatmap]:
    """A new slide's maps from its `predict:` table (tile tasks) or the deployed abmil's `attention` over its
    tiles (slide tasks, one weight per row of its tile table)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if task["level"] == "tile":
        return tile_maps(f"{task_name}: {slide} (predicted),", slide, prediction, tiles_path, slide_info, out_dir)
    table = read_tiles(tiles_path)[0][["x", "y", "tile_px_level0"]].reset_index(drop=True)
    call = prediction.iloc[0]
    thumbnail, dimensions = _thumbnail(slide_info)
    return [draw_heatmap(thumbnail, dimensions, table.assign(value=attention), out_dir / f"{slide}.png",
                         f"{task_name}: {slide}, predicted {call['y_pred']}", "attention (sums to 1)")]


def task_heatmaps(task_name: str, task: dict, head_dir: str | Path, tiles: dict[str, str],
                  slides: dict[str, dict], out_dir: str | Path) -> list[Heatmap]:
    """Write `out_dir/{slide}.png` (multiclass tile tasks: `{slide}_{class}.png`) for every slide the head
    predicted; `tiles` and `slides` ({path, mpp}) are keyed by slide."""
    head_dir, out_dir = Path(head_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = pd.read_parquet(head_dir / "predictions.parquet")
    predictions = predictions[predictions["repeat"] == 0]
    drawn = []
    if task["level"] == "tile":
        for slide, rows in predictions.groupby("slide", sort=True):
            drawn += tile_maps(f"{task_name}: {slide}, out-of-fold", slide, rows, tiles[slide], slides[slide],
                               out_dir)
        return drawn
    attention = pd.read_parquet(head_dir / ATTENTION_FILE)
    attention = attention[attention["repeat"] == 0]
    called = predictions.set_index("slide")
    for slide, rows in attention.groupby("slide", sort=True):
        table = read_tiles(tiles[slide])[0].reset_index(drop=True)
        cells = table.loc[rows["tile"].to_numpy(), ["x", "y", "tile_px_level0"]].assign(
            value=rows["attention"].to_numpy())
        row = called.loc[slide]
        probability = row.get(f"{PROB}{row['y_pred']}")
        call = f"predicted {row['y_pred']}" + (f" (p {probability:.2f})" if probability is not None else "")
        thumbnail, dimensions = _thumbnail(slides[slide])
        drawn.append(draw_heatmap(thumbnail, dimensions, cells, out_dir / f"{slide}.png",
                                  f"{task_name}: {slide}, true {row['y_true']}, out of fold {call}",
                                  "attention (sums to 1)"))
    return drawn
