"""Multilayer perceptrons on standardised embeddings (torch): `mlp` (one hidden layer), `mlp2` (two), and
`multitask`, one shared trunk with one sigmoid output per term for multilabel tasks (the shape Zhang et al.,
KDD 2015, used for the controlled-vocabulary terms of ISH images). `mlp` and `mlp2` also regress a number
(squared error on the standardised target).

Early stopping on a validation split of the training part's patients picks the epoch. Saved as `model.json`
(architecture, classes, training record) + `weights.safetensors` (weights and the input standardisation).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tileprobe.learn.heads.common import targets
from tileprobe.learn.heads.registry import register_head
from tileprobe.learn.heads.torch_head import TorchHead
from tileprobe.learn.heads.torch_training import loss_function, probabilities, target_tensor


def build_network(n_in: int, hidden: list[int], n_out: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


@register_head("mlp")
class MLPHead(TorchHead):
    input = "features"
    kinds = ("binary", "multiclass", "regression")
    hidden = (256,)

    def architecture(self) -> dict:
        return {"hidden": list(self.hidden), "dropout": self.dropout}

    @classmethod
    def build(cls, architecture: dict, n_out: int) -> nn.Module:
        return build_network(architecture["n_features"], architecture["hidden"], n_out, architecture["dropout"])

    def fit(self, X, y, groups=None) -> "MLPHead":
        T, self.classes_ = targets(y, self.task_kind)
        X = np.asarray(X, dtype=np.float32)
        self._fit_standardisation(X)
        inputs, truth = self._standardise(X), target_tensor(self._training_targets(T), self.task_kind)
        loss = loss_function(self.task_kind)
        self._train(X.shape[1], lambda idx: loss(self.net(inputs[idx]), truth[idx]), y, groups)
        return self

    def predict_proba(self, X) -> np.ndarray:
        self._check_fitted()
        with torch.no_grad():
            return probabilities(self.net(self._standardise(X)), self.task_kind)

    def predict(self, X) -> np.ndarray:
        """Regression: the predicted values."""
        return self._values(self.predict_proba(X))


@register_head("mlp2")
class TwoLayerMLPHead(MLPHead):
    hidden = (256, 128)


@register_head("multitask")
class MultitaskHead(MLPHead):
    """A shared trunk learns features common to all terms; each term has its own sigmoid output."""

    kinds = ("multilabel",)
    hidden = (256, 128)
