"""Gated attention multiple-instance learning (Ilse et al., ICML 2018) for slide-level tasks (torch).

A slide is a bag of tile embeddings; the network learns which tiles matter (attention weights that sum to one
over the slide), pools them by those weights and classifies the pooled vector. Only the slide label is needed.
With one output it regresses a number (squared error) or scores a risk (Cox loss, over the bags of a batch).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tileprobe.learn.heads.common import targets
from tileprobe.learn.heads.registry import register_head
from tileprobe.learn.heads.torch_head import TorchHead
from tileprobe.learn.heads.torch_training import loss_function, probabilities, target_tensor


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
class ABMILHead(TorchHead):
    input = "bags"
    hidden = 128
    attention_dim = 64
    dropout = 0.25
    lr = 5e-4
    max_epochs = 100
    batch_size = 8  # bags per optimiser step
    kinds = ("binary", "multiclass", "multilabel", "regression", "survival")

    def architecture(self) -> dict:
        return {"hidden": self.hidden, "attention": self.attention_dim, "dropout": self.dropout, "gated": True}

    @classmethod
    def build(cls, architecture: dict, n_out: int) -> nn.Module:
        return GatedAttentionMIL(architecture["n_features"], architecture["hidden"], architecture["attention"],
                                 n_out, architecture["dropout"])

    def fit(self, bags, y, groups=None) -> "ABMILHead":
        if any(len(b) == 0 for b in bags):
            raise ValueError("abmil: a bag has no tiles; data.task_dataset skips such slides")
        T, self.classes_ = targets(y, self.task_kind)
        tiles = np.concatenate([np.asarray(b, dtype=np.float32) for b in bags])
        self._fit_standardisation(tiles)
        inputs = [self._standardise(b) for b in bags]
        truth = target_tensor(self._training_targets(T), self.task_kind)
        loss = loss_function(self.task_kind)

        def loss_of(idx):
            logits = torch.stack([self.net(inputs[i]) for i in idx])
            return loss(logits, truth[torch.as_tensor(idx)])

        self._train(tiles.shape[1], loss_of, y, groups)
        return self

    def predict_proba(self, bags) -> np.ndarray:
        self._check_fitted()
        with torch.no_grad():
            return probabilities(torch.stack([self.net(self._standardise(b)) for b in bags]), self.task_kind)

    def predict(self, bags) -> np.ndarray:
        """Regression: the predicted values; survival: the risk scores."""
        return self._values(self.predict_proba(bags))

    def attention(self, bag) -> np.ndarray:
        """Attention weight of each tile of one bag (sums to one): where the head looked."""
        with torch.no_grad():
            return self.net.attention(self.net.embed(self._standardise(bag))).double().numpy()
