"""An offline table of pathology foundation models published on the Hugging Face hub for timm.

`timm.create_model("hf-hub:org/name")` downloads the repository's config.json before it builds anything, so
without network (or without access to a gated repository) not even the architecture can be built. This table
holds what those configs and model cards say, so `weights: none` and `weights: PATH` build the right network
offline, with the right input size, normalisation and pooling. With `weights: hub` timm reads the hub (or its
local cache under HF_HUB_OFFLINE=1); the table's kwargs are passed too, as the model cards ask.

Sources, per entry: the model card (README) and config.json of each repository, as published on
huggingface.co. `transformers_only` marks repositories whose weights are for `transformers`, not timm.
"""

from __future__ import annotations

from typing import Any

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # timm.data.IMAGENET_DEFAULT_MEAN/STD

HUB_MODELS: dict[str, dict[str, Any]] = {
    # MahmoodLab/UNI card: create_model("hf-hub:MahmoodLab/UNI", init_values=1e-5, dynamic_img_size=True);
    # config.json: vit_large_patch16_224, 224 px, ImageNet mean/std; features = model(x), i.e. the class token.
    "MahmoodLab/UNI": {
        "architecture": "vit_large_patch16_224",
        "kwargs": {"img_size": 224, "patch_size": 16, "init_values": 1e-5, "dynamic_img_size": True},
        "input_px": 224, "mean": IMAGENET[0], "std": IMAGENET[1], "interpolation": "bilinear",
        "pool": "cls", "dim": 1024,
    },
    # MahmoodLab/UNI2-h card: timm_kwargs for vit_giant_patch14_224 (depth 24, 24 heads, 1536 wide, SwiGLU,
    # 8 register tokens, no class-token position embedding); ImageNet mean/std; the class token is the feature.
    "MahmoodLab/UNI2-h": {
        "architecture": "vit_giant_patch14_224",
        "kwargs": {"img_size": 224, "patch_size": 14, "depth": 24, "num_heads": 24, "init_values": 1e-5,
                   "embed_dim": 1536, "mlp_ratio": 2.66667 * 2, "no_embed_class": True,
                   "mlp_layer": "SwiGLUPacked", "act_layer": "silu", "reg_tokens": 8, "dynamic_img_size": True},
        "input_px": 224, "mean": IMAGENET[0], "std": IMAGENET[1], "interpolation": "bilinear",
        "pool": "cls", "dim": 1536,
    },
    # paige-ai/Virchow2 card: create_model(..., mlp_layer=SwiGLUPacked, act_layer=SiLU); config.json:
    # vit_huge_patch14_224, mlp_ratio 5.3375, 4 register tokens, bicubic, ImageNet mean/std. The card's
    # embedding is the class token next to the mean of the patch tokens (registers excluded): 2 x 1280.
    "paige-ai/Virchow2": {
        "architecture": "vit_huge_patch14_224",
        "kwargs": {"img_size": 224, "init_values": 1e-5, "mlp_ratio": 5.3375, "reg_tokens": 4,
                   "mlp_layer": "SwiGLUPacked", "act_layer": "silu", "dynamic_img_size": True},
        "input_px": 224, "mean": IMAGENET[0], "std": IMAGENET[1], "interpolation": "bicubic",
        "pool": "cls_mean", "dim": 2560,
    },
    # bioptimus/H-optimus-0 card and config.json: vit_giant_patch14_reg4_dinov2, 224 px, init_values 1e-5,
    # global_pool token (class token), its own stain-specific mean/std below.
    "bioptimus/H-optimus-0": {
        "architecture": "vit_giant_patch14_reg4_dinov2",
        "kwargs": {"img_size": 224, "init_values": 1e-5, "dynamic_img_size": False},
        "input_px": 224, "mean": (0.707223, 0.578729, 0.703617), "std": (0.211883, 0.230117, 0.177517),
        "interpolation": "bilinear", "pool": "cls", "dim": 1536,
    },
    # owkin/phikon-v2 card: a DINOv2 ViT-L/16 (transformers Dinov2Model, 224 px, layer scale), ImageNet
    # mean/std, feature = last_hidden_state[:, 0] (class token). Its weights use transformers key names,
    # so `weights: hub` cannot load them through timm; the architecture is timm's vit_large_patch16_224.
    "owkin/phikon-v2": {
        "architecture": "vit_large_patch16_224",
        "kwargs": {"img_size": 224, "init_values": 1e-5},
        "input_px": 224, "mean": IMAGENET[0], "std": IMAGENET[1], "interpolation": "bilinear",
        "pool": "cls", "dim": 1024, "transformers_only": True,
    },
    # prov-gigapath/prov-gigapath card and config.json: tile encoder vit_giant_patch14_dinov2 with patch 16,
    # depth 40, 24 heads, 1536 wide, mlp_ratio 5.33334, init_values 1e-5; ImageNet mean/std; class token.
    "prov-gigapath/prov-gigapath": {
        "architecture": "vit_giant_patch14_dinov2",
        "kwargs": {"img_size": 224, "patch_size": 16, "embed_dim": 1536, "depth": 40, "num_heads": 24,
                   "init_values": 1e-5, "mlp_ratio": 5.33334},
        "input_px": 224, "mean": IMAGENET[0], "std": IMAGENET[1], "interpolation": "bicubic",
        "pool": "cls", "dim": 1536,
    },
}
# Repository names are case-insensitive on the hub (the UNI card itself writes `MahmoodLab/uni`).
_BY_LOWER = {name.lower(): name for name in HUB_MODELS}


def hub_repo(model: str) -> str | None:
    """`org/name` of an `hf-hub:org/name[@revision]` model name, else None."""
    if not model.startswith("hf-hub:"):
        return None
    return model[len("hf-hub:"):].split("@", 1)[0]


def lookup(model: str) -> dict[str, Any] | None:
    """The table's entry for an `hf-hub:` model name, or None when the table does not know it."""
    repo = hub_repo(model)
    if repo is None or repo.lower() not in _BY_LOWER:
        return None
    key = _BY_LOWER[repo.lower()]
    return {"repo": key, **HUB_MODELS[key]}


def timm_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry's kwargs with named layers turned into the classes timm expects."""
    from timm.layers import SwiGLUPacked

    layers = {"SwiGLUPacked": SwiGLUPacked}
    return {k: layers.get(v, v) if k == "mlp_layer" else v for k, v in entry["kwargs"].items()}
