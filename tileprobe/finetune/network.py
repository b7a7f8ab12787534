"""The trainable network of a fine-tuning variant: a timm backbone (pretrained, or random for `scratch`) and a new
linear output, with only the variant's parameters left trainable."""

from __future__ import annotations

import torch
from torch import nn

from tileprobe.embed.backbone import BackboneError
from tileprobe.embed.registry import check_spec, family_of

VARIANTS = ("partial", "full", "scratch")


class Network(nn.Module):
    """uint8 tiles (B, H, W, 3) in, outputs (B, n_out) out: resize, scale and normalise as the frozen extractor
    does, then the backbone's pooled features and a linear layer."""

    def __init__(self, backbone: nn.Module, n_features: int, n_out: int, preprocessing: dict):
        super().__init__()
        self.backbone, self.output = backbone, nn.Linear(n_features, n_out)
        self.input_px, self.interpolation = int(preprocessing["input_px"]), preprocessing["interpolation"]
        self.register_buffer("mean", torch.tensor(preprocessing["mean"], dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(preprocessing["std"], dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        x = tiles.permute(0, 3, 1, 2).float().div(255.0)
        if x.shape[-2:] != (self.input_px, self.input_px):
            x = nn.functional.interpolate(x, size=(self.input_px, self.input_px), mode=self.interpolation,
                                          antialias=True, align_corners=False).clamp(0.0, 1.0)
        return self.output(self.backbone((x - self.mean) / self.std))


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's units in forward order, containers of blocks (ResNet layers, ViT blocks, ConvNeXt stages)
    opened one level, and only units that hold parameters: what `partial_blocks` counts from the end."""
    units = []
    for name, child in model.named_children():
        inner = list(child.named_children()) if isinstance(child, (nn.Sequential, nn.ModuleList)) else []
        for sub, module in (inner if len(inner) > 1 else [("", child)]):
            if any(True for _ in module.parameters()):
                units.append((f"{name}.{sub}" if sub else name, module))
    return units


def build(spec: dict, variant: str, n_out: int, input_px: int | None, partial_blocks: int = 2) -> Network:
    """The network a variant trains. `scratch` ignores the spec's weights (random initialisation, seeded by the
    spec's `seed`); `partial` freezes all but the last `partial_blocks` blocks (and the new output)."""
    from tileprobe.embed.timm_models import timm_model

    if variant not in VARIANTS:
        raise BackboneError(f"fine-tuning variant {variant!r} is unknown; use one of {', '.join(VARIANTS)}.")
    spec = check_spec(spec)
    if family_of(spec["model"]) != "timm":
        raise BackboneError(f"backbone {spec['model']}: fine-tuning trains a network, and this backbone is not one "
                            "(handcrafted or noise features); remove `finetune` from the task or pick a timm model.")
    if variant == "scratch":
        spec = {**spec, "weights": "none"}
    model, preprocessing, _ = timm_model(spec, input_px)
    with torch.no_grad():  # the pooled width, from one probe image in eval mode (batch norm needs no batch)
        size = preprocessing["input_px"]
        n_features = int(model.eval()(torch.zeros(1, 3, size, size)).shape[-1])
    network = Network(model, n_features, n_out, preprocessing)
    if variant == "partial":
        units = blocks(model)
        model.requires_grad_(False)
        for _, module in units[-max(1, int(partial_blocks)):]:
            module.requires_grad_(True)
    return network.train()


def train_mode(network: nn.Module) -> None:
    """Train mode, but normalisation layers whose weights are frozen keep their running statistics: a frozen
    block must compute what it computed before, or `partial` would quietly change the frozen part too."""
    network.train()
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()):
            module.eval()


def trainable(network: nn.Module) -> list[str]:
    """Names of the parameters training changes (for model.json and tests)."""
    return [name for name, p in network.named_parameters() if p.requires_grad]
