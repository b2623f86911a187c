"""Soil moisture forecasting on day ``t + k`` (drivers through ``t + k`` known): R^2 and RMSE
per horizon bin; from imagery alone, or from a known state on day ``t``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Task, horizon_bins
from .data import TaskData
from .soil_moisture import r2_rmse

__all__ = ["SoilMoistureForecast", "SoilMoistureForecastFromState"]


@dataclass(frozen=True)
class SoilMoistureForecast(Task):
    """Root-zone soil moisture at ``t + k`` from the context up to ``t`` and the weather of
    ``(t, t + k]``.

    The head must also estimate the state on day ``t`` from imagery. On the sample worlds most
    of the variance of the target is static (the soil texture of each pixel: each pixel's mean
    soil moisture of the finetuning years, taken as the forecast, scores R^2 0.82 on world 42,
    see ``scripts/sm_forecast_ceiling.py``), so this task scores soil mapping from imagery as
    much as forecasting; :class:`SoilMoistureForecastFromState` isolates the forecast.
    """

    name: str = "sm_forecast"
    samples: int = 2
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


@dataclass(frozen=True)
class SoilMoistureForecastFromState(SoilMoistureForecast):
    """Root-zone soil moisture at ``t + k`` from a **known** soil moisture on day ``t``, the
    context up to ``t`` and the weather of ``(t, t + k]``.

    Forecasting as a water agency does it: the initial state comes from probes or a satellite
    soil moisture product (its estimation from imagery is the ``sm_estimation`` task), and the
    forecast must say how the weather, the canopy and the soil will move it. Every head gets the
    same true state on day ``t`` as one more per-pixel input, so what an embedding adds is its
    knowledge of the dynamics. The head learns the change from that state (a residual), so
    with nothing to learn it stays at persistence. Besides R^2 and RMSE it reports ``skill``,
    the MSE skill score against persistence of the known state, ``1 - MSE / MSE(SM(t))`` (0: no
    better than assuming nothing changes; 1: perfect).
    """

    name: str = "sm_forecast_from_state"
    state: bool = True

    def target(self, data: TaskData) -> torch.Tensor:
        """The change from the known state, ``SM(t + k) - SM(t)``: a head that learns nothing
        falls back to persistence instead of to the finetuning years' mean."""
        return (data.sm_tk - data.sm_t)[:, None]

    def prediction(self, out: torch.Tensor, data: TaskData) -> torch.Tensor:
        return out + data.sm_t[:, None]

    def metrics(self, pred: torch.Tensor, data: TaskData, mask: torch.Tensor) -> dict:
        out = super().metrics(pred, data, mask)
        m = mask.numpy()
        _, still = r2_rmse(data.sm_tk.numpy()[m], data.sm_t.numpy()[m])  # persistence
        out["skill"] = 1.0 - (out["rmse"] / still) ** 2 if still > 0 else float("nan")
        return out
