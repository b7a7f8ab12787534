"""Ridge regression on standardised embeddings: the linear probe of a numeric target (age, tumour fraction, an
expression score). The L2 strength is chosen on inner folds by the squared error; scikit-learn fits."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge

from tileprobe.learn.heads.penalised import PenalisedLinearHead
from tileprobe.learn.heads.registry import register_head


@register_head("ridge")
class RidgeHead(PenalisedLinearHead):
    kinds = ("regression",)
    # On standardised features the useful strength grows with the number of dimensions: a wide grid.
    grid = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0)
    penalty_name = "alpha"
    tuning_score = "neg_mse"

    def _fit_linear(self, Z, y, penalty):
        model = Ridge(alpha=penalty).fit(Z, y)
        return model.coef_, float(model.intercept_)

    def _validation_score(self, y, prediction):
        return -float(np.mean((y - prediction) ** 2))
