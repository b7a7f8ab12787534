"""Backbones: frozen feature extractors that turn uint8 tiles into one vector per tile and layer.

A backbone spec (one entry of the config's `backbones:`) is resolved through a registry of *families*: a
builder registered with `@register_family(name)` turns a checked spec into a `Backbone`. The model name picks
the family by prefix (`family:name`); names without a registered prefix go to timm, which also handles its
own `hf-hub:` names (known pathology models build offline from `tileprobe.hub_models`). Every family returns
one pooled vector per tile for each layer in the spec's `layers`, all from one forward pass. Nothing here
touches the network unless `weights: hub` is asked for.
"""

from __future__ import annotations

import difflib
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from tileprobe import hub_models
from tileprobe.errors import TileprobeError

DEFAULTS: dict[str, Any] = {
    "weights": "none",
    "layers": ["final"],
    "pool": None,  # None: the model's recommended pooling (hub table), else avg
    "batch_size": 32,
    "dtype": "float32",
    "input_px": None,
    "seed": 0,
}
SPEC_KEYS = {"model", *DEFAULTS}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Prefixes that training frameworks put in front of parameter names (DDP, Lightning, torch.compile, wrappers).
STRIP_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.", "encoder.", "trunk.")
# Classifier parameters: a feature extractor has no head, so a checkpoint's head is dropped, not an error.
HEAD_PREFIXES = ("fc.", "head.", "head_dist.", "heads.", "classifier.", "last_linear.")


class BackboneError(TileprobeError):
    """A backbone cannot be built or loaded; the message names the backbone, key or file and says the fix."""


# ---------------------------------------------------------------------------------------------- registry

_FAMILIES: dict[str, Callable[..., "Backbone"]] = {}


def register_family(name: str) -> Callable:
    """Register `builder(spec, input_px, device) -> Backbone` for model names written `name:...`."""

    def decorate(builder: Callable[..., Backbone]) -> Callable[..., Backbone]:
        if name in _FAMILIES:
            raise ValueError(f"backbone family {name!r} is registered twice")
        _FAMILIES[name] = builder
        return builder

    return decorate


def families() -> list[str]:
    return sorted(_FAMILIES)


def _split_family(model: str) -> tuple[str, str]:
    """`family:name` when the prefix is a registered family; otherwise the whole name goes to timm."""
    prefix, sep, rest = model.partition(":")
    if sep and prefix in _FAMILIES:
        return prefix, rest
    return "timm", model


# ---------------------------------------------------------------------------------------------- backbone


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


# ---------------------------------------------------------------------------------------------- spec


def check_spec(spec: dict) -> dict:
    """Fill defaults and check types; the error names the key and says the fix."""
    if not isinstance(spec, dict) or "model" not in spec:
        raise BackboneError(f"backbone spec {spec!r} has no 'model': set e.g. `model: resnet18`")
    name = spec["model"]
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        hints = [difflib.get_close_matches(k, SPEC_KEYS, n=1) for k in unknown]
        said = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in zip(unknown, hints))
        raise BackboneError(f"backbone {name}: unknown key(s) {said}; allowed: {', '.join(sorted(SPEC_KEYS))}")
    spec = {**DEFAULTS, **spec}
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


def effective_dtype(name: str, dtype: str, device: torch.device) -> str:
    """float16 matmuls are slow or missing on CPU: fall back to float32 there and say so."""
    if device.type != "cuda" and dtype == "float16":
        warnings.warn(f"backbone {name}: dtype float16 is not supported on {device.type}; using float32")
        return "float32"
    return dtype


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_backbone(spec: dict, input_px: int | None = None, device: str | torch.device | None = None) -> Backbone:
    """Build the backbone a spec describes, in eval mode on `device` (default: cuda if available).

    `input_px` is the tile size; CNNs see tiles at that size unless the spec sets `input_px`, fixed-size
    models (ViTs) at their native size. Tiles of another size are resized.
    """
    spec = check_spec(spec)
    device = torch.device(device) if device is not None else default_device()
    family, _ = _split_family(spec["model"])
    return _FAMILIES[family](spec, input_px, device)


# ---------------------------------------------------------------------------------------------- weights


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hash a (possibly multi-GB) checkpoint without reading it into memory at once."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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


# ---------------------------------------------------------------------------------------------- timm

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


def _layered(model: torch.nn.Module, layers: list[str], pool: str, name: str) -> Callable:
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


def _weights_info(spec: dict) -> tuple[Path | None, dict[str, Any]]:
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
    return path, {"weights": str(weights), "weights_sha256": sha256_file(path)}


def _hub_weights_sha256(model: torch.nn.Module) -> str | None:
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
                return sha256_file(path)
    except Exception:  # provenance only: a cache layout we do not know is no reason to stop
        return None
    return None


@register_family("timm")
def build_timm(spec: dict, input_px: int | None, device: torch.device) -> Backbone:
    """Any timm model (and `hf-hub:` models through timm), pooled to one vector per tile and layer."""
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
    path, info = _weights_info(spec)
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
        info["weights_sha256"] = _hub_weights_sha256(model)

    dropped = load_weights_file(model, path, name) if path is not None else []
    forward = _layered(model, list(spec["layers"]), pool, name)
    dtype = effective_dtype(name, spec["dtype"], device)
    model = model.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
    if device.type != "cuda":
        model = model.to(DTYPES[dtype])
    info.update(
        spec={**{k: spec[k] for k in sorted(spec)}, "pool": pool},
        family="timm", model=name, pool=pool, timm_version=timm.__version__, dropped_head_keys=len(dropped),
        architecture=entry["architecture"] if entry else name, hub_table=bool(entry),
    )
    interpolation = cfg.get("interpolation", "bilinear")
    return Backbone(
        name=name,
        forward=forward,
        layers=list(spec["layers"]),
        input_px=size,
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        batch_size=int(spec["batch_size"]),
        dtype=dtype,
        device=device,
        interpolation=interpolation if interpolation in ("bilinear", "bicubic") else "bilinear",
        info=info,
    )


# Families defined in their own modules register themselves on import (at the end: they need the names above).
from tileprobe import noise as _noise  # noqa: E402,F401
from tileprobe import handcrafted as _handcrafted  # noqa: E402,F401
