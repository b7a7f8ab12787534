"""Reuse checks for a shared results directory: a stored result is reused only if it was made the way the config asks.

Snakemake notices a changed parameter through the metadata in the working directory's `.snakemake/`; a second
project that points at the same `results` has no such metadata and would silently reuse stores made with other
settings under the same names. These checks compare what a store or tile table says made it with the config.
"""

from __future__ import annotations

import os
from pathlib import Path

from tileprobe.embed.checksum import cached_sha256
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


def _say(diffs, prefix: str) -> list[str]:
    return [f"{prefix}.{k} was {old!r}, the config says {new!r}" for k, old, new in diffs]


def check_tiles(tiles_path: str | os.PathLike, tiling_name: str, tiling: dict) -> None:
    """Stop when a tile table was cut with other tiling parameters than `tilings.<tiling_name>`."""
    from tileprobe.tiling.table import read_tiles

    _, meta = read_tiles(tiles_path)
    recorded = meta.get("tiling") or {}
    diffs = _differences(recorded, tiling, sorted(set(recorded) | set(tiling)))
    if diffs:
        raise ProvenanceError(f"{tiles_path}: {'; '.join(_say(diffs, f'tilings.{tiling_name}'))}. "
                              + _fix(Path(tiles_path), "tiling", tiling_name))


def _weights_file_differences(attrs: dict, recorded: dict, name: str, weights: str) -> list[str]:
    """A store made from a weights file matches the config's file by content (its sha256), not by path, which
    another project may spell differently; a store made with random or hub weights never matches a file."""
    if str(recorded.get("weights", "none")) in ("none", "hub"):
        return [f"backbones.{name}.weights was {recorded.get('weights')!r}, the config says {weights!r}"]
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ProvenanceError(
            f"backbones.{name}.weights: {path} does not exist, so the stores made from a weights file cannot be "
            "checked against it; fix the path (relative paths are read from the working directory)")
    made_from, now = attrs.get("weights_sha256"), cached_sha256(path)
    if made_from != now:
        return [f"backbones.{name}.weights: the store was made from a file with sha256 {made_from}, "
                f"{path} has sha256 {now}"]
    return []


def check_store(store: str | os.PathLike, backbone_name: str, backbone: dict, tiling_name: str,
                tiling: dict) -> None:
    """Stop when an embedding store was made by another backbone spec, weights file or tiling than the config's."""
    from tileprobe.embed.store import read_provenance

    attrs = read_provenance(store)
    # The spec as the config gave it, when the store kept it; else the effective values it recorded.
    recorded = attrs.get("spec") if isinstance(attrs.get("spec"), dict) else attrs
    wanted = dict(backbone)
    weights = str(wanted.get("weights", "none"))
    problems = []
    if weights not in ("none", "hub"):
        problems += _weights_file_differences(attrs, recorded, backbone_name, wanted.pop("weights"))
    if weights != "none":
        wanted.pop("seed", None)  # the seed only matters for random weights
    problems += _say(_differences(recorded, wanted, BACKBONE_KEYS), f"backbones.{backbone_name}")
    if problems:
        raise ProvenanceError(f"{store}: {'; '.join(problems)}. " + _fix(Path(store), "backbone", backbone_name))
    recorded_tiling = attrs.get("tiling") or {}
    diffs = _differences(recorded_tiling, tiling, sorted(set(recorded_tiling) | set(tiling)))
    if diffs:
        raise ProvenanceError(f"{store}: {'; '.join(_say(diffs, f'tilings.{tiling_name}'))}. "
                              + _fix(Path(store), "tiling", tiling_name))


def check_stores(stores: dict, made_by: dict) -> None:
    """check_store for every store a job is about to read. `stores` maps each backbone to its stores (a list or a
    {unit: store} dict); `made_by` is the rule's `made_by` params: {"tiling", "tiling_spec", "backbones"}."""
    for backbone, paths in stores.items():
        for store in paths.values() if isinstance(paths, dict) else paths:
            check_store(store, backbone, made_by["backbones"][backbone], made_by["tiling"], made_by["tiling_spec"])
