"""Checkpoint files: hashing, safe loading (safetensors or weights_only torch.load), key matching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tileprobe.embed.backbone import BackboneError
from tileprobe.embed.checksum import cached_sha256

# Prefixes that training frameworks put in front of parameter names (DDP, Lightning, torch.compile, wrappers).
STRIP_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.", "encoder.", "trunk.")


# Classifier parameters: a feature extractor has no head, so a checkpoint's head is dropped, not an error.
HEAD_PREFIXES = ("fc.", "head.", "head_dist.", "heads.", "classifier.", "last_linear.")


def read_state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    """Tensors from .safetensors or a torch pickle loaded with weights_only (no code runs)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        elif path.suffix in (".pth", ".pt", ".bin", ".ckpt"):
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise BackboneError(
                f"backbone {name}: weights file {path} has suffix {path.suffix!r}; "
                "use .safetensors (preferred) or .pth/.pt/.bin"
            )
    except BackboneError:
        raise
    except Exception as exc:
        raise BackboneError(
            f"backbone {name}: cannot read weights file {path}: {exc}. If it is a full pickled model, re-save "
            "its state_dict (torch.save(model.state_dict(), ...)) or convert it to .safetensors"
        ) from exc
    # Training checkpoints wrap the weights: {"state_dict": {...}} or {"model": {...}}.
    for key in ("state_dict", "model", "model_state_dict", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(
            f"backbone {name}: {path} does not hold a state dict of tensors; save model.state_dict() instead"
        )
    return state


def match_keys(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> tuple[dict, list[str]]:
    """Rename checkpoint keys onto the model's: strip wrapper prefixes a key needs stripping, drop heads.

    Returns the renamed state and the dropped head keys; keys that still do not fit are left for the caller.
    """
    renamed: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        new = key
        while new not in expected and new.startswith(STRIP_PREFIXES):
            new = new.split(".", 1)[1]
        if new not in expected and new.startswith(HEAD_PREFIXES):
            dropped.append(key)
            continue
        renamed[new] = value
    return renamed, dropped


def _listing(keys: list[str], limit: int = 8) -> str:
    more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_weights_file(model: torch.nn.Module, path: Path, name: str) -> list[str]:
    """Load a checkpoint into `model` strictly; any key or shape that does not fit is a BackboneError."""
    expected = model.state_dict()
    state, dropped = match_keys(read_state_dict(path, name), expected)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
    if wrong_shape:
        problems.append(f"shape mismatches ({len(wrong_shape)}): {_listing(wrong_shape)}")
    if problems:
        raise BackboneError(
            f"backbone {name}: weights file {path} does not fit the model: " + "; ".join(problems)
            + ". Check that `model` names the architecture the checkpoint was trained with"
        )
    model.load_state_dict(state, strict=True)
    return dropped


def weights_info(spec: dict) -> tuple[Path | None, dict[str, Any]]:
    weights = spec["weights"]
    if weights in ("none", "hub"):
        info = {"weights": weights, "weights_sha256": None}
        if weights == "none":
            info["seed"] = int(spec["seed"])
        return None, info
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BackboneError(
            f"backbone {spec['model']}: weights file {path} does not exist; "
            "set `weights:` to none, hub, or an existing .safetensors/.pth file"
        )
    return path, {"weights": str(weights), "weights_sha256": cached_sha256(path)}


def weightless_info(spec: dict, layers: list[str], what: str) -> dict[str, Any]:
    """The provenance of a family with no weights and a fixed set of `layers` (noise, handcrafted features):
    another layer, or `weights:` other than none, is an error naming the backbone and the fix."""
    name = spec["model"]
    wrong = [layer for layer in spec["layers"] if layer not in layers]
    if wrong:
        raise BackboneError(f"backbone {name}: unknown layer(s) {wrong}; available: {list(layers)}")
    if spec["weights"] != "none":
        raise BackboneError(f"backbone {name}: {what} no weights; set `weights: none`")
    return weights_info(spec)[1]


def hub_weights_sha256(model: torch.nn.Module) -> str | None:
    """Checksum of the cached hub file timm loaded, so a store records which hub revision made it."""
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    repo = cfg.get("hf_hub_id")
    if not repo:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin"):
            path = try_to_load_from_cache(repo, filename)
            if isinstance(path, str):
                return cached_sha256(path)
    except Exception:  # provenance only: a cache layout we do not know is no reason to stop
        return None
    return None
