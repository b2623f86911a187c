"""Missing image prediction: a context date is hidden; MSE against its cloud-free truth."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import schema
from .base import Task
from .data import TaskData

__all__ = ["MissingImage"]


@dataclass(frozen=True)
class MissingImage(Task):
    """Reflectance of the hidden date ``context - 2`` (one later date remains in the context)."""

    name: str = "missing_image"
    samples: int = 3
    out_dim: int = len(schema.BANDS)
    gap: bool = True
    primary: tuple[str, bool] = ("mse", False)

    def target(self, data: TaskData) -> torch.Tensor:
        assert data.truth_gap is not None, "missing-image samples are drawn with gap=True"
        return data.truth_gap

    def metrics(self, pred: torch.Tensor, data: TaskData, mask: torch.Tensor) -> dict:
        err = ((pred - self.target(data)) ** 2).mean(1)
        return {"mse": float(err[mask].mean())}
