"""Building blocks shared by the encoders: time features and a pre-norm transformer block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Periods (days) of the sinusoidal features of day-of-year, time gaps and horizons.
PERIODS = (365.25, 182.6, 91.3, 30.4, 10.0, 3.0)


class TimeEmbedding(nn.Module):
    """Embed a number of days (a day of year, a gap, a horizon ``k``) into ``dim`` features.

    Sinusoids of :data:`PERIODS` plus the value in years go through a linear layer, so any
    integer (or fractional) number of days is valid: horizons are not a fixed grid.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer(
            "omega", torch.tensor([2 * math.pi / p for p in PERIODS]), persistent=False
        )
        self.proj = nn.Linear(2 * len(PERIODS) + 1, dim)

    def forward(self, days: torch.Tensor) -> torch.Tensor:
        d = days.float().unsqueeze(-1)
        phase = d * self.omega
        return self.proj(torch.cat([phase.sin(), phase.cos(), d / 365.25], dim=-1))


class Block(nn.Module):
    """Pre-norm transformer block with :func:`torch.nn.functional.scaled_dot_product_attention`.

    ``attn_mask`` is boolean, True where attention is allowed, broadcastable to
    ``(batch, heads, queries, keys)``.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + self.out(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))
