"""Intermediate layers: CNN stages and ViT blocks, pooled, all from one forward pass."""

import numpy as np
import pytest
import timm
import torch

from tileprobe.embed.backbone import BackboneError
from tileprobe.embed.load import load_backbone

CNN = {"model": "test_resnet", "weights": "none"}


def tiles(n=3, px=64, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, px, px, 3), dtype=np.uint8))


def reference(name, batch, backbone, index, seed=0):
    """Feature maps / tokens of one stage through timm's own forward_intermediates: an independent path."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(name, pretrained=False, num_classes=0).eval()
    with torch.inference_mode():
        x = backbone.preprocess(batch).contiguous()
        return model.forward_intermediates(x, indices=[index], intermediates_only=True)[0]


def test_cnn_stages_are_pooled_as_asked_and_match_timm():
    batch = tiles()
    for pool, reduce in (("avg", lambda m: m.mean((2, 3))), ("max", lambda m: m.amax((2, 3))),
                         ("gem", lambda m: m.clamp(min=1e-6).pow(3).mean((2, 3)).pow(1 / 3))):
        backbone = load_backbone({**CNN, "layers": ["final", "layer2", "layer3"], "pool": pool}, 64)
        out = backbone.embed(batch)
        assert set(out) == {"final", "layer2", "layer3"}
        expected = reduce(reference("test_resnet", batch, backbone, 3)).numpy()  # feature_info[3] = layer3
        np.testing.assert_allclose(out["layer3"], expected, rtol=1e-4, atol=1e-5)
    assert backbone.dims["layer2"] != backbone.dims["layer3"]


def test_intermediate_layers_leave_final_unchanged_and_share_one_pass():
    batch = tiles()
    alone = load_backbone(CNN, 64).embed(batch)["final"]
    calls = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: calls.append(type(m).__name__) if type(m).__name__ == "ResNet" else None
    )
    try:
        both = load_backbone({**CNN, "layers": ["final", "layer2", "layer3"]}, 64)
        calls.clear()
        out = both.embed(batch)
    finally:
        handle.remove()
    assert calls == ["ResNet"]  # the whole network ran once for three layers
    np.testing.assert_array_equal(out["final"], alone)


def test_only_intermediate_layers_stop_early_and_agree():
    batch = tiles()
    early = load_backbone({**CNN, "layers": ["layer2"]}, 64).embed(batch)["layer2"]
    full = load_backbone({**CNN, "layers": ["final", "layer2"]}, 64).embed(batch)["layer2"]
    np.testing.assert_array_equal(early, full)


def test_vit_blocks_with_token_pools():
    batch = tiles(2)
    spec = {"model": "test_vit", "layers": ["final", "blocks-2"]}
    avg = load_backbone({**spec, "pool": "mean_tokens"}, 64)
    tokens_map = reference("test_vit", batch, avg, 2)  # NCHW patch tokens, prefix tokens left out
    np.testing.assert_allclose(avg.embed(batch)["blocks-2"], tokens_map.mean((2, 3)).numpy(), rtol=1e-4, atol=1e-5)
    cls_mean = load_backbone({**spec, "pool": "cls_mean"}, 64)
    cls = load_backbone({**spec, "pool": "cls"}, 64)
    out, out_cls = cls_mean.embed(batch)["blocks-2"], cls.embed(batch)["blocks-2"]
    assert cls_mean.dims["blocks-2"] == 2 * cls.dims["blocks-2"]
    np.testing.assert_allclose(out[:, : out_cls.shape[1]], out_cls, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, out_cls.shape[1]:], avg.embed(batch)["blocks-2"], rtol=1e-4, atol=1e-5)


def test_layer_errors_name_what_exists():
    with pytest.raises(BackboneError, match=r"unknown layer 'layer9'.*layer1.*layer4"):
        load_backbone({**CNN, "layers": ["layer9"]}, 64)
    with pytest.raises(BackboneError, match=r"blocks-6"):
        load_backbone({"model": "test_vit", "layers": ["blocks.6"]}, 64)
    with pytest.raises(BackboneError, match="twice"):
        load_backbone({**CNN, "layers": ["final", "final"]}, 64)
    with pytest.raises(BackboneError, match=r"pool 'gem' does not fit layer 'blocks-1'"):
        load_backbone({"model": "test_vit", "layers": ["blocks-1"], "pool": "gem"}, 64)
    with pytest.raises(BackboneError, match=r"pool 'cls' does not fit layer 'layer2'"):
        load_backbone({**CNN, "layers": ["layer2"], "pool": "cls"}, 64)
