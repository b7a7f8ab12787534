"""Pixels of one tile: the one place a tile table row becomes an image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from tileprobe.slides.base import Slide


def read_tile(slide: Slide, row, tile_px: int) -> np.ndarray:
    """uint8 (tile_px, tile_px, 3) for a row of a tile table (itertuples namedtuple or Series).

    A row whose square covers the whole image (whole mode) is the full image padded to a square with white,
    centred; any other row is the square read at its level.
    """
    x, y, level, size = int(row.x), int(row.y), int(row.level), int(row.tile_px_level0)
    if x == 0 and y == 0 and size >= max(slide.dimensions):
        pixels = _whole_image_square(slide, level)
    else:
        side = max(1, round(size / slide.level_downsamples[level]))
        pixels = slide.read_region(x, y, level, side, side)
    return resize_tile(pixels, tile_px)


def _whole_image_square(slide: Slide, level: int) -> np.ndarray:
    w, h = slide.level_dimensions[level]
    side = max(w, h)
    square = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = slide.read_region(0, 0, level, w, h)
    return square


def resize_tile(pixels: np.ndarray, tile_px: int) -> np.ndarray:
    """Pillow's bilinear is antialiased when shrinking (like torchvision's) and, unlike Lanczos, never rings."""
    if pixels.shape[:2] == (tile_px, tile_px):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((tile_px, tile_px), Image.Resampling.BILINEAR))
