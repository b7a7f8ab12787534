"""Tissue detection on a thumbnail: stained tissue is saturated, glass and background are grey or white.

Otsu runs on log saturation. On a linear scale pale tissue (fat, loose stroma, saturation ~0.1) sits close to
the glass (~0.01) while dense, nuclei-rich tissue reaches 0.5, so Otsu splits pale from dark tissue and drops
the pale; the log scale spreads the low end, where the tissue/glass boundary lies.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation
from skimage.filters import gaussian, threshold_otsu
from skimage.morphology import disk, remove_small_holes, remove_small_objects

# Keeps log() finite on pure white and damps noise in nearly white pixels.
SATURATION_EPS = 0.01
# Otsu always splits, even an empty slide's JPEG noise; below this saturation nothing counts as tissue.
MIN_SATURATION = 0.05
# Clean-up sizes as fractions of the thumbnail's area, so they mean the same at any thumbnail size.
SMALL_OBJECT_FRACTION = 1e-4
SMALL_HOLE_FRACTION = 5e-4
# Artefacts that `remove` can take out. H&E hues run from purple (haematoxylin, ~250-300°: red above green)
# through pink to red (eosin); marker pens are green to blue with red below green (hue < ~235°), and black
# marker, dust and folds' dark edges are near black in every channel. Red pen looks like eosin: not removable.
ARTEFACTS = ("pen", "black")
PEN_HUE_DEGREES = (60.0, 235.0)
PEN_MIN_SATURATION = 0.2
BLACK_MAX_VALUE = 60
# Pen strokes have soft, anti-aliased edges: grow the removed area by this many thumbnail pixels.
ARTEFACT_MARGIN_PX = 2


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation (max - min) / max in [0, 1], lightly smoothed so JPEG and sensor noise do not speckle the
    mask. Computed directly: skimage's rgb2hsv also works out hue, at several times the cost."""
    high = rgb.max(axis=-1).astype(np.float32)
    low = rgb.min(axis=-1).astype(np.float32)
    sat = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    return gaussian(sat, sigma=1.0, preserve_range=True)


def tissue_mask(thumbnail_rgb: np.ndarray, remove: tuple[str, ...] | list[str] = ()) -> np.ndarray:
    """bool (h, w): True on tissue. An image with no tissue gives an all-False mask, not an error.

    `remove` names artefacts (see ARTEFACTS) to take out; they are left out of the threshold too, because
    saturated ink would otherwise pull Otsu's threshold up and drop pale tissue.
    """
    rgb = np.asarray(thumbnail_rgb)[..., :3]
    sat = saturation(rgb)
    artefacts = artefact_mask(rgb, remove) if remove else np.zeros(sat.shape, bool)
    usable = sat[~artefacts]
    if usable.size == 0 or np.ptp(usable) < 1e-6:
        return np.zeros(sat.shape, bool)
    mask = (sat > max(otsu_log_threshold(usable), MIN_SATURATION)) & ~artefacts
    return clean_mask(mask)


def artefact_mask(rgb: np.ndarray, kinds) -> np.ndarray:
    """bool (h, w): pixels of pen marks and/or black artefacts, grown by a small margin."""
    unknown = set(kinds) - set(ARTEFACTS)
    if unknown:
        raise ValueError(f"unknown artefact(s) {sorted(unknown)}; choose from {list(ARTEFACTS)}")
    rgb = rgb.astype(np.float32)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    found = np.zeros(high.shape, bool)
    if "pen" in kinds:
        hue = _hue_degrees(rgb, high, low)
        sat = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
        found |= (hue >= PEN_HUE_DEGREES[0]) & (hue <= PEN_HUE_DEGREES[1]) & (sat >= PEN_MIN_SATURATION)
    if "black" in kinds:
        found |= high <= BLACK_MAX_VALUE
    return binary_dilation(found, structure=disk(ARTEFACT_MARGIN_PX)) if found.any() else found


def _hue_degrees(rgb: np.ndarray, high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """HSV hue in [0, 360); 0 where grey."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    span = np.where(high > low, high - low, 1.0)
    hue = np.where(high == r, (g - b) / span % 6, np.where(high == g, (b - r) / span + 2, (r - g) / span + 4))
    return np.where(high > low, hue * 60.0, 0.0)


def otsu_log_threshold(sat: np.ndarray) -> float:
    """Otsu's threshold on log(saturation + eps), returned on the saturation scale."""
    return float(np.exp(threshold_otsu(np.log(sat + SATURATION_EPS))) - SATURATION_EPS)


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Drop specks and fill small holes (fat, lumina, tears), both scaled to the image size."""
    area = mask.size
    mask = remove_small_objects(mask, max_size=max(1, int(area * SMALL_OBJECT_FRACTION)))
    return remove_small_holes(mask, max_size=max(1, int(area * SMALL_HOLE_FRACTION)))
