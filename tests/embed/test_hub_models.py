"""hf-hub models offline: the table's architectures and transforms, the local hub cache, and clear failures."""

import json

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from tileprobe.embed import hub_models
from tileprobe.embed.backbone import BackboneError
from tileprobe.embed.load import load_backbone

# Published sizes (model cards): parameters in millions, feature width as each card uses it.
PUBLISHED = {
    "MahmoodLab/UNI": (303, 1024),
    "MahmoodLab/UNI2-h": (681, 1536),
    "paige-ai/Virchow2": (631, 2560),
    "bioptimus/H-optimus-0": (1135, 1536),
    "owkin/phikon-v2": (303, 1024),
    "prov-gigapath/prov-gigapath": (1135, 1536),
}


@pytest.mark.parametrize("repo", sorted(hub_models.HUB_MODELS))
def test_table_builds_the_published_architecture(repo):
    entry = hub_models.lookup(f"hf-hub:{repo}")
    with torch.device("meta"):  # no memory, no init cost: the shapes are what is checked
        model = timm.create_model(entry["architecture"], num_classes=0, **hub_models.timm_kwargs(entry))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    million, width = PUBLISHED[repo]
    assert abs(params - million) < 0.01 * million
    assert model.num_features * (2 if entry["pool"] == "cls_mean" else 1) == width == entry["dim"]
    assert model.patch_embed.img_size == (entry["input_px"],) * 2


def test_hub_name_with_no_weights_builds_offline_with_its_transforms():
    backbone = load_backbone({"model": "hf-hub:MahmoodLab/UNI", "weights": "none"}, 256)
    assert backbone.input_px == 224  # the model's size, not the tile's
    assert backbone.mean == pytest.approx((0.485, 0.456, 0.406)) and backbone.dims == {"final": 1024}
    prov = backbone.provenance()
    assert prov["pool"] == "cls" and prov["architecture"] == "vit_large_patch16_224" and prov["hub_table"]
    out = backbone.embed(torch.full((1, 256, 256, 3), 200, dtype=torch.uint8))["final"]
    assert out.shape == (1, 1024) and np.isfinite(out).all()


def test_unknown_hub_model_without_network_says_what_to_do():
    with pytest.raises(BackboneError, match=r"offline table.*weights: hub.*HF_HUB_OFFLINE"):
        load_backbone({"model": "hf-hub:someone/unknown-model", "weights": "none"}, 224)


def test_transformers_only_hub_weights_are_refused_with_the_fix():
    with pytest.raises(BackboneError, match=r"transformers.*\.safetensors"):
        load_backbone({"model": "hf-hub:owkin/phikon-v2", "weights": "hub"}, 224)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1 with a hub cache in tmp_path, as huggingface_hub reads them at call time."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def cache_repo(cache, repo, files):
    """Lay files out as the hub cache does: refs/main -> snapshots/<commit>/."""
    commit = "0" * 40
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, write in files.items():
        write(snapshot / name)


def test_hub_weights_come_from_the_local_cache_offline(offline_hub):
    torch.manual_seed(7)
    source = timm.create_model("test_resnet", pretrained=False, num_classes=0).eval()
    config = {"architecture": "test_resnet", "num_classes": 0, "num_features": 96,
              "pretrained_cfg": {"input_size": [3, 160, 160], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                                 "interpolation": "bilinear", "num_classes": 0}}
    cache_repo(offline_hub, "lab/tiny", {
        "config.json": lambda p: p.write_text(json.dumps(config)),
        "model.safetensors": lambda p: save_file({k: v.contiguous() for k, v in source.state_dict().items()}, p),
    })
    backbone = load_backbone({"model": "hf-hub:lab/tiny", "weights": "hub"}, 64)
    assert backbone.mean == pytest.approx((0.5, 0.5, 0.5)) and backbone.std == pytest.approx((0.25, 0.25, 0.25))
    batch = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8))
    with torch.inference_mode():
        expected = source(backbone.preprocess(batch)).numpy()
    np.testing.assert_allclose(backbone.embed(batch)["final"], expected, rtol=1e-5, atol=1e-6)
    assert backbone.provenance()["weights_sha256"] is not None


def test_hub_weights_missing_offline_stop_with_how_to_provide_them(offline_hub):
    with pytest.raises(BackboneError) as err:
        load_backbone({"model": "hf-hub:MahmoodLab/UNI", "weights": "hub"}, 224)
    message = str(err.value)
    assert "cannot be had" in message and "huggingface-cli download MahmoodLab/UNI" in message
    assert "HF_HUB_OFFLINE=1" in message and "`weights:`" in message


def test_hub_name_with_a_weights_file_builds_from_the_table_offline(tmp_path, monkeypatch):
    """A table entry (a small ViT stands in for a 300M+ one) + a local checkpoint: no hub, strict loading."""
    entry = {"architecture": "test_vit", "kwargs": {"img_size": 64}, "input_px": 64, "mean": (0.7, 0.6, 0.7),
             "std": (0.2, 0.2, 0.2), "interpolation": "bicubic", "pool": "cls_mean", "dim": 128}
    monkeypatch.setitem(hub_models.HUB_MODELS, "lab/small-vit", entry)
    monkeypatch.setitem(hub_models._BY_LOWER, "lab/small-vit", "lab/small-vit")
    torch.manual_seed(3)
    source = timm.create_model("test_vit", img_size=64, num_classes=0).eval()
    path = tmp_path / "vit.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in source.state_dict().items()}, path)
    backbone = load_backbone({"model": "hf-hub:lab/small-vit", "weights": str(path)}, 96)
    assert backbone.input_px == 64 and backbone.mean == (0.7, 0.6, 0.7) and backbone.interpolation == "bicubic"
    batch = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 96, 96, 3), dtype=np.uint8))
    with torch.inference_mode():
        tokens = source.forward_features(backbone.preprocess(batch))
    expected = torch.cat([tokens[:, 0], tokens[:, source.num_prefix_tokens:].mean(1)], dim=1).numpy()
    np.testing.assert_allclose(backbone.embed(batch)["final"], expected, rtol=1e-4, atol=1e-5)
    state = dict(source.state_dict())
    state.pop("cls_token")
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "short.safetensors")
    with pytest.raises(BackboneError, match=r"missing keys \(1\): cls_token"):
        load_backbone({"model": "hf-hub:lab/small-vit", "weights": str(tmp_path / "short.safetensors")}, 64)
