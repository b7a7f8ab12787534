"""Gated attention multiple-instance learning (Ilse et al., ICML 2018) for slide-level tasks (torch).

A slide is a bag of tile embeddings; the network learns which tiles matter (attention weights that sum to one
over the slide), pools them by those weights and classifies the pooled vector. Only the slide label is needed.
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


class GatedAttentionMIL(nn.Module):
    def __init__(self, n_in: int, hidden: int, attention: int, n_out: int, dropout: float):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.attention_tanh = nn.Linear(hidden, attention)
        self.attention_gate = nn.Linear(hidden, attention)
        self.attention_score = nn.Linear(attention, 1)
        self.classifier = nn.Linear(hidden, n_out)

    def attention(self, h: torch.Tensor) -> torch.Tensor:
        gated = torch.tanh(self.attention_tanh(h)) * torch.sigmoid(self.attention_gate(h))
        return torch.softmax(self.attention_score(gated).squeeze(-1), dim=0)

    def forward(self, bag: torch.Tensor) -> torch.Tensor:
        h = self.embed(bag)
        return self.classifier(self.attention(h) @ h)


@register_head("abmil")
class ABMILHead:
    input = "bags"
    hidden = 128
    attention_dim = 64
    dropout = 0.25
    lr = 5e-4
    weight_decay = 1e-4
    max_epochs = 100
    patience = 10
    batch_size = 8  # bags per optimiser step

    def __init__(self, seed: int = 0, kind: str = "multiclass"):
        check_kind(self.name, kind, ("binary", "multiclass", "multilabel"))
        self.seed, self.task_kind = seed, kind
        self.classes_ = self.net = self.mean_ = self.scale_ = None
        self.training_: dict = {}

    def _bag(self, bag) -> torch.Tensor:
        return torch.as_tensor((np.asarray(bag, dtype=np.float32) - self.mean_) / self.scale_)

    def fit(self, bags, y, groups=None) -> "ABMILHead":
        if any(len(b) == 0 for b in bags):
            raise ValueError("abmil: a bag has no tiles; data.task_dataset skips such slides")
        T, self.classes_ = targets(y, self.task_kind)
        tiles = np.concatenate([np.asarray(b, dtype=np.float32) for b in bags])
        self.mean_ = tiles.mean(axis=0)
        self.scale_ = np.where(tiles.std(axis=0) > 0, tiles.std(axis=0), 1.0).astype(np.float32)
        inputs, truth = [self._bag(b) for b in bags], target_tensor(T, self.task_kind)
        generator = seeded(self.seed)
        self.net = GatedAttentionMIL(tiles.shape[1], self.hidden, self.attention_dim, len(self.classes_),
                                     self.dropout)
        loss = loss_function(self.task_kind)

        def loss_of(idx):
            logits = torch.stack([self.net(inputs[i]) for i in idx])
            return loss(logits, truth[torch.as_tensor(idx)])

        train, val = validation_split(y, groups, self.seed)
        self.training_ = train_with_early_stopping(
            self.net, loss_of, train, val, generator=generator, max_epochs=self.max_epochs,
            patience=self.patience, lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size)
        return self

    def predict_proba(self, bags) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("abmil head is not fitted; call fit(bags, y) or load_head(dir) first")
        with torch.no_grad():
            return probabilities(torch.stack([self.net(self._bag(b)) for b in bags]), self.task_kind)

    def attention(self, bag) -> np.ndarray:
        """Attention weight of each tile of one bag (sums to one): where the head looked."""
        with torch.no_grad():
            return self.net.attention(self.net.embed(self._bag(bag))).double().numpy()

    def to_spec(self) -> dict:
        return {
            "format": FORMAT, "head": self.name, "kind": self.task_kind,
            "classes": [str(c) for c in self.classes_],
            "architecture": {"n_features": int(len(self.mean_)), "hidden": self.hidden,
                             "attention": self.attention_dim, "dropout": self.dropout, "gated": True},
            "params": {"lr": self.lr, "weight_decay": self.weight_decay, "max_epochs": self.max_epochs,
                       "patience": self.patience, "batch_size": self.batch_size, "seed": self.seed},
            "training": self.training_,
            "tileprobe_version": tileprobe.__version__, "torch_version": torch.__version__,
        }

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict) -> "ABMILHead":
        head = cls(seed=spec["params"]["seed"], kind=spec["kind"])
        arch = spec["architecture"]
        head.classes_ = np.array(spec["classes"], dtype=object)
        head.mean_, head.scale_ = tensors["input.mean"], tensors["input.scale"]
        head.net = GatedAttentionMIL(arch["n_features"], arch["hidden"], arch["attention"], len(head.classes_),
                                     arch["dropout"])
        load_state_arrays(head.net, tensors)
        head.training_ = spec.get("training", {})
        return head

    def save(self, directory: str | Path) -> Path:
        tensors = {"input.mean": self.mean_, "input.scale": self.scale_, **state_arrays(self.net)}
        return write_model(directory, self.to_spec(), tensors)
