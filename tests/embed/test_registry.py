import hashlib

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from tileprobe.embed import registry as backbones
from tileprobe.embed.backbone import Backbone, BackboneError
from tileprobe.embed.load import load_backbone
from tileprobe.embed.registry import register_family

CNN = {"model": "test_resnet", "weights": "none"}


def tiles(n=3, px=64, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, px, px, 3), dtype=np.uint8))


def test_random_init_is_deterministic_per_seed():
    a = load_backbone(CNN, 64).embed(tiles())["final"]
    b = load_backbone(CNN, 64).embed(tiles())["final"]
    c = load_backbone({**CNN, "seed": 1}, 64).embed(tiles())["final"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_dims_and_output_types():
    backbone = load_backbone(CNN, 64)
    out = backbone.embed(tiles(5))
    assert backbone.dims == {"final": 96}
    assert set(out) == {"final"} and out["final"].shape == (5, 96) and out["final"].dtype == np.float32
    assert load_backbone({"model": "test_vit", "pool": "cls_mean"}, 64).dims == {"final": 128}


def test_normalisation_comes_from_timm_and_is_applied():
    backbone = load_backbone({"model": "test_efficientnet"}, 32)
    assert backbone.mean == pytest.approx((0.485, 0.456, 0.406))
    assert backbone.std == pytest.approx((0.229, 0.224, 0.225))
    batch = tiles(2, 32)
    x = batch.permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(backbone.mean).view(1, 3, 1, 1)) / torch.tensor(backbone.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = backbone.forward(x)["final"].numpy()
    np.testing.assert_allclose(backbone.embed(batch)["final"], expected, rtol=1e-5, atol=1e-5)
    with torch.inference_mode():
        unnormalised = backbone.forward(batch.permute(0, 3, 1, 2).float() / 255)["final"].numpy()
    assert not np.allclose(unnormalised, expected, atol=1e-3)


def test_input_size_defaults_and_resizing():
    assert load_backbone(CNN, 48).input_px == 48
    assert load_backbone({"model": "test_vit"}, 48).input_px == 160  # fixed-size model keeps its native size
    assert load_backbone({**CNN, "input_px": 32}, 48).input_px == 32
    backbone = load_backbone(CNN, 64)
    # A flat colour stays flat when resized, so a small tile must embed like a native-size one.
    small = torch.full((1, 32, 32, 3), 120, dtype=torch.uint8)
    native = torch.full((1, 64, 64, 3), 120, dtype=torch.uint8)
    np.testing.assert_allclose(backbone.embed(small)["final"], backbone.embed(native)["final"], atol=1e-5)


def _source_model(seed=123):
    torch.manual_seed(seed)
    return timm.create_model("test_resnet", pretrained=False, num_classes=0).eval()


def _wrapped_state(model):
    """A state dict as DDP training saves it, with a classifier that a feature extractor should drop."""
    state = {f"module.{k}": v.clone().contiguous() for k, v in model.state_dict().items()}
    state["module.fc.weight"] = torch.zeros(10, 96)
    return state


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_weights_file_loads_into_the_model(tmp_path, suffix):
    source = _source_model()
    path = tmp_path / f"weights{suffix}"
    state = _wrapped_state(source)
    save_file(state, path) if suffix == ".safetensors" else torch.save({"state_dict": state}, path)
    backbone = load_backbone({"model": "test_resnet", "weights": str(path)}, 64)
    batch = tiles()
    with torch.inference_mode():
        expected = source(backbone.preprocess(batch)).numpy()
    np.testing.assert_allclose(backbone.embed(batch)["final"], expected, rtol=1e-5, atol=1e-6)
    prov = backbone.provenance()
    assert prov["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov["dropped_head_keys"] == 1


def test_weights_that_do_not_fit_name_the_keys(tmp_path):
    state = _wrapped_state(_source_model())
    del state["module.conv1.0.weight"]
    state["module.extra_block.weight"] = torch.zeros(3)
    path = tmp_path / "bad.safetensors"
    save_file(state, path)
    with pytest.raises(BackboneError) as err:
        load_backbone({"model": "test_resnet", "weights": str(path)}, 64)
    message = str(err.value)
    assert "conv1.0.weight" in message and "extra_block.weight" in message and str(path) in message


def test_weights_with_wrong_shapes_are_refused(tmp_path):
    state = {k: v.clone() for k, v in _source_model().state_dict().items()}
    state["conv1.0.weight"] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    with pytest.raises(BackboneError, match=r"shape mismatches.*conv1\.0\.weight"):
        load_backbone({"model": "test_resnet", "weights": str(path)}, 64)


def test_missing_weights_file(tmp_path):
    with pytest.raises(BackboneError, match="does not exist"):
        load_backbone({"model": "test_resnet", "weights": str(tmp_path / "nope.safetensors")}, 64)


def test_bad_spec_errors_say_the_fix():
    with pytest.raises(BackboneError, match="did you mean resnet18"):
        load_backbone({"model": "resnet19"}, 64)
    with pytest.raises(BackboneError, match="did you mean 'weights'"):
        load_backbone({**CNN, "weigths": "none"}, 64)
    with pytest.raises(BackboneError, match=r"unknown layer.*block9.*final"):
        load_backbone({**CNN, "layers": ["block9"]}, 64)
    with pytest.raises(BackboneError, match="test_resnet: pool 'cls'"):
        load_backbone({**CNN, "pool": "cls"}, 64)
    with pytest.raises(BackboneError, match="dtype"):
        load_backbone({**CNN, "dtype": "int8"}, 64)


def test_dtypes_on_cpu():
    with pytest.warns(UserWarning, match="float16"):
        half = load_backbone({**CNN, "dtype": "float16"}, 64, device="cpu")
    assert half.dtype == "float32"
    bf16 = load_backbone({**CNN, "dtype": "bfloat16"}, 64, device="cpu")
    full = load_backbone(CNN, 64, device="cpu")
    a, b = bf16.embed(tiles())["final"], full.embed(tiles())["final"]
    assert a.dtype == np.float32 and bf16.provenance()["dtype"] == "bfloat16"
    np.testing.assert_allclose(a, b, rtol=0.1, atol=0.1)


def test_embed_refuses_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        load_backbone(CNN, 64).embed(torch.zeros(1, 64, 64, 3))


def test_provenance_is_complete():
    prov = load_backbone(CNN, 64).provenance()
    for key in ("model", "weights", "weights_sha256", "timm_version", "torch_version", "input_px", "mean", "std",
                "layers", "pool", "dtype", "dims", "spec"):
        assert key in prov, key
    assert prov["weights"] == "none" and prov["weights_sha256"] is None and prov["seed"] == 0


def test_registry_routes_prefixed_names():
    @register_family("toyfam")
    def build(spec, input_px, device):
        return Backbone(
            name=spec["model"], forward=lambda x: {"final": x.mean(dim=(2, 3))}, layers=["final"],
            input_px=input_px, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), batch_size=spec["batch_size"],
            dtype="float32", device=device,
        )

    try:
        backbone = load_backbone({"model": "toyfam:colour"}, 16)
        assert backbone.dims == {"final": 3}
        out = backbone.embed(torch.full((2, 16, 16, 3), 255, dtype=torch.uint8))["final"]
        np.testing.assert_allclose(out, 1.0)
        with pytest.raises(ValueError, match="twice"):
            register_family("toyfam")(build)
    finally:
        backbones.unregister_family("toyfam")
