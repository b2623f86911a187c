"""What each pretraining objective trains, on one shared backbone.

========== ======================= =========== ============= ===========================
objective  loss                    weather     attention     phases
========== ======================= =========== ============= ===========================
kgvsf      MR, then VSF            driver      causal        2 (reconstruct, forecast)
sm-mr      image MAE + date tokens none        bidirectional 1
mm-mr      MR incl. masked weather input       bidirectional 1
sm-vsf     variable-step forecast  none        causal        1
mm-vsf     forecast via a query    input       bidirectional 1
           token of the target
next-token next image date         none        causal        1
========== ======================= =========== ============= ===========================

"MR" is masked reconstruction: random image patches (MAE), random driver days and one whole date
token per sample are hidden and reconstructed. "VSF" is variable-step forecasting: from the
context up to ``t`` (and, for KG-VSF, the weather through ``t + k``) predict the image at
``t + k``. Every objective gets the same number of optimiser steps.
"""

from __future__ import annotations

from .config import OBJECTIVES, TrainConfig

#: Objectives whose model reads the weather drivers.
USES_WEATHER = frozenset({"kgvsf", "mm-mr", "mm-vsf"})
#: Objectives whose sequence encoder attends forward only.
CAUSAL = frozenset({"kgvsf", "sm-vsf", "next-token"})


def check_objective(objective: str) -> str:
    """Return ``objective`` or raise a ValueError listing the valid ones."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {OBJECTIVES}")
    return objective


def phase_schedule(train: TrainConfig) -> list[tuple[int, int]]:
    """``[(phase, steps), ...]`` of a run: phase 1 reconstructs, phase 2 forecasts.

    KG-VSF runs both phases; the baselines run one phase for the same total number of steps.
    """
    total = train.phase1_steps + train.phase2_steps
    if train.objective == "kgvsf":
        return [(1, train.phase1_steps), (2, train.phase2_steps)]
    if train.objective in ("sm-mr", "mm-mr"):
        return [(1, total)]
    return [(2, total)]
