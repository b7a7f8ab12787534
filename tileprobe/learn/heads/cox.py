"""A penalised Cox proportional-hazards model on standardised embeddings (scikit-survival): the linear probe of
a survival task. The ridge strength is chosen on inner folds by Harrell's concordance; the risk score is the
linear predictor (higher: the event comes sooner)."""

from __future__ import annotations

import numpy as np

from tileprobe.learn.heads.penalised import PenalisedLinearHead
from tileprobe.learn.heads.registry import register_head
from tileprobe.learn.metrics import harrell_c


@register_head("cox")
class CoxHead(PenalisedLinearHead):
    kinds = ("survival",)
    grid = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
    penalty_name = "alpha"
    tuning_score = "c_index"

    def _fit_linear(self, Z, y, penalty):
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.util import Surv

        event = y[:, 1].astype(bool)
        if not event.any():  # an inner fold without an event: no ordering to learn
            return np.zeros(Z.shape[1]), 0.0
        model = CoxPHSurvivalAnalysis(alpha=penalty, ties="breslow", n_iter=100)
        model.fit(Z, Surv.from_arrays(event, y[:, 0]))
        return np.asarray(model.coef_, dtype=np.float64), 0.0

    def _validation_score(self, y, prediction):
        return harrell_c(y[:, 0], y[:, 1], prediction)
