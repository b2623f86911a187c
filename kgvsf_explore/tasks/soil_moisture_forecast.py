"""Soil moisture forecasting on day ``t + k`` (drivers through ``t + k`` known): R^2 and RMSE
per horizon bin."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Task, horizon_bins
from .data import TaskData
from .soil_moisture import r2_rmse

__all__ = ["SoilMoistureForecast"]


@dataclass(frozen=True)
class SoilMoistureForecast(Task):
    """Root-zone soil moisture at ``t + k`` from the context up to ``t`` and the weather of
    ``(t, t + k]``."""

    name: str = "sm_forecast"
    future: bool = True
    primary: tuple[str, bool] = ("r2", True)

    def target(self, data: TaskData) -> torch.Tensor:
        return data.sm_tk[:, None]

    def metrics(self, pred: torch.Tensor, data: TaskData, mask: torch.Tensor) -> dict:
        truth, guess, m = data.sm_tk.numpy(), pred[:, 0].numpy(), mask.numpy()
        r2, rmse = r2_rmse(truth[m], guess[m])
        out = {"r2": r2, "rmse": rmse}
        for label, sel in horizon_bins(data.batch["k"]):
            s = sel.numpy()
            r2, rmse = r2_rmse(truth[s][m[s]], guess[s][m[s]])
            out[f"r2_{label}"], out[f"rmse_{label}"] = r2, rmse
        return out
