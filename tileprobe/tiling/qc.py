"""QC picture of a tiling: thumbnail, tissue outline, tile squares (coloured by label) and annotated regions.

Drawn on a bare matplotlib Figure with the Agg canvas (no pyplot state, safe in parallel jobs), in level-0
coordinates, with one collection per layer so hundreds of thousands of tiles stay fast.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_hex, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image
from skimage.measure import find_contours

from tileprobe.atomic import atomic_path
from tileprobe.tiling.grid import Tiling

MASK_COLOUR = "#00c853"
UNLABELLED_COLOUR = "#212121"  # near-black: distinct from the class palette and the green mask
FIGURE_WIDTH_IN = 10.0
DPI = 100


def render_qc(tiling: Tiling, path: str | os.PathLike, title: str = "") -> None:
    """Write the QC PNG of `tiling` to `path` atomically."""
    th, tw = tiling.thumbnail.shape[:2]
    width, height = tw * tiling.thumb_scale, th * tiling.thumb_scale
    fig = Figure(figsize=(FIGURE_WIDTH_IN, FIGURE_WIDTH_IN * th / tw + 0.6), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98 - 0.5 / fig.get_figheight()))
    shown = fit_to_pixels(tiling.thumbnail, round(FIGURE_WIDTH_IN * DPI))
    ax.imshow(shown, extent=(0, width, height, 0), interpolation="nearest")
    colours = label_colours(tiling)
    # autolim=False: the limits are set below, and computing extents of many paths is slow
    for layer in (mask_outline(tiling.mask, tiling.thumb_scale), tile_squares(tiling, colours),
                  region_outlines(tiling, colours)):
        ax.add_collection(layer, autolim=False)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_xticks([])
    ax.set_yticks([])  # keep the frame: it marks the slide's edge on a white background
    ax.set_title(title, fontsize=10)
    ax.legend(handles=legend_handles(colours), loc="upper right", fontsize=8, framealpha=0.8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def fit_to_pixels(image: np.ndarray, max_px: int) -> np.ndarray:
    """Shrink to about the size it is drawn at with Pillow: matplotlib's own resampling of a large RGB image
    costs seconds."""
    h, w = image.shape[:2]
    if max(h, w) <= max_px:
        return image
    scale = max_px / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def label_colours(tiling: Tiling) -> dict:
    """A colour per class name (tiles and regions share them); None for unlabelled tiles."""
    names = {r.label for r in tiling.regions}
    if "label" in tiling.tiles:
        names |= set(tiling.tiles["label"].dropna())
    palette = [c for c in _palette() if c not in ("#2ca02c", "#7f7f7f")]  # tab10 minus the mask's green, grey
    colours = {name: palette[i % len(palette)] for i, name in enumerate(sorted(names))}
    return {None: UNLABELLED_COLOUR, **colours}


def _palette() -> list[str]:
    return [to_hex(c) for c in colormaps["tab10"].colors]


def tile_squares(tiling: Tiling, colours: dict) -> PolyCollection:
    """Outlines of all tiles as one collection; corners computed for all tiles at once."""
    tiles = tiling.tiles
    x, y = tiles["x"].to_numpy(float), tiles["y"].to_numpy(float)
    s = tiles["tile_px_level0"].to_numpy(float)
    corners = np.stack([np.column_stack(c) for c in ((x, y), (x + s, y), (x + s, y + s), (x, y + s))], axis=1)
    edge = UNLABELLED_COLOUR
    if "label" in tiles:
        # one colour lookup per class, not per tile
        codes, names = pd.factorize(tiles["label"], use_na_sentinel=True)
        table = np.array([to_rgba(colours[n]) for n in names] + [to_rgba(colours[None])])
        edge = table[codes]  # code -1 (no label) picks the last row
    return PolyCollection(corners.reshape(-1, 4, 2), facecolors="none", edgecolors=edge, linewidths=0.8)


def mask_outline(mask: np.ndarray, scale: float) -> LineCollection:
    """The tissue mask's boundary, in level-0 px (contours run through pixel centres, hence the half pixel)."""
    padded = np.pad(mask.astype(np.float32), 1)  # so regions touching the border close
    lines = [(c[:, ::-1] - 1 + 0.5) * scale for c in find_contours(padded, 0.5)]
    return LineCollection(lines, colors=MASK_COLOUR, linewidths=1.2, linestyles="dashed")


def region_outlines(tiling: Tiling, colours: dict) -> LineCollection:
    rings, ring_colours = [], []
    for region in tiling.regions:
        for ring in (region.exterior, *region.holes):
            rings.append(np.vstack([ring, ring[:1]]))
            ring_colours.append(colours[region.label])
    return LineCollection(rings, colors=ring_colours or "k", linewidths=2.0)


def legend_handles(colours: dict) -> list[Line2D]:
    handles = [Line2D([], [], color=MASK_COLOUR, linestyle="dashed", label="tissue mask")]
    unlabelled = "tile" if len(colours) == 1 else "tile without label"
    for name, colour in colours.items():
        handles.append(Line2D([], [], color=colour, label=unlabelled if name is None else name))
    return handles


def render_contact_sheet(names: list[str], pixels: list[np.ndarray | None], path: str | os.PathLike,
                         title: str = "", max_px: int = 4096) -> None:
    """A shard's images side by side (the QC picture of a collection), unreadable ones as red crosses; drawn
    with Pillow alone, so thousands of images take well under a second."""
    from PIL import ImageDraw

    n = max(1, len(names))
    columns = math.ceil(math.sqrt(n))
    cell = int(max(24, min(128, max_px // columns)))
    label = 12 if cell >= 64 else 0  # names only where they fit
    header = 24
    rows = math.ceil(n / columns)
    sheet = Image.new("RGB", (columns * cell, header + rows * (cell + label)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 6), title, fill="black")
    for i, (name, image) in enumerate(zip(names, pixels)):
        x, y = (i % columns) * cell, header + (i // columns) * (cell + label)
        if image is None:
            draw.rectangle((x + 2, y + 2, x + cell - 3, y + cell - 3), outline="#d50000", width=2)
            draw.line((x + 2, y + 2, x + cell - 3, y + cell - 3), fill="#d50000", width=2)
            draw.line((x + 2, y + cell - 3, x + cell - 3, y + 2), fill="#d50000", width=2)
        else:
            sheet.paste(Image.fromarray(image).resize((cell - 4, cell - 4), Image.Resampling.BILINEAR),
                        (x + 2, y + 2))
        if label:
            draw.text((x + 2, y + cell), name[: cell // 6], fill="#d50000" if image is None else "black")
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="png")
