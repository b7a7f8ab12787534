"""Which reader opens a file: readers register a detector with `register_backend`; `open_slide` asks each in
order, and files none claims go to Pillow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from tileprobe.slides.base import Slide, SlideError, is_blank, positive
from tileprobe.slides.pillow_reader import PillowSlide

_BACKENDS: list[tuple[Callable[[Path], bool], type[Slide]]] = []


def register_backend(detect: Callable[[Path], bool], first: bool = False):
    """Class decorator: use `cls(path, mpp)` for files where `detect(path)` is true.

    Backends are asked in registration order (`first=True`: before all registered so far); files none of them
    claims go to Pillow.
    """

    def add(cls: type[Slide]) -> type[Slide]:
        _BACKENDS.insert(0, (detect, cls)) if first else _BACKENDS.append((detect, cls))
        return cls

    return add


def open_slide(path: str | os.PathLike, mpp: float | None = None) -> Slide:
    """Open `path` with the first backend that recognises it; `mpp` (µm per level-0 px) overrides metadata.

    A missing or NaN `mpp` (an empty sample-sheet cell) means "use the file's metadata".
    """
    path = Path(path)
    if is_blank(mpp):
        mpp = None
    elif positive(mpp) is None:
        raise SlideError(
            f"mpp for {path} must be a positive number of µm per pixel, got {mpp!r}; fix the `mpp` column of the "
            "sample sheet"
        )
    else:
        mpp = float(mpp)
    if not path.is_file():
        raise SlideError(f"slide not found: {path}; check the `path` column of the sample sheet")
    for detect, cls in _BACKENDS:
        if detect(path):
            return cls(path, mpp)
    return PillowSlide(path, mpp)
