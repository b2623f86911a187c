"""Light heads: the forecaster (embedding at t -> embedding at t + k) and the pixel decoder."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .image_encoder import unpatchify
from .layers import TimeEmbedding


class Forecaster(nn.Module):
    """Small residual MLP: ``(z_t, weather summary over (t, t+k], k) -> z_{t+k}`` per patch."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.k_embed = TimeEmbedding(cfg.dim)
        self.weather = nn.Linear(2 * cfg.weather_hidden, cfg.dim)
        self.mlp = nn.Sequential(
            nn.LayerNorm(3 * cfg.dim), nn.Linear(3 * cfg.dim, 2 * cfg.dim), nn.GELU(),
            nn.Linear(2 * cfg.dim, cfg.dim),
        )

    def summary(self, h_t: torch.Tensor, h_tk: torch.Tensor) -> torch.Tensor:
        """Weather summary over ``(t, t+k]`` from the LSTM states at ``t`` and ``t + k``."""
        return self.weather(torch.cat([h_tk, h_tk - h_t], dim=-1))

    def forward(self, z_t: torch.Tensor, weather: torch.Tensor | None, k: torch.Tensor):
        """``z_t`` ``(B, N, dim)``, ``weather`` ``(B, dim)`` or None, ``k`` ``(B,)``."""
        kz = self.k_embed(k)
        w = torch.zeros_like(kz) if weather is None else weather
        cond = torch.cat([w, kz], dim=-1).unsqueeze(1).expand(-1, z_t.shape[1], -1)
        return z_t + self.mlp(torch.cat([z_t, cond], dim=-1))


class PixelDecoder(nn.Module):
    """Light decoder: patch token -> per-pixel features (``pixel_dim``) -> reflectance."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.expand = nn.Linear(cfg.dim, cfg.patch * cfg.patch * cfg.pixel_dim)
        self.act = nn.GELU()
        self.out = nn.Linear(cfg.pixel_dim, len(cfg.bands))

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., N, dim)`` -> per-pixel features ``(..., pixel_dim, H, W)``."""
        f = self.act(self.expand(z))
        return unpatchify(f, self.cfg.patch, self.cfg.pixel_dim, self.cfg.tile)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., N, dim)`` -> normalised reflectance ``(..., C, H, W)``."""
        f = self.features(z)
        return self.out(f.movedim(-3, -1)).movedim(-1, -3)
