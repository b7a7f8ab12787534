"""Reuse checks for a shared results directory: a stored result is reused only if it was made the way the config asks.

Snakemake notices a changed parameter through the metadata in the working directory's `.snakemake/`; a second
project that points at the same `results` has no such metadata and would silently reuse stores made with other
settings under the same names. These checks compare what a store or tile table says made it with the config.
"""

from __future__ import annotations

import os
from pathlib import Path

from tileprobe.errors import TileprobeError

# Backbone spec keys that change the numbers in a store, as the store records them.
BACKBONE_KEYS = ("model", "weights", "seed", "layers", "pool", "dtype", "input_px")


class ProvenanceError(TileprobeError):
    """A stored result was made with settings other than the config's; the message names both and the fix."""


def _differences(recorded: dict, wanted: dict, keys) -> list[tuple[str, object, object]]:
    return [(k, recorded[k], wanted[k]) for k in keys if k in recorded and k in wanted and recorded[k] != wanted[k]]


def _fix(path: Path, kind: str, name: str) -> str:
    return (
        f"This results directory holds a {kind} made by another config (a shared `results`?). "
        f"Give the changed {kind} entry a new name (e.g. `{name}_v2`) so both are kept, "
        f"or delete {path} to rebuild it with this config."
    )


def _say(diffs, prefix: str) -> str:
    return "; ".join(f"{prefix}.{k} was {old!r}, the config says {new!r}" for k, old, new in diffs)


def check_tiles(tiles_path: str | os.PathLike, tiling_name: str, tiling: dict) -> None:
    """Stop when a tile table was cut with other tiling parameters than `tilings.<tiling_name>`."""
    from tileprobe.tiling.table import read_tiles

    _, meta = read_tiles(tiles_path)
    recorded = meta.get("tiling") or {}
    diffs = _differences(recorded, tiling, sorted(set(recorded) | set(tiling)))
    if diffs:
        raise ProvenanceError(f"{tiles_path}: {_say(diffs, f'tilings.{tiling_name}')}. "
                              + _fix(Path(tiles_path), "tiling", tiling_name))


def check_store(store: str | os.PathLike, backbone_name: str, backbone: dict, tiling_name: str,
                tiling: dict) -> None:
    """Stop when an embedding store was made by another backbone spec or tiling than the config's."""
    from tileprobe.embed.store import read_provenance

    attrs = read_provenance(store)
    # The spec as the config gave it, when the store kept it; else the effective values it recorded.
    recorded = attrs.get("spec") if isinstance(attrs.get("spec"), dict) else attrs
    wanted = dict(backbone)
    if str(wanted.get("weights", "none")) not in ("none", "hub"):
        wanted.pop("weights")  # a file path may be spelled differently; its checksum is in the store
    if wanted.get("weights", "none") != "none":
        wanted.pop("seed", None)  # the seed only matters for random weights
    diffs = _differences(recorded, wanted, BACKBONE_KEYS)
    if diffs:
        raise ProvenanceError(f"{store}: {_say(diffs, f'backbones.{backbone_name}')}. "
                              + _fix(Path(store), "backbone", backbone_name))
    recorded_tiling = attrs.get("tiling") or {}
    diffs = _differences(recorded_tiling, tiling, sorted(set(recorded_tiling) | set(tiling)))
    if diffs:
        raise ProvenanceError(f"{store}: {_say(diffs, f'tilings.{tiling_name}')}. "
                              + _fix(Path(store), "tiling", tiling_name))


def check_stores(stores, backbone: str, backbone_spec: dict, tiling: str, tiling_spec: dict) -> None:
    """check_store for every store a job is about to read."""
    for store in stores:
        check_store(store, backbone, backbone_spec, tiling, tiling_spec)
