"""Handcrafted baseline features: each group sees what it is meant to see, and nothing else."""

import numpy as np
import pytest
import torch

from tileprobe.embed.backbone import BackboneError
from tileprobe.embed.load import load_backbone

ALL = {"model": "handcrafted:all", "layers": ["final", "colour", "lbp", "glcm", "gabor"]}
PX = 48


def stripes(vertical: bool, colour=(200, 80, 150), width=4) -> np.ndarray:
    """Stripes of a colour on white: the same pixels, only the orientation differs."""
    tile = np.full((PX, PX, 3), 255, np.uint8)
    band = (np.arange(PX) // width) % 2 == 0
    if vertical:
        tile[:, band] = colour
    else:
        tile[band, :] = colour
    return tile


def embed(spec, *images):
    return load_backbone(spec, PX).embed(torch.from_numpy(np.stack(images)))


def test_groups_and_final_concatenation():
    backbone = load_backbone(ALL, PX)
    out = backbone.embed(torch.from_numpy(np.stack([stripes(True), stripes(False)])))
    widths = {g: out[g].shape[1] for g in ("colour", "lbp", "glcm", "gabor")}
    assert backbone.dims["final"] == sum(widths.values())
    np.testing.assert_array_equal(out["final"], np.concatenate([out[g] for g in widths], axis=1))
    assert all(np.isfinite(a).all() for a in out.values())
    assert backbone.provenance()["family"] == "handcrafted"


def test_colour_sees_colour_and_texture_sees_orientation():
    out = embed(ALL, stripes(True), stripes(False), stripes(True, colour=(60, 60, 220)), stripes(True, width=2))
    # Vertical and horizontal stripes have identical pixels: colour histograms agree, oriented Gabor filters not.
    np.testing.assert_allclose(out["colour"][0], out["colour"][1], atol=1e-6)
    assert np.abs(out["gabor"][0] - out["gabor"][1]).max() > 1e-3
    # GLCM is averaged over four directions, so rotation-invariant, but it sees the stripes' spatial frequency.
    np.testing.assert_allclose(out["glcm"][0], out["glcm"][1], rtol=1e-5)
    assert np.abs(out["glcm"][0] - out["glcm"][3]).max() > 1e-2
    # Same texture in another colour: colour differs; rotation-invariant LBP does not.
    assert np.abs(out["colour"][0] - out["colour"][2]).max() > 0.1
    np.testing.assert_allclose(out["lbp"][0], out["lbp"][1], atol=1e-6)


def test_subset_and_errors():
    backbone = load_backbone({"model": "handcrafted:colour+lbp"}, PX)
    assert backbone.dims["final"] == 86 + 28
    with pytest.raises(BackboneError, match=r"unknown feature group.*'hog'"):
        load_backbone({"model": "handcrafted:hog"}, PX)
    with pytest.raises(BackboneError, match=r"unknown layer.*gabor.*available"):
        load_backbone({"model": "handcrafted:colour", "layers": ["gabor"]}, PX)
    with pytest.raises(BackboneError, match="no weights"):
        load_backbone({"model": "handcrafted:all", "weights": "hub"}, PX)
