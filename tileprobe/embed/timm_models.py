"""The timm family: any timm model, and `hf-hub:` models through timm (known pathology models build
offline from `tileprobe.embed.hub_models`). Nothing here touches the network unless `weights: hub` is asked for.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch

from tileprobe.embed import hub_models
from tileprobe.embed.backbone import DTYPES, Backbone, BackboneError, effective_dtype
from tileprobe.embed.pooling import layered_forward
from tileprobe.embed.registry import register_family
from tileprobe.embed.weights import hub_weights_sha256, load_weights_file, weights_info


def _check_timm_name(name: str) -> None:
    import timm

    if name.startswith(("hf-hub:", "local-dir:")) or timm.is_model(name):
        return
    arch = name.split(".", 1)[0]
    close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models() for names"
    raise BackboneError(f"backbone {name}: timm has no model {name!r}; {hint}")


def _hub_help(name: str) -> str:
    repo = hub_models.hub_repo(name) or name
    return (
        f"To provide the weights offline: on a machine with network run `huggingface-cli download {repo}` (gated "
        "models: accept the licence on huggingface.co and `huggingface-cli login` first), copy the Hugging Face "
        "cache (~/.cache/huggingface, or $HF_HOME) here and run with HF_HUB_OFFLINE=1; or download its "
        "model.safetensors and set `weights:` to that file"
    )


def _create_timm(spec: dict, img_size: int | None, entry: dict | None = None) -> torch.nn.Module:
    """Build the model: from the hub (`weights: hub`), else offline, from the hub table's architecture if known."""
    import timm

    name, weights = spec["model"], spec["weights"]
    # The model's own pooling and norm layout is kept here so pretrained weights fit; pooling is set after.
    kwargs: dict[str, Any] = {"num_classes": 0}
    arch = name
    if entry is not None:
        kwargs.update(hub_models.timm_kwargs(entry))
        if weights != "hub":
            arch = entry["architecture"]  # no config download: the table holds what it says
    if img_size is not None:
        kwargs["img_size"] = img_size
    try:
        if weights == "hub":
            return timm.create_model(name, pretrained=True, **kwargs)
        # Seeded in a forked RNG: the same spec gives the same random weights without touching global state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(spec["seed"]))
            return timm.create_model(arch, pretrained=False, **kwargs)
    except Exception as exc:
        if img_size is not None and isinstance(exc, TypeError):
            raise BackboneError(
                f"backbone {name}: the model takes only its native input size; drop `input_px` from the spec"
            ) from exc
        if weights == "hub":
            raise BackboneError(
                f"backbone {name}: its hub weights cannot be had ({type(exc).__name__}: {exc}). " + _hub_help(name)
            ) from exc
        raise BackboneError(f"backbone {name}: timm cannot build it ({type(exc).__name__}: {exc})") from exc


def timm_model(spec: dict, input_px: int | None) -> tuple[torch.nn.Module, dict, dict]:
    """(model with its weights, preprocessing {input_px, mean, std, interpolation}, provenance) of a timm spec:
    what the frozen extractor and fine-tuning (tileprobe.finetune) both start from. The model returns its
    pooled features (no classifier) and is left in train mode on the CPU."""
    import timm
    import timm.data

    name = spec["model"]
    _check_timm_name(name)
    entry = hub_models.lookup(name)
    if entry is not None and entry.get("transformers_only") and spec["weights"] == "hub":
        raise BackboneError(
            f"backbone {name}: its hub weights are published for `transformers`, not timm, so `weights: hub` "
            f"cannot load them. Convert them to timm's {entry['architecture']} key names, save as .safetensors and "
            "set `weights:` to that file (or use `weights: none` to test the architecture)"
        )
    if entry is None and name.startswith("hf-hub:") and spec["weights"] != "hub":
        # timm would fetch config.json from the hub; only `weights: hub` may touch the network.
        raise BackboneError(
            f"backbone {name}: building it needs its config.json from the hub, and tileprobe's offline table "
            f"knows only {sorted(hub_models.HUB_MODELS)}; set `weights: hub` with network (or a cached copy and "
            "HF_HUB_OFFLINE=1), or write its timm architecture as `model:` and the weights file as `weights:`"
        )
    path, info = weights_info(spec)
    pool = spec["pool"] or (entry["pool"] if entry else "avg")

    if entry is not None:
        size = int(spec["input_px"] or entry["input_px"])
        model = _create_timm(spec, size, entry)
    else:
        model = _create_timm(spec, None)
        cfg = timm.data.resolve_data_config({}, model=model)
        native = int(cfg["input_size"][-1])
        fixed = bool(getattr(model, "pretrained_cfg", {}).get("fixed_input_size", False))
        size = spec["input_px"] or (native if fixed or input_px is None else int(input_px))
        if fixed and size != native:
            model = _create_timm(spec, size)  # ViTs rebuild their position embedding for another size
    cfg = timm.data.resolve_data_config({}, model=model)
    if entry is not None and spec["weights"] != "hub":
        # Offline the model's pretrained_cfg is the bare architecture's: the table holds the hub model's own.
        cfg = {**cfg, "mean": entry["mean"], "std": entry["std"], "interpolation": entry["interpolation"]}
    if spec["weights"] == "hub":
        info["weights_sha256"] = hub_weights_sha256(model)

    dropped = load_weights_file(model, path, name) if path is not None else []
    interpolation = cfg.get("interpolation", "bilinear")
    preprocessing = {"input_px": int(size), "mean": tuple(cfg["mean"]), "std": tuple(cfg["std"]),
                     "interpolation": interpolation if interpolation in ("bilinear", "bicubic") else "bilinear"}
    info.update(
        spec={**{k: spec[k] for k in sorted(spec)}, "pool": pool},
        family="timm", model=name, pool=pool, timm_version=timm.__version__, dropped_head_keys=len(dropped),
        architecture=entry["architecture"] if entry else name, hub_table=bool(entry),
    )
    return model, preprocessing, info


@register_family("timm")
def build_timm(spec: dict, input_px: int | None, device: torch.device) -> Backbone:
    """Any timm model (and `hf-hub:` models through timm), pooled to one vector per tile and layer."""
    name = spec["model"]
    model, preprocessing, info = timm_model(spec, input_px)
    forward = layered_forward(model, list(spec["layers"]), info["pool"], name)
    dtype = effective_dtype(name, spec["dtype"], device)
    model = model.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
    if device.type != "cuda":
        model = model.to(DTYPES[dtype])
    return Backbone(
        name=name,
        forward=forward,
        layers=list(spec["layers"]),
        input_px=preprocessing["input_px"],
        mean=preprocessing["mean"],
        std=preprocessing["std"],
        batch_size=int(spec["batch_size"]),
        dtype=dtype,
        device=device,
        interpolation=preprocessing["interpolation"],
        info=info,
    )
