"""A frozen feature extractor: uint8 tiles in, float32 features per layer out; what every family builds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from tileprobe.errors import TileprobeError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class BackboneError(TileprobeError):
    """A backbone cannot be built or loaded; the message names the backbone, key or file and says the fix."""


@dataclass
class Backbone:
    """A frozen extractor: uint8 tiles in, float32 features per layer out.

    `forward` takes a normalised float batch (B, 3, input_px, input_px) on `device` and returns
    {layer: (B, dim) tensor}. Builders fill in the rest; `embed` does resizing, scaling and normalising.
    """

    name: str
    forward: Callable[[torch.Tensor], dict[str, torch.Tensor]]
    layers: list[str]
    input_px: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    batch_size: int
    dtype: str
    device: torch.device
    interpolation: str = "bilinear"
    info: dict[str, Any] = field(default_factory=dict)  # family-specific provenance
    dims: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)
        if not self.dims:
            # One probe batch: finds each layer's width and checks the model runs at input_px.
            probe = self.embed(torch.zeros(1, self.input_px, self.input_px, 3, dtype=torch.uint8))
            self.dims = {layer: int(a.shape[1]) for layer, a in probe.items()}

    def preprocess(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> normalised float (B, 3, input_px, input_px), channels_last, on device."""
        x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.input_px, self.input_px):
            x = F.interpolate(
                x, size=(self.input_px, self.input_px), mode=self.interpolation, antialias=True,
                align_corners=False,
            ).clamp_(0.0, 1.0)  # bicubic overshoots
        x = (x - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last)

    def embed(self, batch: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
        """Features for a batch of uint8 tiles (B, H, W, 3): {layer: float32 (B, dim)}."""
        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(batch)
        if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(
                f"backbone {self.name}: embed takes uint8 tiles shaped (B, H, W, 3), "
                f"got {batch.dtype} {tuple(batch.shape)}"
            )
        with torch.inference_mode():
            x = self.preprocess(batch)
            out = self._run(x)
        return {layer: out[layer].float().cpu().numpy() for layer in self.layers}

    def _run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        dtype = DTYPES[self.dtype]
        if self.device.type == "cuda" and dtype != torch.float32:
            with torch.autocast("cuda", dtype=dtype):
                return self.forward(x)
        # On CPU no autocast: the builder has cast the weights, so cast the input to match.
        return self.forward(x.to(dtype))

    def provenance(self) -> dict[str, Any]:
        """What made these features, as plain JSON types; stored with every embedding."""
        return {
            "model": self.name,
            **self.info,
            "input_px": int(self.input_px),
            "interpolation": self.interpolation,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "layers": list(self.layers),
            "dims": dict(self.dims),
            "dtype": self.dtype,
            "torch_version": torch.__version__,
        }


def effective_dtype(name: str, dtype: str, device: torch.device) -> str:
    """float16 matmuls are slow or missing on CPU: fall back to float32 there and say so."""
    if device.type != "cuda" and dtype == "float16":
        warnings.warn(f"backbone {name}: dtype float16 is not supported on {device.type}; using float32")
        return "float32"
    return dtype


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
