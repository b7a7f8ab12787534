"""Augmentation specs: the kinds a user can name, their parameters and defaults (from the schema), and the checks.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tileprobe.config.defaults import fill_defaults, section_schema
from tileprobe.errors import TileprobeError


def _kinds() -> dict[str, dict]:
    """kind -> its parameters and their defaults, as the schema's per-kind `then` branches fill them."""
    kinds = section_schema("augmentation")["properties"]["kind"]["enum"]
    return {kind: {k: v for k, v in fill_defaults("augmentation", {"kind": kind}).items() if k != "kind"}
            for kind in kinds}


# Names a user types in `augmentations: {name: {kind: ..., ...}}`.
KINDS: dict[str, dict] = _kinds()


PER_TILE = ("views", "dropout")


NONE = "none"


Augment = Callable[[np.ndarray, np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


class AugmentError(TileprobeError):
    """An augmentation is misconfigured or its store does not fit; the message names it and says the fix."""


def resolve(name: str, spec: dict | None) -> dict:
    """The spec of augmentation `name` with `kind` (default: the name itself) and every default filled in."""
    spec = dict(spec or {})
    kind = spec.pop("kind", name)
    if kind not in KINDS:
        raise AugmentError(
            f"config: `augmentations.{name}` has kind {kind!r}; set `kind:` to one of {', '.join(KINDS)}."
        )
    unknown = sorted(set(spec) - set(KINDS[kind]))
    if unknown:
        raise AugmentError(
            f"config: `augmentations.{name}` ({kind}) has unknown parameter(s) {unknown}; "
            f"valid: {', '.join(KINDS[kind])}."
        )
    out = {"kind": kind, **KINDS[kind], **spec}
    checks = {
        "copies": out.get("copies", 1) >= 1,
        "p": 0 <= out.get("p", 0) < 1,
        "sigma": out.get("sigma", 0) >= 0,
        "alpha": out.get("alpha", 1) > 0,
        "k": out.get("k", 1) >= 1,
    }
    bad = [key for key, ok in checks.items() if key in out and not ok]
    if bad:
        raise AugmentError(
            f"config: `augmentations.{name}.{bad[0]}` = {out[bad[0]]!r} is out of range "
            "(copies >= 1, 0 <= p < 1, sigma >= 0, alpha > 0, k >= 1)."
        )
    return out


def check_augmentations(augmentations: dict | None) -> dict[str, dict]:
    """All configured augmentations, resolved; `none` is the un-augmented row every table has already."""
    if NONE in (augmentations or {}):
        raise AugmentError("config: `augmentations.none` is reserved for the un-augmented heads; rename it.")
    return {name: resolve(name, spec) for name, spec in (augmentations or {}).items()}


# Augmentations that never look at a label: they suit every task kind. The others mix rows of one class or
# count classes, which a regression or survival target does not have.
LABEL_FREE = (*PER_TILE, "gaussian_noise")


def for_task(task: dict, specs: dict[str, dict]) -> list[str]:
    """The augmentation rows a task trains heads on: `none`, then the task's `augmentations` (default: every
    configured one that suits its kind)."""
    names = task.get("augmentations")
    if names is None:
        value_kind = task.get("kind") in ("regression", "survival")
        names = [n for n, spec in specs.items() if not value_kind or spec["kind"] in LABEL_FREE]
    return [NONE, *(n for n in names if n != NONE)]


def is_per_tile(spec: dict) -> bool:
    return spec["kind"] in PER_TILE
