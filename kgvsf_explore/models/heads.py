"""Light heads: the forecaster (embedding at t -> embedding at t + k) and the pixel decoder."""

from __future__ import annotations

from dataclasses import dataclass

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
        #: with ``weather_windows``: the window's mean drivers -> the summary (starts at zero)
        self.window: nn.Linear | None = None
        if cfg.weather_windows:
            self.window = nn.Linear(len(cfg.drivers), cfg.dim)
            nn.init.zeros_(self.window.weight)
            nn.init.zeros_(self.window.bias)
        self.mlp = nn.Sequential(
            nn.LayerNorm(3 * cfg.dim), nn.Linear(3 * cfg.dim, 2 * cfg.dim), nn.GELU(),
            nn.Linear(2 * cfg.dim, cfg.dim),
        )

    def summary(self, h_t: torch.Tensor, h_tk: torch.Tensor,
                window: torch.Tensor | None = None) -> torch.Tensor:
        """Weather summary over ``(t, t+k]`` from the LSTM states at ``t`` and ``t + k``
        (and, with ``weather_windows``, ``window`` ``(B, V)``: each normalised driver's mean
        over those days; required then)."""
        out = self.weather(torch.cat([h_tk, h_tk - h_t], dim=-1))
        if self.window is not None:
            if window is None:
                raise ValueError("a weather_windows model needs the window's mean drivers")
            out = out + self.window(window.to(out.dtype))
        return out

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

    def features_last(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, N, dim)`` -> per-pixel features channels-last ``(B, H, W, pixel_dim)`` (what
        :meth:`features` holds, in the layout the per-pixel layers read without a copy)."""
        p, side, c = self.cfg.patch, self.cfg.tile, self.cfg.pixel_dim
        g = side // p
        f = self.act(self.expand(z)).reshape(z.shape[0], g, g, c, p, p)
        return f.permute(0, 1, 4, 2, 5, 3).reshape(z.shape[0], side, side, c)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., N, dim)`` -> normalised reflectance ``(..., C, H, W)``."""
        f = self.features(z)
        return self.out(f.movedim(-3, -1)).movedim(-1, -3)


@dataclass
class PixelStatic:
    """A context's horizon- and weather-independent share of :class:`PixelResidual`
    (channels-last): ``share`` ``(B, H, W, hidden)``, the input layer applied to the anchor
    and context channels; ``last`` ``(B, H, W, C)`` the last clear observation; ``has``
    ``(B, H, W, 1)`` whether there is one. ``key`` identifies the weights it was made with."""

    share: torch.Tensor
    last: torch.Tensor
    has: torch.Tensor
    key: tuple = ()


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
        #: channels of the target's season at the end of the input (``pixel_context``)
        self.n_season = 2 if cfg.pixel_context else 0
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

    def static(self, pixels: torch.Tensor) -> PixelStatic:
        """What no horizon or weather changes, from a context's ``pixels`` ``(B, C + 2
        [+ extra], H, W)`` (without the season): the input layer's share of those channels and
        the anchor, channels-last. :meth:`forward_static` reuses it for every horizon and
        scenario of the context (the dashboard's slider moves)."""
        c = self.out.out_features
        lo = self.inp.in_features - self.n_season - pixels.shape[1]
        x = pixels.movedim(1, -1)
        share = nn.functional.linear(x, self.inp.weight[:, lo:lo + pixels.shape[1]],
                                     self.inp.bias)
        return PixelStatic(share, x[..., :c].contiguous(), x[..., c:c + 1] > 0.5)

    def forward_static(self, feats: torch.Tensor, base: torch.Tensor, static: PixelStatic,
                       season: torch.Tensor | None, cond: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` from :meth:`static`'s share: ``feats`` ``(B, H, W, P)`` and
        ``base`` ``(B, H, W, C)`` channels-last, ``season`` ``(B, 2)`` (sine and cosine of the
        target's day of year; ``pixel_context`` only) -> normalised forecast ``(B, H, W, C)``."""
        n = feats.shape[-1] + base.shape[-1]
        w = self.inp.weight
        parts = [feats, base]
        if season is not None:
            parts.append(season[:, None, None].expand(*base.shape[:-1], -1).to(base.dtype))
            w = torch.cat([w[:, :n], w[:, -self.n_season:]], 1)
        else:
            w = w[:, :n]
        x = torch.cat(parts, -1)
        share = static.share.to(x.dtype)
        # one GEMM adds the share: no pass over the hidden layer of its own
        h = torch.addmm(share.reshape(-1, share.shape[-1]), x.reshape(-1, x.shape[-1]),
                        w.T.to(x.dtype)).view(share.shape)
        h = self.act(h)
        gamma, beta = self.film(cond).chunk(2, dim=-1)
        h = torch.addcmul(beta[:, None, None], h, 1 + gamma[:, None, None])
        return torch.where(static.has, static.last, base) + self.out(self.act(h))
