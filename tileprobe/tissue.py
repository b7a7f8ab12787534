"""Tissue detection on a thumbnail: stained tissue is saturated, glass and background are grey or white.

Otsu runs on log saturation. On a linear scale pale tissue (fat, loose stroma, saturation ~0.1) sits close to
the glass (~0.01) while dense, nuclei-rich tissue reaches 0.5, so Otsu splits pale from dark tissue and drops
the pale; the log scale spreads the low end, where the tissue/glass boundary lies.
"""

from __future__ import annotations

import numpy as np
from skimage.filters import gaussian, threshold_otsu
from skimage.morphology import remove_small_holes, remove_small_objects

# Keeps log() finite on pure white and damps noise in nearly white pixels.
SATURATION_EPS = 0.01
# Otsu always splits, even an empty slide's JPEG noise; below this saturation nothing counts as tissue.
MIN_SATURATION = 0.05
# Clean-up sizes as fractions of the thumbnail's area, so they mean the same at any thumbnail size.
SMALL_OBJECT_FRACTION = 1e-4
SMALL_HOLE_FRACTION = 5e-4


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation (max - min) / max in [0, 1], lightly smoothed so JPEG and sensor noise do not speckle the
    mask. Computed directly: skimage's rgb2hsv also works out hue, at several times the cost."""
    high = rgb.max(axis=-1).astype(np.float32)
    low = rgb.min(axis=-1).astype(np.float32)
    sat = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    return gaussian(sat, sigma=1.0, preserve_range=True)


def tissue_mask(thumbnail_rgb: np.ndarray) -> np.ndarray:
    """bool (h, w): True on tissue. An image with no tissue gives an all-False mask, not an error."""
    sat = saturation(np.asarray(thumbnail_rgb)[..., :3])
    if np.ptp(sat) < 1e-6:
        return np.zeros(sat.shape, bool)
    mask = sat > max(otsu_log_threshold(sat), MIN_SATURATION)
    return clean_mask(mask)


def otsu_log_threshold(sat: np.ndarray) -> float:
    """Otsu's threshold on log(saturation + eps), returned on the saturation scale."""
    return float(np.exp(threshold_otsu(np.log(sat + SATURATION_EPS))) - SATURATION_EPS)


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Drop specks and fill small holes (fat, lumina, tears), both scaled to the image size."""
    area = mask.size
    mask = remove_small_objects(mask, max_size=max(1, int(area * SMALL_OBJECT_FRACTION)))
    return remove_small_holes(mask, max_size=max(1, int(area * SMALL_HOLE_FRACTION)))
