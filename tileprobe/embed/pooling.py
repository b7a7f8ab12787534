"""Layers and pooling: intermediate layers caught by forward hooks in one pass, each pooled to one vector.
"""

from __future__ import annotations

from typing import Callable

import torch

from tileprobe.embed.backbone import BackboneError

FINAL = "final"


POOLS = ("avg", "max", "gem", "cls", "cls_mean", "mean_tokens")


# Config pool names onto timm's own pooling for `final` (keeps head norms such as ConvNeXt's in place) ...
TIMM_POOLS = {"avg": "avg", "mean_tokens": "avg", "max": "max", "cls": "token"}


POOL_HINT = "CNNs take avg, max or gem; ViTs take avg (= mean_tokens), max, cls or cls_mean"


def _gem(x: torch.Tensor, name: str, p: float = 3.0) -> torch.Tensor:
    """Generalised mean over a CNN feature map (B, C, H, W) -> (B, C)."""
    if x.ndim != 4:
        raise BackboneError(f"backbone {name}: pool gem needs a CNN feature map, got shape {tuple(x.shape)}; {POOL_HINT}")
    return x.float().clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p).to(x.dtype)


def _cls_mean(x: torch.Tensor, name: str, prefix: int) -> torch.Tensor:
    """Class token next to the mean of patch tokens (B, N, D) -> (B, 2D), the usual ViT linear-probe input."""
    if x.ndim != 3 or prefix < 1:
        raise BackboneError(
            f"backbone {name}: pool cls_mean needs a ViT with a class token, got shape {tuple(x.shape)}; {POOL_HINT}"
        )
    return torch.cat([x[:, 0], x[:, prefix:].mean(dim=1)], dim=1)


def pool_activation(x: torch.Tensor, pool: str, prefix: int, name: str, layer: str) -> torch.Tensor:
    """One vector per tile from an intermediate activation: a CNN map (B, C, H, W) or ViT tokens (B, N, D).

    Token pools skip the `prefix` tokens (class and register tokens) when averaging, as timm's own `avg` does.
    """
    if x.ndim == 4:
        if pool in ("avg", "mean_tokens"):
            return x.mean(dim=(2, 3))
        if pool == "max":
            return x.amax(dim=(2, 3))
        if pool == "gem":
            return _gem(x, name)
    elif x.ndim == 3:
        if pool in ("avg", "mean_tokens"):
            return x[:, prefix:].mean(dim=1)
        if pool == "max":
            return x[:, prefix:].amax(dim=1)
        if pool == "cls" and prefix >= 1:
            return x[:, 0]
        if pool == "cls_mean":
            return _cls_mean(x, name, prefix)
    elif x.ndim == 2:
        return x
    raise BackboneError(
        f"backbone {name}: pool {pool!r} does not fit layer {layer!r} (output shape {tuple(x.shape)}); {POOL_HINT}"
    )


def _pooled(model: torch.nn.Module, pool: str, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from normalised pixels to one (B, dim) vector per tile, pooled as the spec asks."""
    prefix = int(getattr(model, "num_prefix_tokens", 0))
    own = {"gem": lambda x: _gem(x, name), "cls_mean": lambda x: _cls_mean(x, name, prefix)}
    if pool not in TIMM_POOLS and pool not in own:
        raise BackboneError(f"backbone {name}: unknown pool {pool!r}; {POOL_HINT}")
    try:
        model.reset_classifier(0, global_pool=TIMM_POOLS.get(pool, ""))
    except Exception as exc:  # timm asserts on pools a model lacks
        raise BackboneError(f"backbone {name}: pool {pool!r} does not fit this model ({exc}); {POOL_HINT}") from exc

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        out = own[pool](out) if pool in own else out
        if out.ndim != 2:
            raise BackboneError(f"backbone {name}: pool {pool!r} left shape {tuple(out.shape)}; {POOL_HINT}")
        return out

    return forward


def layer_names(model: torch.nn.Module) -> list[str]:
    """The layers a config can name: `final` and timm's feature stages / ViT blocks, dots written as '-'."""
    info = getattr(model, "feature_info", None) or []
    modules = [f["module"] for f in info if isinstance(f, dict) and f.get("module")]
    return [FINAL, *(m.replace(".", "-") for m in modules)]


class _Enough(Exception):
    """Raised by the last hook when `final` is not wanted: the rest of the network need not run."""


def layered_forward(model: torch.nn.Module, layers: list[str], pool: str, name: str) -> Callable:
    """forward(x) -> {layer: (B, dim)} for every wanted layer, all from one pass through `model`.

    Intermediate layers are caught by forward hooks on their modules (any module path, `.` written `-`).
    """
    modules = dict(model.named_modules())
    targets = {}
    for layer in layers:
        if layer == FINAL:
            continue
        module = modules.get(layer.replace("-", "."))
        if module is None or module is model:
            raise BackboneError(
                f"backbone {name}: unknown layer {layer!r}; available: {layer_names(model)} "
                "(any submodule path works, with '.' written as '-', e.g. blocks-6)"
            )
        targets[layer] = module
    want_final = FINAL in layers
    final = _pooled(model, pool, name) if want_final else None
    prefix = int(getattr(model, "num_prefix_tokens", 0))
    caught: dict[str, torch.Tensor] = {}

    def hook_for(layer: str) -> Callable:
        def hook(_module, _inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            caught[layer] = pool_activation(out, pool, prefix, name, layer)
            if not want_final and len(caught) == len(targets):
                raise _Enough

        return hook

    for layer, module in targets.items():
        module.register_forward_hook(hook_for(layer))

    def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
        caught.clear()
        out: dict[str, torch.Tensor] = {}
        try:
            if want_final:
                out[FINAL] = final(x)
            else:
                model(x)
        except _Enough:
            pass
        missing = [layer for layer in targets if layer not in caught]
        if missing:
            raise BackboneError(f"backbone {name}: layer(s) {missing} did not run in the forward pass; pick others")
        out.update(caught)
        caught.clear()
        return out

    return forward
