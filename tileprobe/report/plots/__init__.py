"""Report figures: one module per picture, each a function from tables on disk to one PNG.

Every figure is drawn with matplotlib's Agg backend (no display on a cluster node) and written atomically, so a
killed job leaves no half-drawn PNG that looks finished. The QC gallery alone is a JPEG: thumbnails of tissue
photographs, which PNG stores at several times the size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from tileprobe.atomic import atomic_path  # noqa: E402

DPI = 110


@dataclass(frozen=True)
class Drawn:
    """A written figure and the titles of its panels that hold data (what a reader, or a test, can check)."""

    path: Path
    panels: list[str]
    title: str = ""  # the figure's own title (suptitle), where it has one


def _title(ax) -> str:
    return next((t for t in (ax.get_title(loc=loc) for loc in ("center", "left", "right")) if t), "")


JPEG_QUALITY = 80


def save(fig, path: str | Path, dpi: int = DPI) -> Drawn:
    """Write `fig` to `path` atomically and free it: PNG, or JPEG (quality JPEG_QUALITY) for a .jpg/.jpeg path."""
    panels = [_title(ax) for ax in fig.axes if ax.has_data()]
    title = fig.get_suptitle()
    jpeg = Path(path).suffix.lower() in (".jpg", ".jpeg")
    with atomic_path(path) as tmp:
        if jpeg:
            fig.savefig(tmp, format="jpeg", dpi=dpi, bbox_inches="tight", pil_kwargs={"quality": JPEG_QUALITY})
        else:
            # A chart has few colours: a 256-colour palette PNG looks the same at a quarter of the bytes, which
            # the self-contained report (base64, every figure) pays for once per figure.
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
            with Image.open(buffer) as image:
                image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(tmp, format="png",
                                                                                         optimize=True)
    plt.close(fig)
    return Drawn(Path(path), panels, title)


def empty(path: str | Path, message: str) -> Drawn:
    """A figure that says why there is nothing to draw, so the report still has the file it promises."""
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return save(fig, path)


def config_label(row) -> str:
    """backbone/layer/augmentation/head: one trained head, as the figures name it."""
    return f"{row['backbone']}/{row['layer']}/{row['augmentation']}/{row['head']}"
