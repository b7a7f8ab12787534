"""The manifest after tiling: one row per (tiling, slide) with its tile count, the resolution it was tiled at
and any flag, so a slide that yielded no tile is listed (and its QC picture named) instead of silently missing.
"""

from __future__ import annotations

import pandas as pd

from tileprobe.tiling.table import read_tiles

COLUMNS = ["tiling", "slide", "path", "n_tiles", "mpp", "mpp_source", "flags", "qc"]


def tiling_manifest(tiled: list[tuple[str, str]], tile_tables: list[str], qc_pictures: list[str]) -> pd.DataFrame:
    """Rows from the tile tables' metadata; `tile_tables[i]` and `qc_pictures[i]` are those of `tiled[i]`, a
    (tiling, slide) pair: names are given, never parsed back out of paths."""
    rows = []
    for (tiling, slide), table, qc in zip(tiled, tile_tables, qc_pictures, strict=True):
        tiles, meta = read_tiles(table)
        rows.append({
            "tiling": tiling,
            "slide": slide,
            "path": meta.get("slide_path"),
            "n_tiles": len(tiles),
            "mpp": meta.get("slide_mpp"),
            "mpp_source": meta.get("mpp_source"),
            "flags": ";".join(meta.get("flags", [])),
            "qc": str(qc),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def flagged(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest[manifest["flags"].fillna("") != ""]
