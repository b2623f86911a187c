"""One-directional weather encoder: an LSTM over the daily drivers, read out at any day."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig


class WeatherEncoder(nn.Module):
    """LSTM over normalised daily drivers plus a "this day is masked" flag.

    Being one-directional, its state on day ``d`` depends only on drivers up to ``d``: the
    readout at ``t + k`` summarises the weather up to the target date and nothing later.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        v = len(cfg.drivers)
        self.lstm = nn.LSTM(v + 1, cfg.weather_hidden, batch_first=True)
        self.recon = nn.Linear(cfg.weather_hidden, v)  # masked-weather reconstruction head

    def forward(
        self,
        drivers: torch.Tensor,
        day_mask: torch.Tensor | None = None,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run over ``(B, D, V)`` normalised drivers; ``day_mask`` ``(B, D)`` hides days.

        Returns the hidden state of every day ``(B, D, hidden)`` and the final LSTM state, so
        a later call can continue from it (forecasting many scenarios from one context).
        """
        if day_mask is None:
            day_mask = torch.zeros(drivers.shape[:2], dtype=torch.bool, device=drivers.device)
        x = torch.cat(
            [drivers * ~day_mask.unsqueeze(-1), day_mask.unsqueeze(-1).to(drivers.dtype)], -1
        )
        out, new_state = self.lstm(x, state)
        return out, new_state

    @staticmethod
    def read(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Hidden states at day ``index`` (``(B,)`` or ``(B, L)``) -> ``(B, [L,] hidden)``."""
        squeeze = index.dim() == 1
        idx = index.view(index.shape[0], -1).clamp(0, hidden.shape[1] - 1)
        out = torch.gather(hidden, 1, idx.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        return out[:, 0] if squeeze else out
