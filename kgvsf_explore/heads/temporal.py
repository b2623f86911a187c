"""A small per-pixel temporal network over a sequence of embeddings, and its training loop.

:class:`TemporalNet` reads a pixel's sequence of embeddings ``(T, F)`` with per-date time
features (day-of-year encoding, age, clear flag), one residual 1D convolution over the dates,
then masked attention pooling and a masked mean (masked dates, e.g. cloudy ones or padding, do
not enter the pooling) and an MLP to the outputs. The heads of :mod:`.crop_map` and
:mod:`.soil_moisture` are this network with different inputs and losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["NetConfig", "TemporalNet", "doy_features", "fit_net", "predict_net"]

#: Harmonics of the day-of-year encoding (sin and cos of each).
DOY_HARMONICS = 2


def doy_features(doy: np.ndarray) -> np.ndarray:
    """``(..., 2 * DOY_HARMONICS)`` sin/cos encoding of day-of-year values ``(...)``."""
    ang = 2 * np.pi * np.asarray(doy, "float32")[..., None] / 365.25
    k = np.arange(1, DOY_HARMONICS + 1, dtype="float32")
    return np.concatenate([np.sin(ang * k), np.cos(ang * k)], -1).astype("float32")


@dataclass(frozen=True)
class NetConfig:
    """Sizes and training settings of a :class:`TemporalNet`.

    Attributes
    ----------
    n_features, n_time, n_out
        Embedding features, time features per date, outputs.
    hidden
        Width of the network.
    kernel
        Dates the convolution spans.
    dropout
        Dropout before the output layer.
    input_dropout
        Dropout of the embedding features (training only; a regulariser).
    bins
        0: attention pooling over the dates; ``K > 0``: the dates' features are averaged into
        ``K`` day-of-year bins (the time features' first sin/cos pair gives the day of year),
        a convolution runs over the bins, and the flattened bins feed the output layers.
    steps, batch_size, lr, weight_decay, seed
        Training: AdamW steps, pixels per step, learning rate, weight decay, seed.
    """

    n_features: int
    n_time: int
    n_out: int
    hidden: int = 64
    kernel: int = 3
    dropout: float = 0.1
    input_dropout: float = 0.0
    bins: int = 0
    steps: int = 800
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-2
    seed: int = 0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


class TemporalNet(nn.Module):
    """Per-pixel sequence model: embeddings + time features -> outputs (see the module doc).

    Parameters
    ----------
    cfg
        Sizes (:class:`NetConfig`).
    """

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.register_buffer("mean", torch.zeros(cfg.n_features))
        self.register_buffer("std", torch.ones(cfg.n_features))
        self.inp = nn.Linear(cfg.n_features + cfg.n_time, h)
        self.conv = nn.Conv1d(h, h, cfg.kernel, padding=cfg.kernel // 2)
        self.score = nn.Linear(h, 1)
        pooled = 2 * h if cfg.bins == 0 else cfg.bins * (h + 1)
        if cfg.bins:
            self.bin_conv = nn.Conv1d(h + 1, h + 1, 3, padding=1)
        self.out = nn.Sequential(nn.LayerNorm(pooled), nn.Dropout(cfg.dropout),
                                 nn.Linear(pooled, h), nn.GELU(),
                                 nn.Dropout(cfg.dropout), nn.Linear(h, cfg.n_out))

    def forward(self, x: torch.Tensor, tf: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, n_out)`` of sequences ``x (N, T, F)``, ``tf (N, T, n_time)`` and
        ``mask (N, T)`` (True: the date counts; a row with no True date counts every date)."""
        mask = mask | ~mask.any(1, keepdim=True)
        x = torch.nan_to_num((x - self.mean) / self.std)
        if self.cfg.input_dropout:
            x = nn.functional.dropout(x, self.cfg.input_dropout, self.training)
        m = mask[..., None].to(x.dtype)
        h = nn.functional.gelu(self.inp(torch.cat([x, tf], -1))) * m
        h = h + nn.functional.gelu(self.conv(h.transpose(1, 2)).transpose(1, 2)) * m
        if self.cfg.bins:
            return self.out(self._binned(h, tf, m))
        s = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        att = (torch.softmax(s, 1)[..., None] * h).sum(1)
        mean = h.sum(1) / m.sum(1).clamp_min(1.0)
        return self.out(torch.cat([att, mean], -1))


    def _binned(self, h: torch.Tensor, tf: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``(N, bins * (hidden + 1))``: masked mean of ``h`` per day-of-year bin and the
        share of dates each bin holds, mixed by a convolution over the bins."""
        k = self.cfg.bins
        frac = torch.remainder(torch.atan2(tf[..., 0], tf[..., DOY_HARMONICS]), 2 * np.pi)
        idx = (frac / (2 * np.pi) * k).long().clamp(0, k - 1)
        onehot = nn.functional.one_hot(idx, k).to(h.dtype) * m  # (N, T, K)
        count = onehot.sum(1)  # (N, K)
        pooled = torch.einsum("ntk,nth->nkh", onehot, h) / count.clamp_min(1.0)[..., None]
        share = (count / count.sum(1, keepdim=True).clamp_min(1.0))[..., None]
        z = torch.cat([pooled, share], -1).transpose(1, 2)  # (N, H + 1, K)
        z = z + nn.functional.gelu(self.bin_conv(z))
        return z.flatten(1)


def fit_net(cfg: NetConfig, x: np.ndarray, tf: np.ndarray, mask: np.ndarray, y: np.ndarray,
            loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
            progress: bool = False) -> TemporalNet:
    """Fit a :class:`TemporalNet` on ``n`` sequences (seeded; deterministic on CPU).

    Parameters
    ----------
    cfg
        Sizes and training settings.
    x, tf, mask
        ``(n, T, F)`` embeddings, ``(n, T, n_time)`` time features, ``(n, T)`` bool mask.
    y
        ``(n,)`` targets (class indices or values), as the loss expects.
    loss
        ``loss(outputs, targets) -> scalar``.
    progress
        Show a tqdm bar over the steps.

    Returns
    -------
    TemporalNet
        In eval mode, with the feature standardisation in its buffers.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    net = TemporalNet(cfg)
    valid = np.broadcast_to(mask[..., None], x.shape)
    vals = np.where(valid & np.isfinite(x), x, np.nan).reshape(-1, x.shape[-1])
    mu = np.nan_to_num(np.nanmean(vals, 0))
    sd = np.nan_to_num(np.nanstd(vals, 0), nan=1.0)
    net.mean.copy_(torch.from_numpy(mu.astype("float32")))
    net.std.copy_(torch.from_numpy(np.maximum(sd, 1e-6).astype("float32")))
    xt, tt = torch.from_numpy(np.ascontiguousarray(x, "float32")), torch.from_numpy(tf)
    mt, yt = torch.from_numpy(mask), torch.from_numpy(y)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(xt)
    net.train()
    for _ in tqdm(range(cfg.steps), desc="fitting head", disable=not progress, leave=False):
        idx = torch.randint(0, n, (min(cfg.batch_size, n),), generator=gen)
        out = net(xt[idx], tt[idx], mt[idx])
        opt.zero_grad()
        loss(out, yt[idx]).backward()
        opt.step()
        sched.step()
    return net.eval()


def predict_net(net: TemporalNet, x: np.ndarray, tf: np.ndarray, mask: np.ndarray,
                batch: int = 4096) -> np.ndarray:
    """Outputs ``(n, n_out)`` of a fitted net, ``batch`` sequences at a time."""
    outs = []
    with torch.no_grad():
        for a in range(0, len(x), batch):
            outs.append(net(torch.from_numpy(np.ascontiguousarray(x[a:a + batch], "float32")),
                            torch.from_numpy(np.ascontiguousarray(tf[a:a + batch])),
                            torch.from_numpy(np.ascontiguousarray(mask[a:a + batch])))
                        .numpy())
    return np.concatenate(outs) if outs else np.zeros((0, net.cfg.n_out), "float32")
