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


class PixelResidual(nn.Module):
    """Per-pixel correction of each pixel's last clear observation (``pixel_residual``).

    A forecast is ``anchor + delta``: the anchor is the pixel's last clear observation in the
    context (where it has none, the token decoder's output), and ``delta`` comes from a small
    per-pixel MLP reading the decoder's per-pixel features, the token decoder's output, the
    anchor, whether it exists and its age, modulated (FiLM) by the tile's weather summary and
    horizon. The output layer starts at zero, so an untrained model forecasts persistence, and
    the weather can act differently on every pixel through its own state.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = len(cfg.bands)
        hidden = 2 * cfg.pixel_dim
        extra = 0
        if cfg.pixel_context:  # the pixel's context series and the target's season
            hidden = 4 * cfg.pixel_dim
            extra = cfg.context * (c + 2) + 2
        self.inp = nn.Linear(cfg.pixel_dim + 2 * c + 2 + extra, hidden)
        self.film = nn.Linear(cfg.dim, 2 * hidden)
        self.act = nn.GELU()
        self.out = nn.Linear(hidden, c)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def hidden(self, feats: torch.Tensor, base: torch.Tensor,
               pixels: torch.Tensor) -> torch.Tensor:
        """The per-pixel hidden layer before the weather's modulation, ``(B, hidden, H, W)``
        (part of the embeddings of ``pixel_context`` models)."""
        x = torch.cat([feats, base, pixels], 1).movedim(1, -1)
        return self.act(self.inp(x)).movedim(-1, 1)

    def forward(self, feats: torch.Tensor, base: torch.Tensor, pixels: torch.Tensor,
                cond: torch.Tensor) -> torch.Tensor:
        """``feats`` ``(B, P, H, W)``, ``base`` ``(B, C, H, W)`` (normalised), ``pixels``
        ``(B, C + 2 [+ extra], H, W)`` (last clear observation, has-one flag, age / 60, then
        with ``pixel_context`` the context series and the target's season), ``cond``
        ``(B, dim)`` -> normalised forecast ``(B, C, H, W)``."""
        c = base.shape[1]
        last, has = pixels[:, :c], pixels[:, c:c + 1]
        x = torch.cat([feats, base, pixels], 1).movedim(1, -1)
        h = self.act(self.inp(x))
        gamma, beta = self.film(cond).chunk(2, dim=-1)
        h = h * (1 + gamma[:, None, None]) + beta[:, None, None]
        delta = self.out(self.act(h)).movedim(-1, 1)
        return torch.where(has > 0.5, last, base) + delta
