"""What every downstream task defines: its samples, its targets, its loss and its metric."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..cube.cube import Cube
from ..models.config import ModelConfig
from .data import TaskData, draw
from .split import FieldYearSplit

__all__ = ["HORIZON_BINS", "Task", "horizon_bins"]

#: Horizon bins (days) of the per-horizon metrics: (0, 15], (15, 30], (30, 45], (45, 60].
HORIZON_BINS: tuple[int, ...] = (0, 15, 30, 45, 60)


def horizon_bins(k: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """``[(label, samples in the bin)]`` for horizons ``k`` ``(N,)``: labels like ``h15``."""
    out = []
    for a, b in zip(HORIZON_BINS[:-1], HORIZON_BINS[1:]):
        sel = (k > a) & (k <= b)
        if bool(sel.any()):
            out.append((f"h{b}", sel))
    return out


@dataclass(frozen=True)
class Task:
    """A downstream task (subclasses set the fields and implement the methods).

    Attributes
    ----------
    name
        Short name used in the table and on the command line.
    out_dim
        Outputs per pixel of the head (classes or regressed values).
    future
        The head also receives the drivers over ``(t, t + k]`` (forecasting tasks).
    gap
        One context date is hidden (missing image prediction).
    state
        The head also receives the true soil moisture on day ``t`` as a per-pixel input
        (forecasting from a known initial state, :meth:`pixel_inputs`).
    months
        Months ``(first, last)`` the samples' dates ``t`` come from (None: the whole year).
    primary
        The metric the summary reports, and whether higher is better.
    samples
        Index of the task's fixed sample draw (finetune seed ``1000 + samples``, test seed
        ``2000 + samples``); tasks with the same index and sampling options share samples.
    """

    name: str = ""
    out_dim: int = 1
    future: bool = False
    gap: bool = False
    state: bool = False
    months: tuple[int, int] | None = None
    primary: tuple[str, bool] = ("", True)
    regression: bool = True
    samples: int = 0

    def draw(self, cube: Cube, split: FieldYearSplit, part: str, cfg: ModelConfig, n: int,
             seed: int) -> TaskData:
        """The task's samples of one part of the split."""
        return draw(cube, split, part, cfg, n, seed, months=self.months, gap=self.gap)

    def pixel_inputs(self, data: TaskData) -> torch.Tensor | None:
        """Per-pixel inputs ``(N, C, H, W)`` the task gives every head besides the embeddings
        and the driver summaries (None: none). With ``state``: soil moisture on day ``t``."""
        return data.sm_t[:, None].float() if self.state else None

    def target(self, data: TaskData) -> torch.Tensor:
        """Targets ``(N, out_dim, H, W)`` (float) or ``(N, H, W)`` (class codes)."""
        raise NotImplementedError

    def prediction(self, out: torch.Tensor, data: TaskData) -> torch.Tensor:
        """The task's prediction ``(N, out_dim, H, W)`` from the head's outputs on ``data``
        (the head learns :meth:`target`; a task may learn a residual and add it back here)."""
        return out

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of per-pixel predictions ``(M, out_dim)`` against targets ``(M, ...)``."""
        return torch.nn.functional.mse_loss(pred, target)

    def metrics(self, pred: torch.Tensor, data: TaskData, mask: torch.Tensor) -> dict:
        """Metrics of full-tile predictions ``(N, out_dim, H, W)`` on the pixels ``mask``."""
        raise NotImplementedError
