"""Backbone specs and the registry of families.

A backbone spec (one entry of the config's `backbones:`) is resolved through a registry of *families*: a
builder registered with `@register_family(name)` turns a checked spec into a `Backbone`. The model name picks
the family by prefix (`family:name`); names without a registered prefix go to timm. Families live in their own
modules and import this one; `tileprobe.embed.load` imports the built-in ones, so `load_backbone` knows them
all.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Callable

from tileprobe.config.defaults import fill_defaults, section_keys
from tileprobe.embed.backbone import DTYPES, Backbone, BackboneError
from tileprobe.embed.pooling import POOL_HINT, POOLS

SPEC_KEYS = section_keys("backbone")


_FAMILIES: dict[str, Callable[..., "Backbone"]] = {}


def register_family(name: str) -> Callable:
    """Register `builder(spec, input_px, device) -> Backbone` for model names written `name:...`."""

    def decorate(builder: Callable[..., Backbone]) -> Callable[..., Backbone]:
        if name in _FAMILIES:
            raise ValueError(f"backbone family {name!r} is registered twice")
        _FAMILIES[name] = builder
        return builder

    return decorate


def unregister_family(name: str) -> None:
    """Forget a family (tests register throwaway ones)."""
    _FAMILIES.pop(name, None)


def families() -> list[str]:
    return sorted(_FAMILIES)


def _split_family(model: str) -> tuple[str, str]:
    """`family:name` when the prefix is a registered family; otherwise the whole name goes to timm."""
    prefix, sep, rest = model.partition(":")
    if sep and prefix in _FAMILIES:
        return prefix, rest
    return "timm", model


def check_spec(spec: dict) -> dict:
    """Fill defaults and check types; the error names the key and says the fix."""
    if not isinstance(spec, dict) or "model" not in spec:
        raise BackboneError(f"backbone spec {spec!r} has no 'model': set e.g. `model: resnet18`")
    name = spec["model"]
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        hints = [difflib.get_close_matches(k, SPEC_KEYS, n=1) for k in unknown]
        said = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in zip(unknown, hints))
        raise BackboneError(f"backbone {name}: unknown key(s) {said}; allowed: {', '.join(sorted(SPEC_KEYS))}")
    # Keys the schema gives no default are None: pool (the model's recommended one, else avg), input_px.
    spec = {**dict.fromkeys(SPEC_KEYS), **fill_defaults("backbone", spec)}
    if isinstance(spec["layers"], str):
        spec["layers"] = [spec["layers"]]
    if not spec["layers"]:
        raise BackboneError(f"backbone {name}: `layers` is empty; list at least one, e.g. [final]")
    for layer in spec["layers"]:
        if not isinstance(layer, str) or not layer or "." in layer or "/" in layer:
            raise BackboneError(
                f"backbone {name}: layer {layer!r} must be a plain name (it names directories); write module "
                "paths with '-' for '.', e.g. blocks-6 or stages-2"
            )
    if len(set(spec["layers"])) != len(spec["layers"]):
        raise BackboneError(f"backbone {name}: `layers` {spec['layers']} names a layer twice; list each once")
    if spec["pool"] is not None and spec["pool"] not in POOLS:
        raise BackboneError(f"backbone {name}: unknown pool {spec['pool']!r}; {POOL_HINT}")
    if spec["dtype"] not in DTYPES:
        raise BackboneError(f"backbone {name}: dtype {spec['dtype']!r} is not one of {sorted(DTYPES)}")
    for key in ("batch_size", "input_px"):
        value = spec[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise BackboneError(f"backbone {name}: `{key}` must be a positive integer, got {value!r}")
    if not isinstance(spec["weights"], (str, Path)):
        raise BackboneError(f"backbone {name}: `weights` must be none, hub or a file path, got {spec['weights']!r}")
    spec["weights"] = str(spec["weights"])
    return spec


def family_of(model: str) -> str:
    """The family a model name belongs to (`handcrafted`, `noise`, ... or `timm`)."""
    return _split_family(model)[0]


def family_builder(model: str) -> Callable[..., Backbone]:
    """The registered builder for a model name (`family:name`, or timm for any other name)."""
    family, _ = _split_family(model)
    return _FAMILIES[family]
