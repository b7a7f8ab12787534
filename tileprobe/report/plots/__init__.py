"""Report figures: one module per picture, each a function from tables on disk to one PNG.

Every figure is drawn with matplotlib's Agg backend (no display on a cluster node) and written atomically, so a
killed job leaves no half-drawn PNG that looks finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from tileprobe.atomic import atomic_path  # noqa: E402

DPI = 110


@dataclass(frozen=True)
class Drawn:
    """A written figure and the titles of its panels that hold data (what a reader, or a test, can check)."""

    path: Path
    panels: list[str]


def _title(ax) -> str:
    return next((t for t in (ax.get_title(loc=loc) for loc in ("center", "left", "right")) if t), "")


def save(fig, path: str | Path) -> Drawn:
    """Write `fig` as PNG to `path` atomically and free it."""
    panels = [_title(ax) for ax in fig.axes if ax.has_data()]
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Drawn(Path(path), panels)


def empty(path: str | Path, message: str) -> Drawn:
    """A figure that says why there is nothing to draw, so the report still has the file it promises."""
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return save(fig, path)


def config_label(row) -> str:
    """backbone/layer/augmentation/head: one trained head, as the figures name it."""
    return f"{row['backbone']}/{row['layer']}/{row['augmentation']}/{row['head']}"
