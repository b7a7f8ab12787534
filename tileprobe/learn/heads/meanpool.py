"""Mean pooling + the task kind's linear probe: the slide-level baseline that attention MIL must beat.

A slide's tile embeddings are averaged, then the tuned logistic regression (classes), ridge regression
(numbers) or penalised Cox model (survival) takes the mean. It takes bags of tile embeddings, like `abmil`, so
the two compare on exactly the same input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tileprobe.learn.data import tile_mean
from tileprobe.learn.heads.common import write_model
from tileprobe.learn.heads.registry import head_class, register_head

PROBE = {"regression": "ridge", "survival": "cox"}  # every class kind: logreg


def mean_of_bags(bags) -> np.ndarray:
    return np.stack([tile_mean(b) for b in bags])


def _probe(kind: str) -> type:
    return head_class(PROBE.get(kind, "logreg"))


@register_head("meanpool")
class MeanPoolHead:
    input = "bags"

    def __init__(self, seed: int = 0, kind: str = "multiclass", probe=None):
        self.seed, self.task_kind = seed, kind
        self.probe = probe if probe is not None else _probe(kind)(seed=seed, kind=kind)

    @property
    def classes_(self) -> np.ndarray:
        return self.probe.classes_

    def fit(self, bags, y, groups=None) -> "MeanPoolHead":
        self.probe.fit(mean_of_bags(bags), y, groups)
        return self

    def predict_proba(self, bags) -> np.ndarray:
        return self.probe.predict_proba(mean_of_bags(bags))

    def predict(self, bags) -> np.ndarray:
        return self.probe.predict(mean_of_bags(bags))

    def to_spec(self) -> dict:
        return {**self.probe.to_spec(), "head": self.name, "probe": self.probe.name}

    @classmethod
    def from_spec(cls, spec: dict, tensors: dict | None = None) -> "MeanPoolHead":
        # heads saved before regression and survival existed name no probe: theirs was logreg
        probe = head_class(spec.get("probe", "logreg")).from_spec(spec, tensors)
        return cls(seed=spec["params"].get("seed", 0), kind=getattr(probe, "task_kind", spec["kind"]), probe=probe)

    def save(self, directory: str | Path) -> Path:
        return write_model(directory, self.to_spec())
