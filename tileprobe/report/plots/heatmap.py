"""Where the model looks: a slide's thumbnail with a value per tile laid over it at the tiles' level-0
coordinates (out-of-fold tile probabilities of a tile-level task, or the attention of a slide-level MIL head),
the tissue outline, a colour bar, and the top-k tiles boxed and numbered. Built from stored tables only (tile
coordinates, predictions, attention): nothing is re-embedded, so a slide takes a second or two."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from tileprobe.atomic import atomic_path
from tileprobe.tiling.qc import fit_to_pixels, mask_outline
from tileprobe.tiling.tissue import tissue_mask

THUMBNAIL_PX = 1024
TOP_K = 5
CMAP = "inferno"


@dataclass(frozen=True)
class Heatmap:
    """A written heatmap and the tiles it marks as the top k (x, y, value; highest first)."""

    path: Path
    top: pd.DataFrame


def squares(tiles: pd.DataFrame) -> np.ndarray:
    """(n, 4, 2) level-0 corners of each tile's square."""
    x, y = tiles["x"].to_numpy(float), tiles["y"].to_numpy(float)
    side = tiles["tile_px_level0"].to_numpy(float)
    return np.stack([np.column_stack(c) for c in ((x, y), (x + side, y), (x + side, y + side), (x, y + side))],
                    axis=1)


def draw_heatmap(thumbnail: np.ndarray, dimensions: tuple[int, int], tiles: pd.DataFrame, path: str | Path,
                 title: str, label: str, top_k: int = TOP_K, vmin: float | None = None,
                 vmax: float | None = None) -> Heatmap:
    """`tiles` has x, y, tile_px_level0 (level 0) and `value`; the slide is `dimensions` (w, h) at level 0."""
    width, height = dimensions
    th, tw = thumbnail.shape[:2]
    fig = Figure(figsize=(8.0, 8.0 * th / tw + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.01, 0.86, 0.98 - 0.6 / fig.get_figheight()))
    ax.imshow(fit_to_pixels(thumbnail, 800), extent=(0, width, height, 0), interpolation="nearest")
    values = tiles["value"].to_numpy(float)
    norm = Normalize(vmin=np.nanmin(values) if vmin is None else vmin, vmax=np.nanmax(values) if vmax is None else vmax)
    cells = PolyCollection(squares(tiles), array=values, cmap=CMAP, norm=norm, alpha=0.6, edgecolors="none")
    ax.add_collection(cells, autolim=False)
    ax.add_collection(mask_outline(tissue_mask(thumbnail), width / tw), autolim=False)
    top = tiles.assign(rank=np.argsort(np.argsort(-values, kind="stable"), kind="stable")).nsmallest(top_k, "rank")
    marks = PolyCollection(squares(top), facecolors="none", edgecolors="#00e5ff", linewidths=1.5)
    ax.add_collection(marks, autolim=False)
    for rank, row in enumerate(top.itertuples(), start=1):
        ax.annotate(str(rank), (row.x, row.y), color="#00e5ff", fontsize=8, ha="right", va="bottom")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    bar = fig.add_axes((0.89, 0.1, 0.025, 0.7))
    fig.colorbar(ScalarMappable(norm=norm, cmap=colormaps[CMAP]), cax=bar, label=label)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Heatmap(Path(path), top[["x", "y", "value"]].reset_index(drop=True))
