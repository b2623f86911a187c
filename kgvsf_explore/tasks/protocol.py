"""The two finetuning protocols and the label budget, shared by every task.

- **frozen**: the encoder's per-pixel embeddings (:meth:`~kgvsf_explore.models.KGVSF.embed`)
  are computed once; a small per-pixel MLP head is trained on them.
- **finetune**: the same head, first fitted as in the frozen protocol, then trained end to end
  with the encoder (the encoder with a ten times smaller learning rate).

The head reads, per pixel: the embedding at the last context date ``t``, the mean embedding
over the valid context dates, the embedding of the hidden date (missing-image task), for the
forecasting tasks the network's own forecast embedding at ``t + k`` (:func:`forecast_embedding`:
what its pretrained forecaster makes of the context and, if it reads them, the drivers), and the
same driver summaries for every encoder (:func:`~kgvsf_explore.tasks.data.driver_features`:
the last 30 days, and for forecasting tasks the weather of ``(t, t + k]`` and ``k``). So every
encoder gets the same task inputs; what differs is what its embedding adds.

The **label budget** is the share of the labelled finetuning pixels (group-A fields in the
finetune years) whose labels the head may use, drawn at random from the seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .base import Task
from .data import TaskData, subset

__all__ = ["ProtocolConfig", "budget_mask", "embeddings", "fit_frozen", "finetune",
           "forecast_embedding", "head_inputs", "PixelHead", "predict"]


@dataclass(frozen=True)
class ProtocolConfig:
    """Optimisation of the heads (frozen) and of encoder + head (finetune).

    Attributes
    ----------
    head_steps, head_lr, pixels_per_step
        Frozen protocol: Adam steps, learning rate and labelled pixels per step.
    ft_steps, ft_batch, ft_lr
        Finetune protocol: AdamW steps, tiles per step, head learning rate (encoder: a tenth).
    hidden
        Hidden width of the head.
    """

    head_steps: int = 300
    head_lr: float = 3e-3
    pixels_per_step: int = 4096
    ft_steps: int = 60
    ft_batch: int = 8
    ft_lr: float = 1e-3
    hidden: int = 64


def embeddings(model: nn.Module, batch: dict, batch_size: int = 16,
               forecast: bool = False) -> torch.Tensor:
    """Per-pixel embeddings ``(N, L, F, H, W)`` of a batch (with ``forecast``: the forecast
    embeddings ``(N, F, H, W)`` at ``t + k``), without gradients, in chunks."""
    fn = (lambda b: forecast_embedding(model, b)) if forecast else model.embed
    n = batch["images"].shape[0]
    out = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            out.append(fn({k: v[i:i + batch_size] for k, v in batch.items()}))
    return torch.cat(out)


def forecast_embedding(model: nn.Module, batch: dict) -> torch.Tensor:
    """Per-pixel embeddings ``(B, F, H, W)`` of the network's own forecast state at ``t + k``.

    The forecaster each objective was pretrained with maps the context (and, when the objective
    reads the weather, the drivers of ``(t, t + k]`` in ``batch["drivers"]``) to a token per
    patch at ``t + k``, which the light decoder turns into pixels; this is that token broadcast
    to its pixels plus the decoder's per-pixel features, laid out like
    :meth:`~kgvsf_explore.models.KGVSF.embed`. It is read through a hook on the decoder, so the
    network's own forecast path (including mm-vsf's query token) is used unchanged. Gradients
    flow (the finetune protocol trains through it).
    """
    state = model.encode_context(batch)
    ti, ks = batch["t_index"].long(), batch["k"].long()
    captured: list[torch.Tensor] = []
    handle = model.decoder.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        for j in range(ti.shape[0]):
            t, k = int(ti[j]), int(ks[j])
            one = state.select(j)
            future = model.norm_drivers(batch["drivers"][j:j + 1, t + 1:t + k + 1].float())
            hidden, _ = model.weather_encoder(future, None, one.lstm_state)
            model._predict(one, hidden[:, k - 1], ks[j:j + 1], future.mean(1))
    finally:
        handle.remove()
    z = torch.cat(captured)  # (B, N, dim)
    p, g = model.cfg.patch, model.cfg.tile // model.cfg.patch
    b, _, d = z.shape
    patch = z.reshape(b, g, g, d).permute(0, 3, 1, 2)
    patch = patch.repeat_interleave(p, dim=-2).repeat_interleave(p, dim=-1)
    return torch.cat([patch, model.decoder.features(z[:, None])[:, 0]], dim=1)


def head_inputs(emb: torch.Tensor, context_mask: torch.Tensor, gap: int | None,
                drivers: torch.Tensor, forecast: torch.Tensor | None = None,
                pixels: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel head inputs ``(B, D, H, W)`` from embeddings ``(B, L, F, H, W)``.

    Channels: the last date's embedding, the mean over valid context dates, the hidden date's
    embedding (when ``gap`` is set), the forecast embedding at ``t + k`` (forecasting tasks,
    :func:`forecast_embedding`), the task's own per-pixel inputs ``pixels`` ``(B, C, H, W)``
    (:meth:`~kgvsf_explore.tasks.base.Task.pixel_inputs`, e.g. a known soil moisture state),
    then the driver features ``(B, Fd)`` broadcast.
    """
    w = context_mask.float()[:, :, None, None, None]
    parts = [emb[:, -1], (emb * w).sum(1) / w.sum(1).clamp_min(1)]
    if gap is not None:
        parts.append(emb[:, gap])
    if forecast is not None:
        parts.append(forecast)
    if pixels is not None:
        parts.append(pixels.to(emb.dtype))
    h, wd = emb.shape[-2:]
    parts.append(drivers[:, :, None, None].expand(-1, -1, h, wd))
    return torch.cat(parts, 1)


class PixelHead(nn.Module):
    """A per-pixel MLP with fixed input standardisation and output scaling.

    Parameters
    ----------
    in_mean, in_std
        ``(D,)`` statistics of the inputs (from the training set's initial embeddings).
    out_dim
        Outputs per pixel.
    out_mean, out_std
        Scaling of regression outputs (``pred = out * out_std + out_mean``); None for classes.
    hidden
        Hidden width.
    """

    def __init__(self, in_mean: torch.Tensor, in_std: torch.Tensor, out_dim: int,
                 out_mean: torch.Tensor | None = None, out_std: torch.Tensor | None = None,
                 hidden: int = 64) -> None:
        super().__init__()
        d = in_mean.numel()
        self.register_buffer("in_mean", in_mean.reshape(d).float())
        self.register_buffer("in_std", in_std.reshape(d).float().clamp_min(1e-6))
        self.register_buffer("out_mean", (torch.zeros(out_dim) if out_mean is None
                                          else out_mean).reshape(out_dim).float())
        self.register_buffer("out_std", (torch.ones(out_dim) if out_std is None
                                         else out_std).reshape(out_dim).float())
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def raw_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Unscaled outputs ``(M, out)`` of pixel rows ``(M, D)`` (what the loss sees)."""
        return self.net((x - self.in_mean) / self.in_std)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Unscaled outputs ``(B, out, H, W)`` of maps ``(B, D, H, W)``."""
        return self.raw_rows(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = self.raw_rows(x.permute(0, 2, 3, 1)) * self.out_std + self.out_mean
        return rows.permute(0, 3, 1, 2)


def budget_mask(labelled: torch.Tensor, budget: float, seed: int) -> torch.Tensor:
    """Keep a random share ``budget`` (0-1] of the True pixels of ``labelled`` (at least 16).

    Examples
    --------
    >>> m = budget_mask(torch.ones(4, 10, 10, dtype=torch.bool), 0.1, 0)
    >>> int(m.sum())
    40
    """
    if not 0 < budget <= 1:
        raise ValueError(f"budget must be in (0, 1], got {budget}")
    idx = torch.nonzero(labelled.flatten()).squeeze(1)
    keep = max(min(16, idx.numel()), round(budget * idx.numel()))
    rng = np.random.default_rng(seed)
    chosen = idx[torch.from_numpy(rng.permutation(idx.numel())[:keep])]
    out = torch.zeros(labelled.numel(), dtype=torch.bool)
    out[chosen] = True
    return out.reshape(labelled.shape)


def _pixels(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rows ``(M, C)`` of ``x`` ``(N, C, H, W)`` at ``mask`` ``(N, H, W)``."""
    return x.permute(0, 2, 3, 1)[mask]


def _target_rows(task: Task, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return target[mask] if not task.regression else _pixels(target, mask)


_STATS: dict[tuple[int, tuple[int, ...]], tuple[torch.Tensor, torch.Tensor]] = {}


def _input_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of ``(N, D, H, W)`` over all pixels (cached per tensor)."""
    key = (id(x), tuple(x.shape))
    if key not in _STATS:
        _STATS.clear()  # one tensor at a time: the runner reuses one encoder's inputs
        _STATS[key] = (x.mean((0, 2, 3)), x.std((0, 2, 3)))
    return _STATS[key]


def new_head(task: Task, x_train: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
             hidden: int) -> PixelHead:
    """A head standardised on the training inputs and (regression) the labelled targets."""
    mean, std = _input_stats(x_train)
    om = os_ = None
    if task.regression:
        y = _pixels(target, mask)
        om, os_ = y.mean(0), y.std(0).clamp_min(1e-6)
    return PixelHead(mean, std, task.out_dim, om, os_, hidden)


def _head_loss(task: Task, head: PixelHead, out_raw_rows: torch.Tensor,
               y_rows: torch.Tensor) -> torch.Tensor:
    if task.regression:
        y_rows = (y_rows - head.out_mean) / head.out_std
    return task.loss(out_raw_rows, y_rows)


def fit_frozen(task: Task, x_train: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               seed: int, cfg: ProtocolConfig) -> PixelHead:
    """Train a head on fixed inputs ``x_train`` ``(N, D, H, W)`` at the pixels ``mask``."""
    torch.manual_seed(seed)
    head = new_head(task, x_train, target, mask, cfg.hidden)
    xr = _pixels(x_train, mask)
    yr = _target_rows(task, target, mask)
    opt = torch.optim.Adam(head.net.parameters(), lr=cfg.head_lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.head_steps):
        idx = torch.randint(0, xr.shape[0], (min(cfg.pixels_per_step, xr.shape[0]),),
                            generator=gen)
        out = head.raw_rows(xr[idx])
        loss = _head_loss(task, head, out, yr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


def predict(head: PixelHead, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Head outputs ``(N, out, H, W)`` for inputs ``(N, D, H, W)``."""
    with torch.no_grad():
        return torch.cat([head(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def finetune(task: Task, model: nn.Module, train: TaskData, x_train: torch.Tensor,
             target: torch.Tensor, mask: torch.Tensor, seed: int, cfg: ProtocolConfig
             ) -> tuple[nn.Module, PixelHead]:
    """Train a copy of ``model`` and a head end to end at the pixels ``mask`` of ``train``.

    The head starts from the frozen protocol's head on ``x_train`` (linear probing then full
    finetuning, "LP-FT", Kumar et al. 2022, ICLR: a random head would first distort the
    pretrained features), so a few end-to-end steps refine rather than restart.
    """
    enc = copy.deepcopy(model).train()
    head = fit_frozen(task, x_train, target, mask, seed, cfg).train()
    torch.manual_seed(seed)
    opt = torch.optim.AdamW([{"params": enc.parameters(), "lr": cfg.ft_lr / 10},
                             {"params": head.net.parameters(), "lr": cfg.ft_lr}],
                            weight_decay=0.01)
    usable = torch.nonzero(mask.flatten(1).any(1)).squeeze(1)
    rng = np.random.default_rng(seed)
    drivers = train.features(task.future)
    extra = task.pixel_inputs(train)
    for _ in range(cfg.ft_steps):
        pick = usable[torch.from_numpy(rng.choice(usable.numel(), min(cfg.ft_batch,
                                                                      usable.numel()),
                                                  replace=False))]
        sub = subset(train, pick)
        emb = enc.embed(sub.batch)
        fut = forecast_embedding(enc, sub.batch) if task.future else None
        x = head_inputs(emb, sub.batch["context_mask"], train.gap, drivers[pick], fut,
                        None if extra is None else extra[pick])
        m = mask[pick]
        loss = _head_loss(task, head, _pixels(head.raw(x), m), _target_rows(task, target[pick], m))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(enc.parameters()) + list(head.parameters()), 1.0)
        opt.step()
    return enc.eval(), head.eval()
