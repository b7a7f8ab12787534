"""The slide interface every reader implements, and the helpers readers share.

Pixels always come back as uint8 RGB with transparent or outside pixels composited onto white.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from PIL import Image

from tileprobe.errors import TileprobeError

# A level counts as "at or below" a requested downsample within this relative tolerance: pyramid levels are
# often stored at 4.0003 rather than 4.
_LEVEL_TOLERANCE = 0.01


# Thumbnails are assembled from bands of about this many pixels, so a slide without a pyramid never has to be
# decoded into memory in one piece.
_THUMBNAIL_BAND_PX = 16 * 1024 * 1024


# Image editors stamp these resolutions on every file; they say nothing about a microscope.
_EDITOR_DPI = (72.0, 96.0)


# The sample sheet's mpp overrides the file's; further apart than this factor, one of the two is probably a typo.
MPP_DISAGREEMENT = 1.5


class SlideError(TileprobeError):
    """A slide that cannot be used as given; the message names the file and says the fix."""


class Slide(ABC):
    """A multi-resolution image. Subclasses set the attributes in __init__ and implement `_read_rgba`."""

    path: Path
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp: float | None
    # Where `mpp` came from: "sample sheet", "metadata", "objective power" (set by tiling), or None.
    mpp_source: str | None = None
    objective_power: float | None = None
    format: str = "unknown"
    associated_images: tuple[str, ...] = ()

    def _set_mpp(self, sheet_mpp: float | None, file_mpp: float | None) -> None:
        """The sheet's mpp over the file's own, with a warning naming the slide when they are far apart."""
        if sheet_mpp is None:
            self.mpp, self.mpp_source = file_mpp, ("metadata" if file_mpp else None)
            return
        self.mpp, self.mpp_source = sheet_mpp, "sample sheet"
        if file_mpp and max(sheet_mpp / file_mpp, file_mpp / sheet_mpp) > MPP_DISAGREEMENT:
            warnings.warn(
                f"{self.path}: the sample sheet says {sheet_mpp:g} µm/px, {sheet_mpp / file_mpp:.3g}x the file's own "
                f"{file_mpp:g} µm/px; tiles are cut at the sheet's. If the sheet is wrong, fix this slide's `mpp` cell, "
                "or leave it empty to use the file's", stacklevel=3)

    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 (width, height)."""
        return self.level_dimensions[0]

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    @abstractmethod
    def _read_rgba(self, x0: int, y0: int, level: int, w: int, h: int) -> np.ndarray:
        """uint8 (h, w, 3 or 4); pixels outside the image transparent (alpha 0) or already white."""

    def read_region(self, x0: int, y0: int, level: int, w: int, h: int) -> np.ndarray:
        """uint8 (h, w, 3) RGB of a `w` x `h` region of `level` whose top-left is (`x0`, `y0`) in level-0 px."""
        if not 0 <= level < self.level_count:
            raise ValueError(f"{self.path}: level {level} does not exist; the slide has {self.level_count}")
        if w <= 0 or h <= 0:
            raise ValueError(f"{self.path}: region size must be positive, got {w} x {h}")
        pixels = self._read_rgba(int(x0), int(y0), int(level), int(w), int(h))
        return on_white(pixels)

    def read_level(self, level: int, lx: int, ly: int, w: int, h: int) -> np.ndarray:
        """uint8 (h, w, 3) RGB of `level` from its own pixel (`lx`, `ly`): for block reads and thumbnails.
        Backends that can decode a level directly override this; the default goes through read_region."""
        scale = self.level_downsamples[level]
        return self.read_region(math.floor(lx * scale), math.floor(ly * scale), level, w, h)

    def thumbnail(self, max_px: int) -> np.ndarray:
        """uint8 (h, w, 3) RGB of the whole slide, longest side `max_px` (never enlarged)."""
        w, h = self.dimensions
        downsample = max(w, h) / max_px
        if downsample <= 1:
            return self.read_region(0, 0, 0, w, h)
        size = (max(1, round(w / downsample)), max(1, round(h / downsample)))
        level = best_level(self, downsample)
        # Box-average by a whole factor band by band (exact and memory-bounded), then resize the small rest.
        factor = max(1, int(downsample / self.level_downsamples[level]))
        reduced = _reduce_level(self, level, factor)
        return np.asarray(Image.fromarray(reduced).resize(size, Image.Resampling.LANCZOS))

    @property
    def tiff_pages(self):
        """(TiffFile, TIFF page per level) where the levels can be decoded straight from TIFF pages, else None."""
        return None

    def close(self) -> None:
        """Release the file; the default holds nothing."""

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.dimensions
        return f"{type(self).__name__}({str(self.path)!r}, {w}x{h}, levels={self.level_count}, mpp={self.mpp})"


def _reduce_level(slide: Slide, level: int, factor: int) -> np.ndarray:
    """The whole of `level` box-reduced by an integer `factor`, read in bands whose heights are multiples of it."""
    lw, lh = slide.level_dimensions[level]
    band = max(factor, _THUMBNAIL_BAND_PX // max(lw, 1) // factor * factor)
    parts = []
    for y in range(0, lh, band):
        rows = min(band, lh - y)
        part = Image.fromarray(slide.read_level(level, 0, y, lw, rows))
        parts.append(np.asarray(part.reduce(factor) if factor > 1 else part))
    return np.concatenate(parts, axis=0)


def on_white(pixels: np.ndarray) -> np.ndarray:
    """Composite straight (non-premultiplied) RGBA onto white; RGB passes through."""
    if pixels.shape[2] == 3:
        return np.ascontiguousarray(pixels)
    if pixels[..., 3].min() == 255:  # the usual case inside a slide: opaque, skip the arithmetic
        return np.ascontiguousarray(pixels[..., :3])
    alpha = pixels[..., 3:].astype(np.uint16)
    rgb = pixels[..., :3].astype(np.uint16)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def best_level(slide: Slide, downsample: float) -> int:
    """The coarsest level whose downsample is at or below `downsample` (level 0 when none is)."""
    ok = [i for i, d in enumerate(slide.level_downsamples) if d <= downsample * (1 + _LEVEL_TOLERANCE)]
    return max(ok, key=lambda i: slide.level_downsamples[i]) if ok else 0


def resolution_mpp(per_unit, unit) -> float | None:
    """µm per pixel from a TIFF resolution (pixels per `unit`: 2 inch, 3 cm); None for none or an editor's
    default dpi."""
    per_unit = positive(per_unit)
    if per_unit is None or unit not in (2, 3):
        return None
    if unit == 2 and per_unit in _EDITOR_DPI:
        return None
    return (25400.0 if unit == 2 else 10000.0) / per_unit


def positive(value) -> float | None:
    """A finite positive float, or None for missing/empty/NaN/non-positive values."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def is_blank(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))
