"""Future image forecasting at ``t + k``: MSE per horizon bin and a sharpness ratio."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import schema
from .base import Task, horizon_bins
from .data import TaskData

__all__ = ["FutureImage", "gradient_magnitude", "native_forecast", "sharpness_ratio"]


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Mean spatial gradient magnitude per image, ``(N, C, H, W) -> (N,)`` (forward
    differences, all bands)."""
    gy = x[..., 1:, :-1] - x[..., :-1, :-1]
    gx = x[..., :-1, 1:] - x[..., :-1, :-1]
    return torch.sqrt(gx ** 2 + gy ** 2).mean((-3, -2, -1))


def sharpness_ratio(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean gradient magnitude of the forecasts over that of the truth (1: as sharp as the
    truth, below 1: blurred).

    Examples
    --------
    >>> x = torch.rand(2, 3, 8, 8)
    >>> sharpness_ratio(x, x)
    1.0
    """
    return float(gradient_magnitude(pred).mean() / gradient_magnitude(truth).mean())


@dataclass(frozen=True)
class FutureImage(Task):
    """Cloud-free reflectance at ``t + k`` from the context up to ``t`` and the weather of
    ``(t, t + k]``."""

    name: str = "future_image"
    samples: int = 4
    out_dim: int = len(schema.BANDS)
    future: bool = True
    primary: tuple[str, bool] = ("mse", False)

    def target(self, data: TaskData) -> torch.Tensor:
        return data.truth_tk

    def metrics(self, pred: torch.Tensor, data: TaskData, mask: torch.Tensor) -> dict:
        truth = data.truth_tk
        err = ((pred - truth) ** 2).mean(1)
        out = {"mse": float(err[mask].mean()), "sharpness": sharpness_ratio(pred, truth)}
        for label, sel in horizon_bins(data.batch["k"]):
            out[f"mse_{label}"] = float(err[sel][mask[sel]].mean())
        return out


def native_forecast(model: torch.nn.Module, data: TaskData, batch_size: int = 16
                    ) -> torch.Tensor:
    """The pretrained network's own forecast at ``t + k`` (no head, no finetuning),
    ``(N, C, H, W)``: the ``native`` rows of the table. Only encoders pretrained to forecast
    (kgvsf, sm-vsf, mm-vsf, next-token) have a trained forecaster; for the others this is what
    their untrained forecaster gives."""
    b = data.batch
    out = []
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            sl = slice(i, i + batch_size)
            sub = {key: v[sl] for key, v in b.items()}
            state = model.encode_context(sub)
            for j in range(sub["images"].shape[0]):
                ti, k = int(sub["t_index"][j]), int(sub["k"][j])
                future = sub["drivers"][j:j + 1, ti + 1:ti + k + 1]
                out.append(model.forecast(state.select(j), future, [k])[:, 0])
    return torch.cat(out)
