"""Plain images (PNG, JPEG, single-resolution TIFF, ...) through Pillow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tileprobe.slides.base import Slide, SlideError, resolution_mpp


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
        self._set_mpp(mpp, file_mpp)
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
