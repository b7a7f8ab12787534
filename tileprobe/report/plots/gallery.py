"""The QC thumbnails of every tiled slide side by side: tissue outlines and tile grids at a glance."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image

from tileprobe.report.plots import Drawn, empty, plt, save

MAX_THUMBNAILS = 48  # past this a gallery stops being readable; the full set stays under results/qc/
COLUMNS = 6


def qc_gallery(paths: list[str | Path], path: str | Path, thumb_px: int = 320) -> Drawn:
    paths = sorted(Path(p) for p in paths)
    if not paths:
        return empty(path, "no QC thumbnails")
    shown = paths[:MAX_THUMBNAILS]
    columns = min(COLUMNS, len(shown))
    rows = math.ceil(len(shown) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, qc in zip(axes.ravel(), shown):
        with Image.open(qc) as image:
            image.thumbnail((thumb_px, thumb_px))
            ax.imshow(image.convert("RGB"))
        ax.set_title(f"{qc.parent.name}/{qc.stem}", fontsize=7)
    more = f" (first {len(shown)} of {len(paths)})" if len(paths) > len(shown) else ""
    fig.suptitle(f"QC thumbnails{more}", fontsize=10)
    return save(fig, path)
