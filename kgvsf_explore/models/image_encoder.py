"""Image encoder: a ViT over small patches of one date's tile, shared across dates."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import Block, TimeEmbedding


def _permute_last5(x: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    lead = tuple(range(x.dim() - 5))
    return x.permute(*lead, *(len(lead) + i for i in order))


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """``(..., C, H, W)`` -> ``(..., N, C * p * p)``, patches in row-major order."""
    *lead, c, h, w = x.shape
    x = _permute_last5(x.reshape(*lead, c, h // p, p, w // p, p), (1, 3, 0, 2, 4))
    return x.reshape(*lead, (h // p) * (w // p), c * p * p)


def unpatchify(x: torch.Tensor, p: int, c: int, side: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(..., N, C * p * p)`` -> ``(..., C, H, W)``."""
    *lead, _, _ = x.shape
    g = side // p
    x = _permute_last5(x.reshape(*lead, g, g, c, p, p), (2, 0, 3, 1, 4))
    return x.reshape(*lead, c, side, side)


class ImageEncoder(nn.Module):
    """ViT over ``patch x patch`` patches of a ``tile x tile`` image with a validity channel.

    Invalid (cloudy) pixels enter as zeros *with* a mask channel that says so; the model never
    sees a zero it could mistake for a reflectance. Tokens get a learned 2-D position, a
    day-of-year embedding and a time-gap (delta to the reference date) embedding. Masked patches
    (for image MAE) are replaced by a learned mask token before the blocks.

    A band the cube never observed (``band_mask`` False) enters as zero after normalisation
    (the training mean, not a reflectance of 0), and every token of its images gets the
    learned embedding :attr:`missing_band` of that band added
    (``(~band_mask).float() @ missing_band``). ``missing_band`` starts at zero, so weights
    trained before it existed load with it zero and give exactly their former outputs on
    cubes with every band.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c, p = len(cfg.bands), cfg.patch
        self.cfg = cfg
        self.embed = nn.Linear((c + 1) * p * p, cfg.dim)
        self.pos = nn.Parameter(torch.randn(cfg.n_patches, cfg.dim) * 0.02)
        self.doy = TimeEmbedding(cfg.dim)
        self.delta = TimeEmbedding(cfg.dim)
        self.mask_token = nn.Parameter(torch.zeros(cfg.dim))
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.dropout) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        #: ``(C, dim)`` learned "band not observed" embedding (zero-initialised).
        self.missing_band = nn.Parameter(torch.zeros(c, cfg.dim))

    def forward(
        self,
        images: torch.Tensor,
        valid: torch.Tensor,
        doy: torch.Tensor,
        delta: torch.Tensor,
        patch_mask: torch.Tensor | None = None,
        band_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encode images.

        Parameters
        ----------
        images
            ``(B, L, C, H, W)`` normalised reflectance, zero where invalid.
        valid
            ``(B, L, H, W)`` bool.
        doy, delta
            ``(B, L)`` day of year and days relative to the reference date.
        patch_mask
            ``(B, L, N)`` bool, True for patches to hide (MAE), or None.
        band_mask
            ``(B, C)`` (per sample) or ``(B, L, C)`` (per image) bool, True for the bands
            observed; None: every band observed.

        Returns
        -------
        torch.Tensor
            ``(B, L, N, dim)`` patch tokens.
        """
        b, nd = images.shape[:2]
        bands = None
        if band_mask is not None:
            bands = band_mask.bool()
            if bands.dim() == 2:  # per sample: the same for every image
                bands = bands.unsqueeze(1)
            # not observed: zero after normalisation (also where the input holds NaN)
            images = torch.where(bands[..., None, None], images, images.new_zeros(()))
        x = torch.cat([images * valid.unsqueeze(2), valid.unsqueeze(2).to(images.dtype)], dim=2)
        tokens = self.embed(patchify(x, self.cfg.patch))
        if patch_mask is not None:
            tokens = torch.where(patch_mask.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens)
        tokens = tokens + self.pos + (self.doy(doy) + self.delta(delta)).unsqueeze(2)
        if bands is not None:
            missing = (~bands).to(self.missing_band.dtype) @ self.missing_band  # (B, 1|L, dim)
            tokens = tokens + missing.unsqueeze(2).to(tokens.dtype)
        t = tokens.reshape(b * nd, self.cfg.n_patches, self.cfg.dim)
        for block in self.blocks:
            t = block(t)
        return self.norm(t).reshape(b, nd, self.cfg.n_patches, self.cfg.dim)
