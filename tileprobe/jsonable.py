"""Plain JSON from what tileprobe records (configs, provenance, metrics), in one way for every file it writes.

NaN and infinities become null: an undefined value is "no value", and strict JSON has no NaN.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """`value` as JSON types: numpy scalars and arrays become numbers and lists, tuples lists, paths strings,
    dict keys strings, NaN and +-inf None; anything else that is not JSON raises TypeError."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{value!r} of type {type(value).__name__} is not JSON serialisable")
