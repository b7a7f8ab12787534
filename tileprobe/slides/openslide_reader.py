"""Whole-slide formats OpenSlide knows (Aperio SVS, Hamamatsu, MIRAX, tiled TIFF, DICOM, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openslide

from tileprobe.slides.base import Slide, SlideError, positive
from tileprobe.slides.registry import register_backend


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
        file_mpp = positive(props.get(openslide.PROPERTY_NAME_MPP_X))
        self._set_mpp(mpp, file_mpp)
        self.objective_power = positive(props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER))
        self.format = props.get(openslide.PROPERTY_NAME_VENDOR, "openslide")
        self.associated_images = tuple(sorted(self._osr.associated_images))
        self._tiff_pages = None  # (TiffFile, page per level), False when levels are not plain TIFF pages

    @property
    def tiff_pages(self):
        """(TiffFile, page per level) where the levels are plain TIFF pages (Aperio, generic TIFF), else None."""
        if self._tiff_pages is None:
            # Imported here: the tifffile reader registers itself after OpenSlide (tileprobe.slides).
            from tileprobe.slides.tifffile_reader import openslide_tiff_pages

            self._tiff_pages = openslide_tiff_pages(self) or False
        return self._tiff_pages or None

    def read_level(self, level, lx, ly, w, h):
        # Decoding the pages' tiles directly with tifffile/imagecodecs skips OpenSlide's per-pixel compositing:
        # several times faster on big regions (benchmarks/tile_read.py).
        if self.tiff_pages:
            from tileprobe.slides.tifffile_reader import read_tiff_level

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
