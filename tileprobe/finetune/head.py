"""Fine-tuning as a head: `finetune_partial`, `finetune_full` and `finetune_scratch` take uint8 pixels
(n, H, W, 3) where other heads take embeddings, and train the task's backbone end to end.

Training: AdamW on the variant's trainable parameters, image-space augmentation of every training batch (flips,
rotations, colour and HED jitter: `tileprobe.embed.views.augment`), early stopping on a validation split of the
training part's patients (the torch heads' split), best epoch kept; bf16 autocast on a GPU; a progress bar per
epoch. What it cost (wall time, epochs, images seen, device) is kept in `training_` and in model.json. Saved as
`model.json` (backbone spec, variant, classes, settings) + `weights.safetensors` (every weight of the network).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import tileprobe
from tileprobe.config.defaults import fill_defaults
from tileprobe.embed.views import augment
from tileprobe.finetune.network import build, train_mode, trainable
from tileprobe.learn.heads.common import check_kind, targets, write_model
from tileprobe.learn.heads.registry import FORMAT, register_head
from tileprobe.learn.heads.torch_training import (
    load_state_arrays,
    loss_function,
    probabilities,
    state_arrays,
    target_tensor,
    validation_split,
)

log = logging.getLogger(__name__)



def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class FineTuneHead:
    input = "pixels"
    variant = ""
    kinds = ("binary", "multiclass", "multilabel", "regression")

    def __init__(self, seed: int = 0, kind: str = "multiclass", backbone: dict | None = None,
                 settings: dict | None = None, input_px: int | None = None):
        check_kind(self.name, kind, self.kinds)
        if backbone is None:
            raise ValueError(f"{self.name}: needs the backbone spec it fine-tunes (make_head(..., backbone=spec))")
        self.seed, self.task_kind, self.backbone_spec, self.input_px = seed, kind, dict(backbone), input_px
        # the config's `finetune` section, its defaults from the schema
        self.settings = fill_defaults("finetune", {k: v for k, v in (settings or {}).items() if v is not None})
        self.classes_ = self.net = None
        self.target_mean_, self.target_scale_ = 0.0, 1.0
        self.training_: dict = {}

    @property
    def n_outputs(self) -> int:
        return max(len(self.classes_), 1)

    def _network(self):
        return build({**self.backbone_spec, "seed": self.seed if self.variant == "scratch" else
                      self.backbone_spec.get("seed", 0)}, self.variant, self.n_outputs, self.input_px,
                     self.settings["partial_blocks"])

    def _batch(self, pixels: np.ndarray, rows: np.ndarray, rng: np.random.Generator | None, device) -> torch.Tensor:
        tiles = pixels[rows]
        if rng is not None and self.settings["augment"]:
            tiles = np.stack([augment(t, rng) for t in tiles])
        return torch.from_numpy(np.ascontiguousarray(tiles)).to(device)

    def _outputs(self, pixels: np.ndarray, rows: np.ndarray, device) -> torch.Tensor:
        """The network's outputs for `rows`, in evaluation mode and batches, as float32 on the CPU."""
        self.net.eval()
        out = []
        with torch.inference_mode(), self._autocast(device):
            for start in range(0, len(rows), self.settings["batch_size"]):
                out.append(self.net(self._batch(pixels, rows[start:start + self.settings["batch_size"]], None,
                                                device)).float().cpu())
        return torch.cat(out) if out else torch.zeros((0, self.n_outputs))

    @staticmethod
    def _autocast(device):
        # bf16 on a GPU: twice the throughput of float32 and no loss scaling; on a CPU plain float32.
        return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast(
            "cpu", enabled=False)

    def fit(self, pixels, y, groups=None) -> "FineTuneHead":
        pixels = np.asarray(pixels, dtype=np.uint8)
        T, self.classes_ = targets(y, self.task_kind)
        if self.task_kind == "regression":  # a standardised target, as the torch heads learn it
            self.target_mean_, self.target_scale_ = float(np.mean(T)), float(np.std(T)) or 1.0
            T = (T - self.target_mean_) / self.target_scale_
        truth = target_tensor(T, self.task_kind)
        device = _device(self.settings["device"])
        torch.manual_seed(self.seed)
        self.net = self._network().to(device)
        loss = loss_function(self.task_kind)
        parameters = [p for p in self.net.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(parameters, lr=self.settings["lr"], weight_decay=self.settings["weight_decay"])
        train, val = validation_split(y, groups, self.seed)
        rng = np.random.default_rng(self.seed)
        best, best_epoch, best_state, waited, seen = float("inf"), -1, None, 0, 0
        started = time.perf_counter()
        epochs = tqdm(range(self.settings["max_epochs"]), desc=f"{self.name}", unit="epoch", file=sys.stderr,
                      mininterval=0.5 if sys.stderr.isatty() else 30.0)
        epoch = -1
        for epoch in epochs:
            train_mode(self.net)
            order = rng.permutation(train)
            for start in range(0, len(order), self.settings["batch_size"]):
                rows = order[start:start + self.settings["batch_size"]]
                if len(rows) < 2 and len(order) > 1:
                    continue  # batch norm cannot train on one image
                optimiser.zero_grad()
                with self._autocast(device):
                    value = loss(self.net(self._batch(pixels, rows, rng, device)).float(),
                                 truth[torch.as_tensor(rows)].to(device))
                value.backward()
                optimiser.step()
                seen += len(rows)
            if len(val) == 0:
                continue
            val_loss = float(loss(self._outputs(pixels, val, device), truth[torch.as_tensor(val)]))
            epochs.set_postfix(val_loss=f"{val_loss:.4f}", refresh=False)
            if val_loss < best - 1e-6:
                best, best_epoch, waited = val_loss, epoch, 0
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            else:
                waited += 1
                if waited >= self.settings["patience"]:
                    break
        epochs.close()
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()
        self.training_ = {"epochs_run": epoch + 1, "best_epoch": best_epoch,
                          "best_val_loss": best if best_state is not None else None, "images_seen": int(seen),
                          "n_train": int(len(train)), "n_val": int(len(val)), "device": device.type,
                          "seconds": time.perf_counter() - started,
                          "trainable_parameters": int(sum(p.numel() for p in parameters))}
        log.info("%s: %d epoch(s) (best %d), %d images seen, %.1f s on %s, %d trainable parameters", self.name,
                 epoch + 1, best_epoch + 1, seen, self.training_["seconds"], device.type,
                 self.training_["trainable_parameters"])
        return self

    def _check_fitted(self):
        if self.net is None:
            raise RuntimeError(f"{self.name} is not fitted; call fit(pixels, y) or load_head(dir) first")

    def predict_proba(self, pixels) -> np.ndarray:
        self._check_fitted()
        pixels = np.asarray(pixels, dtype=np.uint8)
        device = next(self.net.parameters()).device
        return probabilities(self._outputs(pixels, np.arange(len(pixels)), device), self.task_kind)

    def predict(self, pixels) -> np.ndarray:
        """Regression: the predicted values."""
        return self.predict_proba(pixels) * self.target_scale_ + self.target_mean_

    def to_spec(self) -> dict:
        return {
            "format": FORMAT, "head": self.name, "kind": self.task_kind, "variant": self.variant,
            "classes": [str(c) for c in self.classes_], "backbone": self.backbone_spec, "input_px": self.input_px,
            "params": {**self.settings, "seed": self.seed}, "training": self.training_,
            "trainable": trainable(self.net), "target": {"mean": self.target_mean_, "scale": self.target_scale_},
            "tileprobe_version": tileprobe.__version__, "torch_version": torch.__version__,
        }

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict) -> "FineTuneHead":
        settings = {**spec["params"], "device": "cpu"}
        head = cls(seed=settings.pop("seed"), kind=spec["kind"], backbone=spec["backbone"], settings=settings,
                   input_px=spec.get("input_px"))
        head.classes_ = np.array(spec["classes"], dtype=object)
        head.target_mean_, head.target_scale_ = spec["target"]["mean"], spec["target"]["scale"]
        # The architecture only: every weight, pretrained or not, comes from weights.safetensors.
        head.backbone_spec = {**head.backbone_spec, "weights": "none"}
        head.net = head._network()
        load_state_arrays(head.net, tensors)
        head.backbone_spec = dict(spec["backbone"])
        return head

    def save(self, directory: str | Path) -> Path:
        return write_model(directory, self.to_spec(), state_arrays(self.net))


@register_head("finetune_partial")
class PartialFineTune(FineTuneHead):
    """The last `partial_blocks` blocks of the pretrained backbone and a new output layer."""

    variant = "partial"


@register_head("finetune_full")
class FullFineTune(FineTuneHead):
    """Every weight of the pretrained backbone and a new output layer."""

    variant = "full"


@register_head("finetune_scratch")
class ScratchTraining(FineTuneHead):
    """The same architecture from random weights: what pretraining is worth."""

    variant = "scratch"
