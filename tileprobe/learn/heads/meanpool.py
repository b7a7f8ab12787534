"""Mean pooling + the tuned logistic regression: the slide-level baseline that attention MIL must beat.

It takes bags of tile embeddings (like `abmil`), so the two compare on exactly the same input.
"""

from __future__ import annotations

import numpy as np

from tileprobe.learn.data import tile_mean
from tileprobe.learn.heads.logreg import LogRegHead
from tileprobe.learn.heads.registry import register_head


def mean_of_bags(bags) -> np.ndarray:
    return np.stack([tile_mean(b) for b in bags])


@register_head("meanpool")
class MeanPoolHead(LogRegHead):
    input = "bags"

    def fit(self, bags, y, groups=None) -> "MeanPoolHead":
        return super().fit(mean_of_bags(bags), y, groups)

    def predict_proba(self, bags) -> np.ndarray:
        return super().predict_proba(mean_of_bags(bags))
