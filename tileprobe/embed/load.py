"""`load_backbone`, the one way to build a backbone. Importing this module registers every built-in family."""

from __future__ import annotations

import torch

# Each family module registers itself with the registry on import.
from tileprobe.embed import handcrafted, noise, timm_models  # noqa: F401
from tileprobe.embed.backbone import Backbone, default_device
from tileprobe.embed.registry import check_spec, family_builder


def load_backbone(spec: dict, input_px: int | None = None, device: str | torch.device | None = None) -> Backbone:
    """Build the backbone a spec describes, in eval mode on `device` (default: cuda if available).

    `input_px` is the tile size; CNNs see tiles at that size unless the spec sets `input_px`, fixed-size
    models (ViTs) at their native size. Tiles of another size are resized.
    """
    spec = check_spec(spec)
    device = torch.device(device) if device is not None else default_device()
    return family_builder(spec["model"])(spec, input_px, device)
