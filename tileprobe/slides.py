"""One reader over every image format: whole-slide pyramids through OpenSlide, plain images through Pillow.

Every backend is a `Slide` subclass registered with `register_backend`; `open_slide` asks each in order whether
it recognises a file, so a new format is one new class. Pixels always come back as uint8 RGB with transparent
or outside pixels composited onto white.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable

import numpy as np
import openslide
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
        return _on_white(pixels)

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


def _on_white(pixels: np.ndarray) -> np.ndarray:
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


# --- backends --------------------------------------------------------------------------------------------

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


def _openslide_detects(path: Path) -> bool:
    try:
        return openslide.OpenSlide.detect_format(str(path)) is not None
    except openslide.OpenSlideError:
        return False


@register_backend(_openslide_detects)
class OpenSlideSlide(Slide):
    """Whole-slide formats OpenSlide knows (Aperio SVS, Hamamatsu, MIRAX, tiled TIFF, DICOM, ...)."""

    def __init__(self, path: Path, mpp: float | None):
        self.path = path
        try:
            self._osr = openslide.OpenSlide(str(path))
        except openslide.OpenSlideError as e:
            raise SlideError(f"cannot read slide {path}: {e}; check the file is complete (copy it again)") from e
        self.level_dimensions = tuple(tuple(d) for d in self._osr.level_dimensions)
        self.level_downsamples = tuple(float(d) for d in self._osr.level_downsamples)
        props = self._osr.properties
        file_mpp = _positive(props.get(openslide.PROPERTY_NAME_MPP_X))
        self.mpp = mpp if mpp is not None else file_mpp
        self.mpp_source = "sample sheet" if mpp is not None else ("metadata" if file_mpp else None)
        self.objective_power = _positive(props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER))
        self.format = props.get(openslide.PROPERTY_NAME_VENDOR, "openslide")
        self.associated_images = tuple(sorted(self._osr.associated_images))
        self._tiff_pages = None  # (TiffFile, page per level), False when levels are not plain TIFF pages

    @property
    def tiff_pages(self):
        """(TiffFile, page per level) where the levels are plain TIFF pages (Aperio, generic TIFF), else None."""
        if self._tiff_pages is None:
            from tileprobe.tiff import openslide_tiff_pages

            self._tiff_pages = openslide_tiff_pages(self) or False
        return self._tiff_pages or None

    def read_level(self, level, lx, ly, w, h):
        # Decoding the pages' tiles directly with tifffile/imagecodecs skips OpenSlide's per-pixel compositing:
        # several times faster on big regions (benchmarks/tile_read.py).
        if self.tiff_pages:
            from tileprobe.tiff import read_tiff_level

            tif, pages = self.tiff_pages
            return read_tiff_level(self.path, tif, pages[level], lx, ly, w, h)
        return super().read_level(level, lx, ly, w, h)

    def _read_rgba(self, x0, y0, level, w, h):
        try:
            return np.asarray(self._osr.read_region((x0, y0), level, (w, h)))
        except openslide.OpenSlideError as e:
            raise SlideError(f"cannot read pixels of slide {self.path}: {e}; the file may be damaged") from e

    def close(self) -> None:
        self._osr.close()
        if self._tiff_pages:
            self._tiff_pages[0].close()


class PillowSlide(Slide):
    """Plain images (PNG, JPEG, single-resolution TIFF, ...): one level, decoded on first read and kept."""

    def __init__(self, path: Path, mpp: float | None):
        self.path = path
        try:
            with Image.open(path) as im:
                self.level_dimensions = (im.size,)
                self._image_format = (im.format or "unknown").lower()
                file_mpp = _tiff_mpp(im)
        except (OSError, Image.DecompressionBombError, ValueError) as e:
            raise SlideError(
                f"cannot read {path}: neither OpenSlide nor Pillow recognises it ({e}); check the file is "
                "complete and is a whole-slide or image format"
            ) from e
        self.level_downsamples = (1.0,)
        self.mpp = mpp if mpp is not None else file_mpp
        self.mpp_source = "sample sheet" if mpp is not None else ("metadata" if file_mpp else None)
        self.format = f"image ({self._image_format})"
        self._pixels: np.ndarray | None = None

    def _decoded(self) -> np.ndarray:
        if self._pixels is None:
            try:
                with Image.open(self.path) as im:
                    self._pixels = _as_rgb_or_rgba(im)
            except (OSError, Image.DecompressionBombError, ValueError) as e:
                raise SlideError(
                    f"cannot decode {self.path}: {e}; check the file is complete, or convert a very large image "
                    "to a pyramidal TIFF (e.g. `vips tiffsave IN OUT --tile --pyramid`)"
                ) from e
        return self._pixels

    def _read_rgba(self, x0, y0, level, w, h):
        pixels = self._decoded()
        out = np.full((h, w, pixels.shape[2]), 255, np.uint8)
        if pixels.shape[2] == 4:
            out[..., 3] = 0  # outside the image: transparent, composited to white later
        iw, ih = self.dimensions
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, iw), min(y0 + h, ih)
        if xa < xb and ya < yb:
            out[ya - y0 : yb - y0, xa - x0 : xb - x0] = pixels[ya:yb, xa:xb]
        return out

    def close(self) -> None:
        self._pixels = None


def _as_rgb_or_rgba(im: Image.Image) -> np.ndarray:
    """Keep transparency where the image has any, so it can be composited onto white."""
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    return np.asarray(im.convert("RGBA" if has_alpha else "RGB"))


def _tiff_mpp(im: Image.Image) -> float | None:
    """µm per pixel from TIFF XResolution/ResolutionUnit (inch or cm) or a JPEG/PNG density; None when absent or
    an editor default."""
    tags = getattr(im, "tag_v2", None)
    if not tags or 282 not in tags:
        dpi = im.info.get("dpi")  # JPEG (JFIF density) and PNG (pHYs) as Pillow reports them, per inch
        return resolution_mpp(dpi[0], 2) if isinstance(dpi, tuple) and dpi else None
    return resolution_mpp(tags[282], tags.get(296, 2))


def resolution_mpp(per_unit, unit) -> float | None:
    """µm per pixel from a TIFF resolution (pixels per `unit`: 2 inch, 3 cm); None for none or an editor's
    default dpi."""
    per_unit = _positive(per_unit)
    if per_unit is None or unit not in (2, 3):
        return None
    if unit == 2 and per_unit in _EDITOR_DPI:
        return None
    return (25400.0 if unit == 2 else 10000.0) / per_unit


def _positive(value) -> float | None:
    """A finite positive float, or None for missing/empty/NaN/non-positive values."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _is_blank(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def open_slide(path: str | os.PathLike, mpp: float | None = None) -> Slide:
    """Open `path` with the first backend that recognises it; `mpp` (µm per level-0 px) overrides metadata.

    A missing or NaN `mpp` (an empty sample-sheet cell) means "use the file's metadata".
    """
    path = Path(path)
    if _is_blank(mpp):
        mpp = None
    elif _positive(mpp) is None:
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


# The tifffile backend registers itself (OME-TIFF before OpenSlide, other TIFFs after it) on import.
from tileprobe import tiff as _tiff  # noqa: E402,F401
