"""Classic handcrafted features as a backbone: colour histograms and texture (LBP, GLCM, Gabor) via scikit-image.

The baseline that deep features are meant to beat. `model: handcrafted:all` (or a `+`-joined subset, e.g.
`handcrafted:colour+lbp`); its layers are the feature groups themselves plus `final`, their concatenation, so
`layers: [final, colour, lbp, glcm, gabor]` puts each group in its own row of the report.
"""

from __future__ import annotations

import numpy as np
import skimage
import torch
import torch.nn.functional as F
from skimage.color import rgb2hed, rgb2hsv
from skimage.feature import graycomatrix, graycoprops, local_binary_pattern
from skimage.filters import gabor_kernel

from tileprobe.embed.backbone import Backbone, BackboneError
from tileprobe.embed.pooling import FINAL
from tileprobe.embed.registry import register_family
from tileprobe.embed.weights import weightless_info

GROUPS = ("colour", "lbp", "glcm", "gabor")
RGB_BINS, HUE_BINS, SV_BINS = 16, 16, 8
LBP_SETTINGS = ((8, 1.0), (16, 2.0))  # (points, radius), "uniform" patterns: points + 2 bins each
GLCM_LEVELS, GLCM_DISTANCES = 32, (1, 2, 4)
GLCM_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
GLCM_PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")
GABOR_FREQUENCIES = (0.1, 0.2, 0.3)  # cycles per pixel
GABOR_ANGLES = 4


def _grey(tiles: np.ndarray) -> np.ndarray:
    return (tiles @ np.array([0.299, 0.587, 0.114])).round().clip(0, 255).astype(np.uint8)


def colour(tiles: np.ndarray) -> np.ndarray:
    """RGB and HSV histograms (fractions of pixels) and mean/std of the HED stain channels."""
    out = []
    for tile in tiles:
        rgb = [np.histogram(tile[..., c], bins=RGB_BINS, range=(0, 256))[0] for c in range(3)]
        hsv = rgb2hsv(tile)
        hs = [np.histogram(hsv[..., 0], bins=HUE_BINS, range=(0, 1))[0],
              np.histogram(hsv[..., 1], bins=SV_BINS, range=(0, 1))[0],
              np.histogram(hsv[..., 2], bins=SV_BINS, range=(0, 1))[0]]
        hist = np.concatenate(rgb + hs) / (tile.shape[0] * tile.shape[1])
        hed = rgb2hed(tile).reshape(-1, 3)
        out.append(np.concatenate([hist, hed.mean(0), hed.std(0)]))
    return np.asarray(out, dtype=np.float32)


def lbp(tiles: np.ndarray) -> np.ndarray:
    """Histograms of rotation-invariant uniform local binary patterns at two radii."""
    grey = _grey(tiles)
    out = []
    for g in grey:
        parts = []
        for points, radius in LBP_SETTINGS:
            codes = local_binary_pattern(g, points, radius, method="uniform")
            parts.append(np.bincount(codes.astype(np.int64).ravel(), minlength=points + 2) / codes.size)
        out.append(np.concatenate(parts))
    return np.asarray(out, dtype=np.float32)


def glcm(tiles: np.ndarray) -> np.ndarray:
    """Haralick-style grey-level co-occurrence properties per distance, averaged over four directions."""
    grey = _grey(tiles) // (256 // GLCM_LEVELS)
    out = []
    for g in grey:
        matrix = graycomatrix(g, GLCM_DISTANCES, GLCM_ANGLES, levels=GLCM_LEVELS, symmetric=True, normed=True)
        out.append(np.concatenate([graycoprops(matrix, p).mean(axis=1) for p in GLCM_PROPS]))
    return np.nan_to_num(np.asarray(out, dtype=np.float32))  # correlation is NaN on a flat tile


_KERNELS: torch.Tensor | None = None


def _gabor_bank() -> torch.Tensor:
    """Real and imaginary parts of the Gabor bank, zero-padded to one size: (2 * n, 1, k, k)."""
    global _KERNELS
    if _KERNELS is None:
        kernels = [gabor_kernel(f, theta=np.pi * a / GABOR_ANGLES) for f in GABOR_FREQUENCIES
                   for a in range(GABOR_ANGLES)]
        size = max(k.shape[0] for k in kernels)
        bank = np.zeros((2 * len(kernels), 1, size, size), dtype=np.float32)
        for i, k in enumerate(kernels):
            top, left = (size - k.shape[0]) // 2, (size - k.shape[1]) // 2
            bank[2 * i, 0, top : top + k.shape[0], left : left + k.shape[1]] = k.real
            bank[2 * i + 1, 0, top : top + k.shape[0], left : left + k.shape[1]] = k.imag
        _KERNELS = torch.from_numpy(bank)
    return _KERNELS


def gabor(tiles: np.ndarray) -> np.ndarray:
    """Mean and std of Gabor magnitude responses (3 frequencies x 4 orientations), one batched convolution."""
    bank = _gabor_bank()
    grey = torch.from_numpy(_grey(tiles).astype(np.float32) / 255.0)[:, None]
    with torch.inference_mode():
        response = F.conv2d(F.pad(grey, [bank.shape[-1] // 2] * 4, mode="reflect"), bank)
        magnitude = response.view(len(tiles), -1, 2, *response.shape[-2:]).pow(2).sum(2).sqrt()
        stats = torch.cat([magnitude.mean(dim=(2, 3)), magnitude.std(dim=(2, 3))], dim=1)
    return stats.numpy().astype(np.float32)


EXTRACTORS = {"colour": colour, "lbp": lbp, "glcm": glcm, "gabor": gabor}


@register_family("handcrafted")
def build_handcrafted(spec: dict, input_px: int | None, device: torch.device) -> Backbone:
    name = spec["model"]
    what = name.partition(":")[2] or "all"
    groups = list(GROUPS) if what == "all" else what.split("+")
    bad = [g for g in groups if g not in EXTRACTORS]
    if bad or not groups:
        raise BackboneError(
            f"backbone {name}: unknown feature group(s) {bad}; write handcrafted:all or a '+'-joined subset of "
            f"{', '.join(GROUPS)}"
        )
    info = weightless_info(spec, [FINAL, *groups], "handcrafted features have")
    wanted = [g for g in groups if g in spec["layers"] or FINAL in spec["layers"]]

    def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
        # Backbone.embed hands over pixels scaled to [0, 1] (mean 0, std 1 below): back to uint8 for skimage.
        tiles = (x.float() * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        feats = {g: torch.from_numpy(EXTRACTORS[g](tiles)) for g in wanted}
        if FINAL in spec["layers"]:
            feats[FINAL] = torch.cat([feats[g] for g in groups], dim=1)
        return feats

    info.update(
        spec={k: spec[k] for k in sorted(spec)}, family="handcrafted", model=name, groups=groups,
        skimage_version=skimage.__version__, pool="none",
        settings={"rgb_bins": RGB_BINS, "hue_bins": HUE_BINS, "sv_bins": SV_BINS, "lbp": LBP_SETTINGS,
                  "glcm_levels": GLCM_LEVELS, "glcm_distances": GLCM_DISTANCES, "glcm_props": GLCM_PROPS,
                  "gabor_frequencies": GABOR_FREQUENCIES, "gabor_angles": GABOR_ANGLES},
    )
    return Backbone(
        name=name, forward=forward, layers=list(spec["layers"]), input_px=int(spec["input_px"] or input_px or 224),
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), batch_size=int(spec["batch_size"]), dtype="float32",
        device=torch.device("cpu"), info=info,
    )
