"""Sequence encoder: attention across dates, per patch position, forward-only by default."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import Block


def temporal_mask(valid: torch.Tensor, causal: bool) -> torch.Tensor:
    """Boolean attention mask ``(B, 1, L, L)``: True where query ``i`` may see key ``j``.

    Keys must be real dates (``valid``); with ``causal`` only ``j <= i``. Every query may see
    itself, so padded rows stay finite.
    """
    length = valid.shape[1]
    allowed = valid[:, None, None, :].expand(-1, 1, length, -1)
    if causal:
        tri = torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
        allowed = allowed & tri
    eye = torch.eye(length, dtype=torch.bool, device=valid.device)
    return allowed | eye


class SequenceEncoder(nn.Module):
    """Transformer over per-date tokens of each patch position (``(B * N, L, dim)``)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.dropout) for _ in range(cfg.seq_depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor, causal: bool) -> torch.Tensor:
        """``tokens`` ``(B, L, N, dim)``, ``valid`` ``(B, L)`` -> ``(B, L, N, dim)``."""
        b, nd, n, d = tokens.shape
        x = tokens.permute(0, 2, 1, 3).reshape(b * n, nd, d)
        mask = temporal_mask(valid, causal).repeat_interleave(n, dim=0)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x).reshape(b, n, nd, d).permute(0, 2, 1, 3)
