"""The QC pictures of the tiled slides as one gallery of small thumbnails: tissue outlines and tile grids at a glance.

The report embeds this figure, never the full-size pictures (about 1 MB each: a report that embedded them grew by
that much per slide). So the gallery stays bounded: at most MAX_THUMBNAILS pictures, every flagged one first and
marked, the rest a deterministic sample of the others, and it is a JPEG. It says how many it shows and where all
the full-size pictures are.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import pandas as pd
from PIL import Image

from tileprobe.report.plots import Drawn, empty, plt, save

MAX_THUMBNAILS = 48  # past this a gallery stops being readable; the full set stays under results/qc/
COLUMNS = 6
CELL_IN = 2.0  # inches per thumbnail; at DPI 90 a thumbnail is about 180 px wide
DPI = 90
FLAG_COLOUR = "#c62828"


def _key(path: str | Path) -> str:
    return os.path.normpath(str(path))


def flagged_pictures(manifest: pd.DataFrame | None) -> dict[str, str]:
    """QC picture -> what is flagged on it ("flag" for a slide, "slide: flag; ..." for a shard's contact sheet),
    from the tiling manifest (columns qc, slide, flags)."""
    if manifest is None or manifest.empty:
        return {}
    bad = manifest[manifest["flags"].fillna("") != ""]
    found: dict[str, list[str]] = {}
    for row in bad.itertuples():
        shared = (manifest["qc"] == row.qc).sum() > 1  # a contact sheet: name the image
        found.setdefault(_key(row.qc), []).append(f"{row.slide}: {row.flags}" if shared else str(row.flags))
    return {qc: "; ".join(flags) for qc, flags in found.items()}


def sample(paths: list[Path], flagged: set[str], limit: int = MAX_THUMBNAILS) -> list[Path]:
    """At most `limit` pictures: every flagged one (up to the limit), then the others ranked by a hash of their
    path, so the choice is the same on every run and a slide added to the cohort leaves the others' places alone."""
    bad = [p for p in paths if _key(p) in flagged][:limit]
    good = sorted((p for p in paths if _key(p) not in flagged),
                  key=lambda p: hashlib.sha1(_key(p).encode()).hexdigest())
    chosen = set(bad) | set(good[:limit - len(bad)])
    return [p for p in paths if p in chosen]


def qc_gallery(paths: list[str | Path], path: str | Path, manifest: pd.DataFrame | None = None,
               limit: int = MAX_THUMBNAILS, what: str = "QC pictures") -> Drawn:
    """Thumbnails of at most `limit` of the QC pictures `paths` (flagged ones, from the tiling manifest, always
    among them and marked in red), written to `path` (a .jpg keeps it small)."""
    paths = sorted({Path(p) for p in paths})
    if not paths:
        return empty(path, f"no {what}")
    flags = flagged_pictures(manifest)
    shown = sample(paths, set(flags), limit)
    columns = min(COLUMNS, len(shown))
    rows = math.ceil(len(shown) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(CELL_IN * columns, CELL_IN * rows + 0.4),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    thumb_px = int(CELL_IN * DPI)
    for ax, qc in zip(axes.ravel(), shown):
        with Image.open(qc) as image:
            image.thumbnail((thumb_px, thumb_px))
            ax.imshow(image.convert("RGB"))
        flag = flags.get(_key(qc))
        title = f"{qc.parent.name}/{qc.stem}"
        if flag:
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(FLAG_COLOUR)
                spine.set_linewidth(3)
            ax.set_title(f"FLAGGED {title}\n{flag}"[:80], fontsize=6, color=FLAG_COLOUR)
        else:
            ax.set_title(title, fontsize=6)
    qc_dir = os.path.commonpath([str(p.parent.parent) for p in paths]) + "/"  # results/qc/ (QC/{tiling}/{slide})
    n_flagged = sum(_key(p) in flags for p in paths)
    marked = f"; {n_flagged} flagged, marked in red" if n_flagged else ""
    fig.suptitle(f"{what}: {len(shown)} of {len(paths)} shown{marked}; full-size pictures in {qc_dir}",
                 fontsize=9)
    return save(fig, path, dpi=DPI)
