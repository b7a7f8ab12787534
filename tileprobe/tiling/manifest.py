"""The manifest after tiling: one row per (tiling, slide) with its tile count, the resolution it was tiled at
and any flag, so a slide that yielded no tile, or an image its shard could not read, is listed (with its QC
picture or contact sheet, and its error) instead of silently missing.
"""

from __future__ import annotations

import pandas as pd

from tileprobe.tiling.table import read_tiles

COLUMNS = ["tiling", "slide", "shard", "path", "n_tiles", "mpp", "mpp_source", "flags", "error", "qc"]


def tiling_manifest(tiled: list[tuple[str, str]], tile_tables: list[str], qc_pictures: list[str]) -> pd.DataFrame:
    """Rows from the tile tables' metadata; `tile_tables[i]` and `qc_pictures[i]` are those of `tiled[i]`, a
    (tiling, slide) pair, or a (tiling, shard) pair whose table has a row per image: names are given, never
    parsed back out of paths."""
    rows = []
    for (tiling, slide), table, qc in zip(tiled, tile_tables, qc_pictures, strict=True):
        tiles, meta = read_tiles(table)
        if "shard" in meta:
            rows.extend(_shard_rows(tiling, tiles, meta["shard"], qc))
            continue
        rows.append({
            "tiling": tiling,
            "slide": slide,
            "path": meta.get("slide_path"),
            "n_tiles": len(tiles),
            "mpp": meta.get("slide_mpp"),
            "mpp_source": meta.get("mpp_source"),
            "flags": ";".join(meta.get("flags", [])),
            "error": "",
            "qc": str(qc),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def _shard_rows(tiling: str, table: pd.DataFrame, shard: str, qc) -> pd.DataFrame:
    from tileprobe.tiling.collection import UNREADABLE

    error = table["error"].fillna("")
    return pd.DataFrame({
        "tiling": tiling, "slide": table["slide"], "shard": shard, "path": table["path"],
        "n_tiles": (error == "").astype(int), "mpp": table["mpp"], "mpp_source": table["mpp_source"],
        "flags": error.where(error == "", UNREADABLE), "error": error, "qc": str(qc),
    }).to_dict("records")


def flagged(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest[manifest["flags"].fillna("") != ""]
