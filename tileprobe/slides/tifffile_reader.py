"""TIFF files OpenSlide does not read well, through tifffile: OME-TIFF pyramids (levels in SubIFDs, µm per pixel
in the OME XML) and plain non-pyramidal TIFFs of any size.

Regions are decoded tile by tile or strip by strip from the file, so a 50-gigapixel stripped TIFF costs only the
strips a read touches, never the whole image in memory.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tifffile

from tileprobe.slides.base import Slide, SlideError, on_white, resolution_mpp
from tileprobe.slides.registry import register_backend

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# Compressions whose colours tifffile decodes as OpenSlide does: none, LZW, JPEG, deflate, Aperio JPEG 2000 RGB,
# zstd, WebP. Others (e.g. Aperio's YCbCr JPEG 2000, 33003) keep OpenSlide in the pixel path.
_DIRECT_COMPRESSIONS = {1, 5, 7, 8, 32946, 33005, 50000, 50001}
# OME PhysicalSizeXUnit -> µm
_OME_UNITS = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4}


def _is_tiff(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) in _TIFF_MAGIC
    except OSError:
        return False


def _is_ome_tiff(path: Path) -> bool:
    """OME-TIFF: OpenSlide would take it for a generic TIFF and miss its SubIFD pyramid and its mpp."""
    if not _is_tiff(path):
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            return tif.is_ome
    except Exception:  # a damaged TIFF: let the other backends report it
        return False


class TiffFileSlide(Slide):
    """A TIFF read through tifffile: the first image series and its pyramid levels, RGB or greyscale."""

    def __init__(self, path: Path, mpp: float | None):
        self.path = path
        self._tif = None
        try:
            self._tif = tifffile.TiffFile(path)
            series = self._tif.series[0]
            self._pages = [level.keyframe for level in series.levels]
            plain = all(tuple(level.shape) == tuple(level.keyframe.shape) for level in series.levels)
        except Exception as e:  # tifffile raises many types for damaged files
            if self._tif is not None:
                self._tif.close()
            raise SlideError(f"cannot read TIFF {path}: {e}; check the file is complete (copy it again)") from e
        for page in self._pages:
            rgb_or_grey = page.shape[:2] == (page.imagelength, page.imagewidth) and page.samplesperpixel in (1, 3, 4)
            if not (plain and rgb_or_grey):
                self._tif.close()
                raise SlideError(
                    f"{path}: image series of shape {series.shape} ({series.axes}) is not a brightfield RGB or "
                    "greyscale image; export a single RGB plane (e.g. with QuPath or bfconvert)"
                )
        _check_complete(path, self._tif, self._pages)
        self.level_dimensions = tuple((p.imagewidth, p.imagelength) for p in self._pages)
        w0 = self.level_dimensions[0][0]
        self.level_downsamples = tuple(w0 / w for w, _ in self.level_dimensions)
        self.format = "ome-tiff" if self._tif.is_ome else "tiff"
        file_mpp, self.objective_power = self._metadata()
        self._set_mpp(mpp, file_mpp)

    def _metadata(self) -> tuple[float | None, float | None]:
        if self._tif.is_ome:
            return _ome_mpp_and_power(self._tif.ome_metadata)
        tags = self._pages[0].tags
        if "XResolution" not in tags:
            return None, None
        num, den = tags["XResolution"].value
        unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
        return resolution_mpp(num / den if den else None, unit), None

    def _read_rgba(self, x0, y0, level, w, h):
        scale = self.level_downsamples[level]
        return _read_rgba_page(self.path, self._tif, self._pages[level], math.floor(x0 / scale),
                               math.floor(y0 / scale), w, h)

    def read_level(self, level, lx, ly, w, h):
        return read_tiff_level(self.path, self._tif, self._pages[level], lx, ly, w, h)

    @property
    def tiff_pages(self):
        return self._tif, self._pages

    def close(self) -> None:
        self._tif.close()


def _check_complete(path: Path, tif, pages) -> None:
    """A copy that stopped early still opens (its first directory is intact); say so now rather than fail
    later with a misleading message (a cut Aperio file is not recognised by OpenSlide and lands here)."""
    size = path.stat().st_size
    end = max((o + c for p in pages for o, c in zip(p.dataoffsets, p.databytecounts)), default=0)
    if end > size:
        tif.close()
        raise SlideError(f"{path} is truncated: its image data run to byte {end} but the file has {size}; "
                         "copy it again")


def _read_rgba_page(path, tif, page, lx, ly, w, h) -> np.ndarray:
    try:
        return _rgb(_read_page(tif.filehandle, page, lx, ly, w, h))
    except Exception as e:  # codecs raise their own types on damaged data
        raise SlideError(f"cannot read pixels of {path}: {e}; the file may be damaged") from e


def read_tiff_level(path, tif, page, lx: int, ly: int, w: int, h: int) -> np.ndarray:
    """uint8 (h, w, 3) RGB of a TIFF page from its pixel (lx, ly), transparent pixels on white."""
    return on_white(_read_rgba_page(path, tif, page, lx, ly, w, h))


def openslide_tiff_pages(slide) -> tuple[tifffile.TiffFile, list] | None:
    """For an OpenSlide format whose levels are exactly the file's tiled TIFF pages (Aperio, generic tiled
    TIFF), the open TiffFile and the page of each level; None for any other layout (e.g. Philips, Ventana,
    MIRAX, DICOM), which keep reading through OpenSlide."""
    if slide.format not in ("aperio", "generic-tiff"):
        return None
    try:
        tif = tifffile.TiffFile(slide.path)
        tiled = {(p.imagewidth, p.imagelength): p for p in reversed(tif.pages) if p.is_tiled}
    except Exception:
        return None
    pages = [tiled.get(tuple(d)) for d in slide.level_dimensions]
    if all(p is not None and p.samplesperpixel in (3, 4) and p.dtype == np.uint8
           and int(p.compression) in _DIRECT_COMPRESSIONS for p in pages):
        return tif, pages
    tif.close()
    return None


def _segment_grid(page) -> tuple[int, int, int]:
    """(segment height, segment width, segments per row) of a tiled or stripped page."""
    if page.is_tiled:
        return page.tilelength, page.tilewidth, math.ceil(page.imagewidth / page.tilewidth)
    rows = min(page.rowsperstrip or page.imagelength, page.imagelength)
    return rows, page.imagewidth, 1


def _read_page(fh, page, lx: int, ly: int, w: int, h: int) -> np.ndarray:
    """(h, w, samples) of a page at level px (lx, ly); outside the image white, missing tiles white."""
    out = np.full((h, w, page.samplesperpixel), _white(page.dtype), page.dtype)
    iw, ih = page.imagewidth, page.imagelength
    xa, ya, xb, yb = max(lx, 0), max(ly, 0), min(lx + w, iw), min(ly + h, ih)
    if xa >= xb or ya >= yb:
        return out
    sh, sw, across = _segment_grid(page)
    indices = [r * across + c for r in range(ya // sh, (yb - 1) // sh + 1) for c in range(xa // sw, (xb - 1) // sw + 1)]
    present = [i for i in indices if page.databytecounts[i] > 0]
    offsets = [page.dataoffsets[i] for i in present]
    counts = [page.databytecounts[i] for i in present]
    for data, index in fh.read_segments(offsets, counts, indices=present, sort=True):
        segment, (_, _, sy, sx, _), _ = page.decode(data, index, jpegtables=page.jpegtables)
        segment = segment.reshape(segment.shape[-3:])
        # the part of this segment inside both the image and the requested region
        ca, cb = max(xa, sx), min(xb, sx + segment.shape[1])
        ra, rb = max(ya, sy), min(yb, sy + segment.shape[0])
        if ca < cb and ra < rb:
            out[ra - ly : rb - ly, ca - lx : cb - lx] = segment[ra - sy : rb - sy, ca - sx : cb - sx]
    return out


def _white(dtype) -> int:
    return np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB or RGBA from greyscale/RGB/RGBA of any integer depth (16-bit scanners: top 8 bits)."""
    if pixels.dtype != np.uint8:
        if not np.issubdtype(pixels.dtype, np.integer):
            pixels = np.clip(pixels * 255, 0, 255)
        else:
            pixels = pixels >> (8 * (pixels.dtype.itemsize - 1))
        pixels = pixels.astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return pixels


def _ome_mpp_and_power(xml: str | None) -> tuple[float | None, float | None]:
    try:
        ome = tifffile.xml2dict(xml or "").get("OME", {})
    except Exception:
        return None, None
    image = ome.get("Image", {})
    image = image[0] if isinstance(image, list) else image
    pixels = image.get("Pixels", {}) if isinstance(image, dict) else {}
    mpp = None
    size = pixels.get("PhysicalSizeX")
    unit = _OME_UNITS.get(str(pixels.get("PhysicalSizeXUnit", "µm")))
    if isinstance(size, (int, float)) and size > 0 and unit:
        mpp = float(size) * unit
    power = None
    instrument = ome.get("Instrument", {})
    instrument = instrument[0] if isinstance(instrument, list) else instrument
    objective = instrument.get("Objective", {}) if isinstance(instrument, dict) else {}
    objective = objective[0] if isinstance(objective, list) else objective
    if isinstance(objective, dict) and isinstance(objective.get("NominalMagnification"), (int, float)):
        power = float(objective["NominalMagnification"]) or None
    return mpp, power


# OME-TIFF before OpenSlide (which would read it as a generic TIFF); other TIFFs OpenSlide does not claim
# (stripped, non-pyramidal) after it, instead of Pillow, which would decode them whole.
register_backend(_is_ome_tiff, first=True)(TiffFileSlide)
register_backend(_is_tiff)(TiffFileSlide)
