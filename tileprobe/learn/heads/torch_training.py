"""The training loop of the torch heads: AdamW, early stopping on a validation split that never splits a
patient, best-epoch weights kept; plus the (de)serialisation of a network as safetensors."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tileprobe.learn.heads.common import inner_splits

VALIDATION_FOLDS = 5  # one fold of five: 20% of the training part's patients


def seeded(seed: int) -> torch.Generator:
    torch.manual_seed(seed)  # weight initialisation draws from the global generator
    return torch.Generator().manual_seed(seed)


def validation_split(y, groups, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices; validation is empty when there are too few patients to hold some out."""
    splits = inner_splits(y, groups, VALIDATION_FOLDS, seed)
    if not splits:
        return np.arange(len(y)), np.array([], dtype=np.int64)
    return splits[0]


class CoxLoss(nn.Module):
    """Negative Cox partial log-likelihood of risk scores (Breslow's handling of ties, up to their order), over
    the samples of one batch: each event is scored against everyone still at risk at its time."""

    def forward(self, risk: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        risk, time, event = risk.reshape(-1), target[:, 0], target[:, 1]
        order = torch.argsort(time, descending=True)  # the risk set of row i: rows 0..i after sorting
        risk, event = risk[order], event[order]
        events = event.sum()
        if events == 0:  # a batch without an event says nothing about the order of risks
            return risk.sum() * 0.0
        return -((risk - torch.logcumsumexp(risk, dim=0)) * event).sum() / events


class SquaredError(nn.Module):
    """Mean squared error of a one-column output against a standardised target."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.mean((output.reshape(-1) - target) ** 2)


def loss_function(kind: str) -> nn.Module:
    return {"multilabel": nn.BCEWithLogitsLoss, "regression": SquaredError,
            "survival": CoxLoss}.get(kind, nn.CrossEntropyLoss)()


def target_tensor(T: np.ndarray, kind: str) -> torch.Tensor:
    if kind in ("multilabel", "regression", "survival"):
        return torch.as_tensor(T, dtype=torch.float32)
    return torch.as_tensor(T, dtype=torch.long)


def probabilities(logits: torch.Tensor, kind: str) -> np.ndarray:
    if kind in ("regression", "survival"):  # one output: the (standardised) value, or the risk
        return logits.detach().double().numpy().reshape(len(logits), -1)[:, 0]
    out = torch.sigmoid(logits) if kind == "multilabel" else torch.softmax(logits, dim=-1)
    return out.detach().double().numpy()


def train_with_early_stopping(net: nn.Module, loss_of, train_idx, val_idx, *, generator: torch.Generator,
                              max_epochs: int, patience: int, lr: float, weight_decay: float,
                              batch_size: int) -> dict:
    """Train `net` on minibatches of `train_idx`; `loss_of(indices)` returns the mean loss of those samples.

    Stops when the validation loss has not improved for `patience` epochs and restores the best epoch's
    weights; without a validation part it trains for `max_epochs`. Returns what happened, for model.json.
    """
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    train_idx = np.asarray(train_idx)
    best_loss, best_epoch, best_state, waited = float("inf"), -1, None, 0
    epoch = -1
    for epoch in range(max_epochs):
        net.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        for start in range(0, len(order), batch_size):
            optimiser.zero_grad()
            loss_of(order[start:start + batch_size]).backward()
            optimiser.step()
        if len(val_idx) == 0:
            continue
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_of(np.asarray(val_idx)))
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch, waited = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return {"epochs_run": epoch + 1, "best_epoch": best_epoch,
            "best_val_loss": best_loss if best_state is not None else None,
            "n_train": int(len(train_idx)), "n_val": int(len(val_idx))}


def state_arrays(net: nn.Module, prefix: str = "net.") -> dict[str, np.ndarray]:
    return {prefix + k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def load_state_arrays(net: nn.Module, tensors: dict, prefix: str = "net.") -> None:
    state = {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in tensors.items() if k.startswith(prefix)}
    net.load_state_dict(state)
    net.eval()
