"""What the torch heads share: inputs standardised with the training data's mean and spread, training settings
as class attributes, and a model saved as `model.json` (architecture, classes, settings, training record) plus
`weights.safetensors` (weights and the standardisation), rebuilt from those alone, never from pickled code.

A subclass names its `architecture()` (a JSON-able dict) and how to `build` a network from it. Regression heads
learn a standardised target (its mean and spread are saved with the weights) and survival heads a risk score
with the Cox loss; both have one output and `predict(X)` instead of `predict_proba`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

import tileprobe
from tileprobe.learn.heads.common import check_kind, write_model
from tileprobe.learn.heads.registry import FORMAT
from tileprobe.learn.heads.torch_training import (
    load_state_arrays,
    seeded,
    state_arrays,
    train_with_early_stopping,
    validation_split,
)


class TorchHead:
    kinds: tuple[str, ...] = ("binary", "multiclass", "multilabel")
    dropout = 0.2
    lr = 1e-3
    weight_decay = 1e-4
    max_epochs = 200
    patience = 10
    batch_size = 256

    def __init__(self, seed: int = 0, kind: str = "multiclass"):
        check_kind(self.name, kind, self.kinds)
        self.seed, self.task_kind = seed, kind
        self.classes_ = self.net = self.mean_ = self.scale_ = None
        self.target_mean_, self.target_scale_ = 0.0, 1.0
        self.training_: dict = {}

    # What a subclass provides.
    def architecture(self) -> dict:
        raise NotImplementedError

    @classmethod
    def build(cls, architecture: dict, n_out: int) -> nn.Module:
        raise NotImplementedError

    # Shared steps of fit and predict.
    def _fit_standardisation(self, rows: np.ndarray) -> None:
        self.mean_ = rows.mean(axis=0)
        spread = rows.std(axis=0)
        self.scale_ = np.where(spread > 0, spread, 1.0).astype(np.float32)

    def _standardise(self, X) -> torch.Tensor:
        return torch.as_tensor((np.asarray(X, dtype=np.float32) - self.mean_) / self.scale_)

    def _training_targets(self, T: np.ndarray) -> np.ndarray:
        """What the network learns: regression targets standardised (a loss on the raw scale would make the
        learning rate depend on the unit), everything else as given."""
        if self.task_kind != "regression":
            return T
        self.target_mean_ = float(np.mean(T))
        self.target_scale_ = float(np.std(T)) or 1.0
        return (T - self.target_mean_) / self.target_scale_

    def _values(self, outputs: np.ndarray) -> np.ndarray:
        """Network outputs of a regression head back on the target's scale; a survival head's are risks."""
        return outputs * self.target_scale_ + self.target_mean_ if self.task_kind == "regression" else outputs

    @property
    def n_outputs(self) -> int:
        return max(len(self.classes_), 1)  # regression and survival: one output

    def _train(self, n_features: int, loss_of, y, groups) -> None:
        """A fresh network, trained on `loss_of(indices)` with early stopping on a patient-grouped split."""
        generator = seeded(self.seed)
        self.net = self.build({**self.architecture(), "n_features": n_features}, self.n_outputs)
        train, val = validation_split(y, groups, self.seed)
        self.training_ = train_with_early_stopping(
            self.net, loss_of, train, val, generator=generator, max_epochs=self.max_epochs,
            patience=self.patience, lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size)

    def _check_fitted(self) -> None:
        if self.net is None:
            raise RuntimeError(f"{self.name} head is not fitted; call fit first, or load_head(dir)")

    # The model file.
    def to_spec(self) -> dict:
        return {
            "format": FORMAT, "head": self.name, "kind": self.task_kind,
            "classes": [str(c) for c in self.classes_],
            "architecture": {"n_features": int(len(self.mean_)), **self.architecture()},
            "params": {"lr": self.lr, "weight_decay": self.weight_decay, "max_epochs": self.max_epochs,
                       "patience": self.patience, "batch_size": self.batch_size, "seed": self.seed},
            "training": self.training_,
            "target": {"mean": self.target_mean_, "scale": self.target_scale_},
            "tileprobe_version": tileprobe.__version__, "torch_version": torch.__version__,
        }

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict) -> "TorchHead":
        head = cls(seed=spec["params"]["seed"], kind=spec["kind"])
        head.classes_ = np.array(spec["classes"], dtype=object)
        head.mean_, head.scale_ = tensors["input.mean"], tensors["input.scale"]
        head.net = cls.build(spec["architecture"], head.n_outputs)
        load_state_arrays(head.net, tensors)
        head.training_ = spec.get("training", {})
        target = spec.get("target", {})
        head.target_mean_, head.target_scale_ = target.get("mean", 0.0), target.get("scale", 1.0)
        return head

    def save(self, directory: str | Path) -> Path:
        tensors = {"input.mean": self.mean_, "input.scale": self.scale_, **state_arrays(self.net)}
        return write_model(directory, self.to_spec(), tensors)
