"""Tile tables on disk: Parquet with the tiling parameters as JSON in the schema metadata.
"""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tileprobe.atomic import atomic_path
from tileprobe.jsonable import jsonable

META_KEY = b"tileprobe"


def write_tiles(tiles: pd.DataFrame, path: str | os.PathLike, meta: dict) -> None:
    """Parquet written atomically, `meta` as JSON (NaN as null) in the schema metadata under b"tileprobe"."""
    table = pa.Table.from_pandas(tiles, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), META_KEY: json.dumps(jsonable(meta), allow_nan=False).encode()}
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata), tmp)


def read_tiles(path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """The tile table and the `meta` it was written with ({} when none)."""
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    return table.to_pandas(), meta


def is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
