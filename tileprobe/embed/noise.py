"""A deliberately useless backbone: features drawn from a seeded random generator, independent of the pixels.

`model: noise:DIM` (e.g. `noise:64`) gives DIM-wide Gaussian features seeded by a hash of each tile's pixels: the
same tile always gets the same vector (reruns are reproducible), yet no two tiles' vectors are related, so
they carry nothing a head could learn. It is the floor every real backbone should beat: backbone selection must rank it last and heads on it must score near chance. It costs nothing,
so the demo can afford it.
"""

from __future__ import annotations

import hashlib

import torch

from tileprobe.embed.backbone import Backbone, BackboneError
from tileprobe.embed.registry import register_family
from tileprobe.embed.weights import weightless_info

NOISE_LAYERS = ("final",)


@register_family("noise")
def build_noise(spec: dict, input_px: int | None, device: torch.device) -> Backbone:
    name = spec["model"]
    dim = name.partition(":")[2] or "64"
    if not dim.isdigit() or int(dim) < 1:
        raise BackboneError(f"backbone {name}: write the noise width as a positive integer, e.g. `model: noise:64`")
    info = weightless_info(spec, list(NOISE_LAYERS), "a noise backbone has")
    # Seeded per tile by its pixels, not by its position: one seed for a whole slide would give tile i of every
    # slide the same vector, and tile order follows position on the slide, which can carry the label.
    salt = int(spec.get("seed") or 0)

    def draw(tile: torch.Tensor) -> torch.Tensor:
        digest = hashlib.sha256(tile.detach().cpu().numpy().tobytes()).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") ^ salt)
        return torch.randn(int(dim), generator=generator)

    def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"final": torch.stack([draw(tile) for tile in x]).to(x.device)}

    info.update(spec={k: spec[k] for k in sorted(spec)}, family="noise", model=name, draws="sha256 of tile pixels")
    return Backbone(
        name=name, forward=forward, layers=list(spec["layers"]), input_px=int(spec["input_px"] or input_px or 32),
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), batch_size=int(spec["batch_size"]), dtype="float32",
        device=device, info=info,
    )
