"""Multilayer perceptrons on standardised embeddings (torch): `mlp` (one hidden layer), `mlp2` (two), and
`multitask`, one shared trunk with one sigmoid output per term for multilabel tasks (the shape Zhang et al.,
KDD 2015, used for the controlled-vocabulary terms of ISH images).

Early stopping on a validation split of the training part's patients picks the epoch. Saved as `model.json`
(architecture, classes, training record) + `weights.safetensors` (weights and the input standardisation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

import tileprobe
from tileprobe.heads import FORMAT, register_head
from tileprobe.heads.common import check_kind, targets, write_model
from tileprobe.heads.torch_training import (load_state_arrays, loss_function, probabilities, seeded,
                                            state_arrays, target_tensor, train_with_early_stopping,
                                            validation_split)


def build_network(n_in: int, hidden: list[int], n_out: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


@register_head("mlp")
class MLPHead:
    input = "features"
    kinds = ("binary", "multiclass")
    hidden = (256,)
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
        self.training_: dict = {}

    def _standardise(self, X) -> torch.Tensor:
        return torch.as_tensor((np.asarray(X, dtype=np.float32) - self.mean_) / self.scale_)

    def fit(self, X, y, groups=None) -> "MLPHead":
        T, self.classes_ = targets(y, self.task_kind)
        X = np.asarray(X, dtype=np.float32)
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0).astype(np.float32)
        inputs, truth = self._standardise(X), target_tensor(T, self.task_kind)
        generator = seeded(self.seed)
        self.net = build_network(X.shape[1], list(self.hidden), len(self.classes_), self.dropout)
        loss = loss_function(self.task_kind)
        train, val = validation_split(y, groups, self.seed)
        self.training_ = train_with_early_stopping(
            self.net, lambda idx: loss(self.net(inputs[idx]), truth[idx]), train, val, generator=generator,
            max_epochs=self.max_epochs, patience=self.patience, lr=self.lr, weight_decay=self.weight_decay,
            batch_size=self.batch_size)
        return self

    def predict_proba(self, X) -> np.ndarray:
        if self.net is None:
            raise RuntimeError(f"{self.name} head is not fitted; call fit(X, y) or load_head(dir) first")
        with torch.no_grad():
            return probabilities(self.net(self._standardise(X)), self.task_kind)

    def to_spec(self) -> dict:
        return {
            "format": FORMAT, "head": self.name, "kind": self.task_kind,
            "classes": [str(c) for c in self.classes_],
            "architecture": {"n_features": int(len(self.mean_)), "hidden": list(self.hidden),
                             "dropout": self.dropout},
            "params": {"lr": self.lr, "weight_decay": self.weight_decay, "max_epochs": self.max_epochs,
                       "patience": self.patience, "batch_size": self.batch_size, "seed": self.seed},
            "training": self.training_,
            "tileprobe_version": tileprobe.__version__, "torch_version": torch.__version__,
        }

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict) -> "MLPHead":
        head = cls(seed=spec["params"]["seed"], kind=spec["kind"])
        arch = spec["architecture"]
        head.classes_ = np.array(spec["classes"], dtype=object)
        head.mean_, head.scale_ = tensors["input.mean"], tensors["input.scale"]
        head.net = build_network(arch["n_features"], arch["hidden"], len(head.classes_), arch["dropout"])
        load_state_arrays(head.net, tensors)
        head.training_ = spec.get("training", {})
        return head

    def save(self, directory: str | Path) -> Path:
        tensors = {"input.mean": self.mean_, "input.scale": self.scale_, **state_arrays(self.net)}
        return write_model(directory, self.to_spec(), tensors)


@register_head("mlp2")
class TwoLayerMLPHead(MLPHead):
    hidden = (256, 128)


@register_head("multitask")
class MultitaskHead(MLPHead):
    """A shared trunk learns features common to all terms; each term has its own sigmoid output."""

    kinds = ("multilabel",)
    hidden = (256, 128)
