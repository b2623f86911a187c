"""Soil moisture estimation on day ``t`` from imagery and drivers up to ``t``: R^2 and RMSE."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import Task
from .data import TaskData

__all__ = ["SoilMoisture", "r2_rmse"]


def r2_rmse(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Coefficient of determination ``1 - SS_res / SS_tot`` and root mean squared error.

    Examples
    --------
    >>> r2_rmse(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    (1.0, 0.0)
    """
    truth, pred = np.asarray(truth, float).ravel(), np.asarray(pred, float).ravel()
    if truth.size == 0:
        return float("nan"), float("nan")
    res = float(((truth - pred) ** 2).sum())
    tot = float(((truth - truth.mean()) ** 2).sum())
    r2 = 1.0 - res / tot if tot > 0 else float("nan")
    return r2, float(np.sqrt(res / truth.size))


@dataclass(frozen=True)
class SoilMoisture(Task):
    """Root-zone soil moisture (m3/m3) on day ``t``, the last context date."""

    name: str = "sm_estimation"
    samples: int = 1
    primary: tuple[str, bool] = ("r2", True)

    def target(self, data: TaskData) -> torch.Tensor:
        return data.sm_t[:, None]

    def metrics(self, pred: torch.Tensor, data: TaskData, mask: torch.Tensor) -> dict:
        m = mask.numpy()
        r2, rmse = r2_rmse(data.sm_t.numpy()[m], pred[:, 0].numpy()[m])
        return {"r2": r2, "rmse": rmse}
