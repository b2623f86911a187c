"""The KG-VSF network: image encoder + weather LSTM + causal sequence encoder + forecaster.

Ravirathinam, Parthasarathy, Khandelwal, Ghosh, Kumar, "Towards Knowledge Guided Pretraining
Approaches for Multimodal Foundation Models: Applications in Remote Sensing", arXiv 2407.19660.
No official code exists; this follows what is known of the method (``shared/kgvsf-method.md``)
and documents its own choices. The baselines of the paper are the same network trained with
another objective (:mod:`kgvsf_explore.models.objectives`).

Tensor shapes: ``B`` batch, ``L`` context dates, ``C`` bands, ``H = W = tile``, ``N`` patches,
``D`` days of drivers, ``V`` drivers. Inputs are in raw units (reflectance, Daymet units); the
network normalises them with the statistics stored in its :class:`ModelConfig`.

Any subset of the bands may be missing from a cube: a batch's optional ``band_mask`` ``(B, C)``
bool (True = observed; absent or None = every band observed) hides the missing ones from the
image encoder (zero after normalisation plus a learned "missing" embedding, see
:class:`~kgvsf_explore.models.image_encoder.ImageEncoder`) and from every loss (left out of the
mean). Forecasts still predict every band.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .heads import Forecaster, PixelDecoder, PixelResidual, PixelStatic
from .image_encoder import ImageEncoder
from .objectives import CAUSAL, USES_WEATHER, check_objective
from .sequence_encoder import SequenceEncoder
from .weather_encoder import WeatherEncoder


@dataclass
class ContextState:
    """The encoded context of a batch of tiles, reusable for many horizons and scenarios.

    Attributes
    ----------
    tokens
        ``(B, L, N, dim)`` sequence-encoder output per context date (the embeddings).
    inputs
        ``(B, L, N, dim)`` sequence-encoder input (for the mm-vsf query path).
    valid
        ``(B, L)`` real (not padded) context dates.
    lstm_state
        LSTM ``(h, c)`` after day ``t``; forecasting continues from it.
    h_t
        ``(B, hidden)`` weather readout at ``t``.
    doy_t
        ``(B,)`` day of year of ``t``.
    objective
        Objective of the weights (decides the forecast path).
    pixels
        ``(B, C + 2, H, W)`` each pixel's last clear observation in the context (normalised),
        whether it has one and its age / 60 (models with ``pixel_residual`` only); with
        ``pixel_context``, followed by ``context * (C + 2)`` channels: every context image,
        its clear flag and its age / 60.
    """

    tokens: torch.Tensor
    inputs: torch.Tensor
    valid: torch.Tensor
    lstm_state: tuple[torch.Tensor, torch.Tensor]
    h_t: torch.Tensor
    doy_t: torch.Tensor
    objective: str
    pixels: torch.Tensor | None = None
    #: the per-pixel path's share of ``pixels``, made once for all horizons and scenarios
    #: (inference only; see :meth:`KGVSF.forecast`)
    pixel_static: PixelStatic | None = None

    def select(self, i: int) -> ContextState:
        """The state of sample ``i`` alone (batch of one)."""
        return self.take(slice(i, i + 1))

    def take(self, idx: Any) -> ContextState:
        """The state of the samples ``idx`` (a slice, or indices in the order wanted)."""
        if not isinstance(idx, slice):
            idx = torch.as_tensor(list(idx), dtype=torch.long)
        h, c = self.lstm_state
        return ContextState(self.tokens[idx], self.inputs[idx], self.valid[idx],
                            (h[:, idx], c[:, idx]), self.h_t[idx], self.doy_t[idx],
                            self.objective, None if self.pixels is None else self.pixels[idx])

    def repeat(self, times: int) -> ContextState:
        """The same context repeated ``times`` (scenario-major) to forecast many scenarios."""
        def rep(x):
            return x.repeat(times, *([1] * (x.dim() - 1)))
        h, c = self.lstm_state
        return ContextState(rep(self.tokens), rep(self.inputs), rep(self.valid),
                            (h.repeat(1, times, 1), c.repeat(1, times, 1)), rep(self.h_t),
                            rep(self.doy_t), self.objective,
                            None if self.pixels is None else rep(self.pixels))

    @staticmethod
    def cat(states: Sequence[ContextState]) -> ContextState:
        """The states of several batches of samples, one after the other."""
        if len(states) == 1:
            return states[0]
        return ContextState(
            torch.cat([s.tokens for s in states]), torch.cat([s.inputs for s in states]),
            torch.cat([s.valid for s in states]),
            (torch.cat([s.lstm_state[0] for s in states], 1),
             torch.cat([s.lstm_state[1] for s in states], 1)),
            torch.cat([s.h_t for s in states]), torch.cat([s.doy_t for s in states]),
            states[0].objective,
            None if states[0].pixels is None else torch.cat([s.pixels for s in states]))


def _ndvi(x: torch.Tensor, red: int, nir: int) -> torch.Tensor:
    """NDVI of images ``(B, C, H, W)`` in reflectance units (band indices ``red``, ``nir``)."""
    r, n = x[:, red].float(), x[:, nir].float()
    return (n - r) / (n + r).abs().clamp_min(1e-3)


def window_means(drivers: torch.Tensor, t_index: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Each driver's mean over days ``t_index + 1 .. t_index + k`` of ``drivers`` ``(B, D, V)``
    (per sample ``t_index`` and ``k``, ``(B,)``) -> ``(B, V)``."""
    sums = torch.cat([drivers.new_zeros(drivers.shape[0], 1, drivers.shape[2]),
                      drivers.cumsum(1)], 1)
    idx = torch.stack([t_index + 1, t_index + k + 1], 1).clamp(0, drivers.shape[1])
    ends = torch.gather(sums, 1, idx.unsqueeze(-1).expand(-1, -1, drivers.shape[2]))
    return (ends[:, 1] - ends[:, 0]) / k.to(drivers.dtype).unsqueeze(-1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               band_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the pixels where ``mask`` is True and the observed bands.

    Parameters
    ----------
    pred, target
        ``(B, ..., C, H, W)``; ``target`` may hold anything (even NaN) outside the mask.
    mask
        ``(B, ..., H, W)`` bool: the pixels that count (no band axis).
    band_mask
        ``(B, C)`` bool, False for bands the cube never observed (left out of the sum and of
        the count); None: every band counts.
    """
    diff = pred.float() - target.float()
    zero = diff.new_zeros(())
    if band_mask is None:
        m = mask.unsqueeze(-3).to(pred.dtype)
        # where, not a product: a NaN outside the mask neither leaks into the loss nor into
        # the gradient
        err = (torch.where(m.bool(), diff, zero) ** 2).sum()
        return err / (m.sum() * pred.shape[-3]).clamp_min(1.0)
    bands = band_mask.bool().reshape(band_mask.shape[0], *([1] * (pred.dim() - 4)),
                                     band_mask.shape[-1], 1, 1)
    m = mask.bool().unsqueeze(-3) & bands  # (B, ..., C, H, W)
    err = (torch.where(m, diff, zero) ** 2).sum()
    return err / m.sum().to(diff.dtype).clamp_min(1.0)


def _season_of(doy: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(B, 2)``: sine and cosine of the day of year ``doy`` ``(B,)``."""
    angle = 2 * torch.pi * doy.to(dtype) / 365.25
    return torch.stack([angle.sin(), angle.cos()], 1)


def _season(doy: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B, 2, H, W)``: sine and cosine of the day of year ``doy`` ``(B,)``, broadcast over
    the pixels of ``like`` ``(B, C, H, W)`` (the per-pixel path's season channels)."""
    season = _season_of(doy, like.dtype)[:, :, None, None]
    return season.expand(-1, -1, *like.shape[-2:])


class KGVSF(nn.Module):
    """KG-VSF: weather-conditioned variable-step forecasting on a multimodal backbone.

    Parameters
    ----------
    cfg
        Architecture and normalisation statistics.
    objective
        The pretraining objective these weights follow (one of
        :data:`~kgvsf_explore.models.config.OBJECTIVES`); decides whether the weather is read,
        whether attention is causal and which head forecasts.

    Examples
    --------
    >>> from kgvsf_explore.models import KGVSF, ModelConfig
    >>> model = KGVSF(ModelConfig(tile=16, dim=32, heads=2, depth=1, seq_depth=1))
    >>> sum(p.numel() for p in model.parameters()) > 0
    True
    """

    #: Parameters added after weights were first shipped, zero-initialised so that a model
    #: without them behaves exactly as before: a checkpoint may lack exactly these keys
    #: (:func:`~kgvsf_explore.training.checkpoint.load_checkpoint` sets them to zero).
    ZERO_DEFAULT_KEYS: tuple[str, ...] = ("image_encoder.missing_band",)

    def __init__(self, cfg: ModelConfig, objective: str = "kgvsf",
                 ndvi_weight: float = 0.0, pair_weight: float = 0.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.objective = check_objective(objective)
        #: weight of the NDVI term of the forecast loss (``TrainConfig.ndvi_weight``)
        self.ndvi_weight = float(ndvi_weight)
        #: weight of the paired-variant term (``TrainConfig.pair_weight``)
        self.pair_weight = float(pair_weight)
        bands = list(cfg.bands)
        #: positions of red and near infrared (NDVI), or None when a band is missing
        self._ndvi_idx = ((bands.index("B04"), bands.index("B08"))
                          if "B04" in bands and "B08" in bands else None)
        self.image_encoder = ImageEncoder(cfg)
        self.weather_encoder = WeatherEncoder(cfg)
        self.weather_token = nn.Linear(cfg.weather_hidden, cfg.dim)
        self.sequence_encoder = SequenceEncoder(cfg)
        self.forecaster = Forecaster(cfg)
        self.decoder = PixelDecoder(cfg)
        #: per-pixel residual on the last clear observation (``cfg.pixel_residual``)
        self.pixel = PixelResidual(cfg) if cfg.pixel_residual else None
        self.query_token = nn.Parameter(torch.zeros(cfg.dim))
        for name, values in (("band_mean", cfg.band_mean), ("band_std", cfg.band_std),
                             ("driver_mean", cfg.driver_mean), ("driver_std", cfg.driver_std)):
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32),
                                 persistent=False)

    # ---------------------------------------------------------------- normalisation
    def norm_images(self, x: torch.Tensor) -> torch.Tensor:
        """Raw reflectance ``(..., C, H, W)`` -> normalised."""
        return (x - self.band_mean[:, None, None]) / self.band_std[:, None, None]

    def denorm_images(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised reflectance ``(..., C, H, W)`` -> raw."""
        return x * self.band_std[:, None, None] + self.band_mean[:, None, None]

    def norm_drivers(self, d: torch.Tensor) -> torch.Tensor:
        """Raw drivers ``(..., V)`` -> normalised."""
        return (d - self.driver_mean) / self.driver_std

    # ---------------------------------------------------------------- encoding
    def _uses_weather(self, objective: str | None = None) -> bool:
        return (objective or self.objective) in USES_WEATHER

    def _context_inputs(self, batch: dict, objective: str, patch_mask=None, day_mask=None):
        images = self.norm_images(batch["images"].float())
        valid_ctx = batch["context_mask"].bool()
        valid = batch["mask"].bool() & valid_ctx[:, :, None, None]
        delta = batch["image_offsets"]
        tokens = self.image_encoder(images, valid, batch["doy"], delta, patch_mask,
                                    batch.get("band_mask"))
        hidden = None
        if self._uses_weather(objective):
            drivers = self.norm_drivers(batch["drivers"].float())
            hidden, _ = self.weather_encoder(drivers, day_mask)
            day_idx = batch["t_index"][:, None] + delta
            tokens = tokens + self.weather_token(
                self.weather_encoder.read(hidden, day_idx)
            ).unsqueeze(2)
        return images, valid, valid_ctx, tokens, hidden

    def encode_context(self, batch: dict) -> ContextState:
        """Encode the context once (images up to ``t`` and drivers up to ``t``).

        ``batch`` holds ``images``, ``mask``, ``context_mask``, ``image_offsets``, ``doy``,
        ``drivers`` (days from the first context date through ``t``; anything later is ignored)
        and ``t_index`` as produced by :func:`kgvsf_explore.cube.sampler.sample_to_tensors`,
        and optionally ``band_mask`` ``(B, C)`` (False for bands the cube never observed; None
        or absent: every band observed).
        The returned state feeds :meth:`forecast` for any number of horizons and scenarios.
        """
        objective = self.objective
        t_index = batch["t_index"]
        past = {**batch, "drivers": batch["drivers"][:, : int(t_index.max()) + 1]}
        images, valid, valid_ctx, tokens, _ = self._context_inputs(past, objective)
        seq = self.sequence_encoder(tokens, valid_ctx, objective in CAUSAL)
        pixels = (None if self.pixel is None
                  else self._pixel_history(images, valid, batch["image_offsets"]))
        b = tokens.shape[0]
        drivers = self.norm_drivers(past["drivers"].float())
        # LSTM state exactly after day t; samples sharing a t_index run together (a region's
        # tiles share their dates, so this is one LSTM call in the dashboard)
        h = tokens.new_zeros(1, b, self.cfg.weather_hidden)
        c = torch.zeros_like(h)
        for ti in torch.unique(t_index).tolist():
            sel = (t_index == ti).nonzero().squeeze(1)
            _, (hh, cc) = self.weather_encoder(drivers[sel, : ti + 1])
            h[:, sel], c[:, sel] = hh.to(h.dtype), cc.to(c.dtype)
        state, h_t = (h, c), h[0]
        doy_t = batch["doy"][:, -1]
        return ContextState(seq, tokens, valid_ctx, state, h_t, doy_t, objective, pixels)

    def forecast(self, state: ContextState, future: torch.Tensor, ks) -> torch.Tensor:
        """Forecast reflectance at ``t + k`` for every ``k`` in ``ks``.

        Parameters
        ----------
        state
            From :meth:`encode_context`.
        future
            ``(B, K, V)`` raw drivers of days ``t + 1 .. t + K`` with ``K >= max(ks)``; pass a
            batch ``S * B`` (state repeated with :meth:`repeat_state`) to run ``S`` scenarios.
        ks
            Horizons in days (ints within ``[k_min, k_max]``; any value, not a grid).

        Returns
        -------
        torch.Tensor
            ``(B, len(ks), C, H, W)`` raw reflectance.
        """
        ks = torch.as_tensor(ks, device=future.device).long().flatten()
        if int(ks.min()) < 1 or int(ks.max()) > future.shape[1]:
            raise ValueError(
                f"horizons {ks.tolist()} need drivers for days t+1..t+{int(ks.max())}; "
                f"got {future.shape[1]} days"
            )
        b = future.shape[0]
        norm = self.norm_drivers(future.float())
        hidden, _ = self.weather_encoder(norm, None, state.lstm_state)
        sums = norm.cumsum(1) if self.cfg.weather_windows else None
        out = []
        for k in ks.tolist():
            kk = torch.full((b,), k, device=future.device, dtype=torch.long)
            h_tk = hidden[:, k - 1]
            window = None if sums is None else sums[:, k - 1] / k
            out.append(self._predict(state, h_tk, kk, window))
        return self.denorm_images(torch.stack(out, dim=1))

    def _predict(self, state: ContextState, h_tk: torch.Tensor, k: torch.Tensor,
                 window: torch.Tensor | None = None):
        """Normalised prediction at ``t + k`` from an encoded context (``window``: the
        normalised drivers' means over ``(t, t+k]``, needed with ``weather_windows``)."""
        if state.objective == "mm-vsf":
            return self._query_forecast(state.inputs, state.valid, h_tk, state.doy_t, k,
                                        state.pixels)
        weather = None
        if self._uses_weather(state.objective):
            weather = self.forecaster.summary(state.h_t, h_tk, window)
        z = self.forecaster(state.tokens[:, -1], weather, k)
        static = self._pixel_static(state)
        if static is not None:
            return self._decode_static(z, weather, k, static, state.doy_t)
        return self._decode(z, weather, k, state.pixels, state.doy_t)

    def _pixel_static(self, state: ContextState) -> PixelStatic | None:
        """The state's :class:`PixelStatic`, made on first use (None when training: the
        share would go stale as the weights change, and gradients must reach them)."""
        if self.pixel is None or state.pixels is None or torch.is_grad_enabled():
            return None
        w, bias = self.pixel.inp.weight, self.pixel.inp.bias
        key = (id(w), w._version, bias._version, w.dtype, w.device, state.pixels.dtype)
        if state.pixel_static is None or state.pixel_static.key != key:
            state.pixel_static = self.pixel.static(state.pixels.to(w.dtype))
            state.pixel_static.key = key
        return state.pixel_static

    def _decode_static(self, z: torch.Tensor, weather: torch.Tensor | None, k: torch.Tensor,
                       static: PixelStatic, doy_t: torch.Tensor) -> torch.Tensor:
        """:meth:`_decode` of a ``pixel_residual`` model from the context's precomputed
        share (the same forecast, up to float rounding, with about half the work)."""
        feats = self.decoder.features_last(z)
        base = self.decoder.out(feats)
        cond = self.forecaster.k_embed(k)
        if weather is not None:
            cond = cond + weather
        season = _season_of(doy_t + k, base.dtype) if self.cfg.pixel_context else None
        return self.pixel.forward_static(feats, base, static, season, cond).movedim(-1, -3)

    def _pixel_history(self, images: torch.Tensor, valid: torch.Tensor,
                       offsets: torch.Tensor) -> torch.Tensor:
        """``(B, C + 2, H, W)``: each pixel's last clear context image (normalised; zero where
        none), a has-one flag and its age in days / 60 (1 where none)."""
        b, n, c, h, w = images.shape
        idx = torch.arange(n, device=images.device).view(1, n, 1, 1)
        last = torch.where(valid, idx, -1).amax(1)  # (B, H, W)
        has = last >= 0
        pick = last.clamp_min(0)
        img = torch.gather(images, 1, pick[:, None, None].expand(b, 1, c, h, w))[:, 0]
        age = -torch.gather(offsets[:, :, None, None].expand(b, n, h, w), 1, pick[:, None])[:, 0]
        img = torch.where(has[:, None], img, torch.zeros_like(img))
        age = torch.where(has, age.to(img.dtype) / 60.0, torch.ones_like(img[:, 0]))
        anchor = torch.cat([img, has[:, None].to(img.dtype), age[:, None]], 1)
        if not self.cfg.pixel_context:
            return anchor
        return torch.cat([anchor, self._pixel_series(images, valid, offsets)], 1)

    def _pixel_series(self, images: torch.Tensor, valid: torch.Tensor,
                      offsets: torch.Tensor) -> torch.Tensor:
        """``(B, context * (C + 2), H, W)``: every context image (zero where not clear), its
        clear flag and its age / 60, oldest first, padded in front to ``cfg.context``."""
        b, n, c, h, w = images.shape
        keep = min(n, self.cfg.context)
        images, valid, offsets = images[:, n - keep:], valid[:, n - keep:], offsets[:, n - keep:]
        clear = valid.unsqueeze(2).to(images.dtype)  # (B, L, 1, H, W)
        age = (-offsets.to(images.dtype) / 60.0)[:, :, None, None, None].expand(b, keep, 1, h, w)
        series = torch.cat([torch.where(clear > 0, images, torch.zeros_like(images)), clear,
                            age * clear], 2)
        pad = self.cfg.context - keep
        if pad:
            series = torch.cat([series.new_zeros(b, pad, c + 2, h, w), series], 1)
        return series.reshape(b, self.cfg.context * (c + 2), h, w)

    def _decode(self, z: torch.Tensor, weather: torch.Tensor | None, k: torch.Tensor,
                pixels: torch.Tensor | None, doy_t: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised reflectance at ``t + k`` from the forecast token ``z`` (with
        ``pixel_residual``: a per-pixel correction of the last clear observation)."""
        base = self.decoder(z)
        if self.pixel is None:
            return base
        if pixels is None:
            raise ValueError("a pixel_residual model needs the context's pixel history "
                             "(the state of encode_context)")
        cond = self.forecaster.k_embed(k)
        if weather is not None:
            cond = cond + weather
        pixels = pixels.to(base.dtype)
        if self.cfg.pixel_context:
            if doy_t is None:
                raise ValueError("a pixel_context model needs the day of year of t")
            pixels = torch.cat([pixels, _season(doy_t + k, base)], 1)
        return self.pixel(self.decoder.features(z), base, pixels, cond)

    def _query_forecast(self, inputs, valid, h_tk, doy_t, k, pixels=None):
        """mm-vsf: a target-date query token joins the context; bidirectional attention."""
        b, _, n, d = inputs.shape
        doy_tk = torch.remainder(doy_t + k - 1, 365) + 1
        q = (self.query_token + self.image_encoder.pos
             + (self.image_encoder.doy(doy_tk) + self.image_encoder.delta(k)).unsqueeze(1)
             + self.weather_token(h_tk).unsqueeze(1))
        seq = self.sequence_encoder(
            torch.cat([inputs, q.unsqueeze(1)], 1),
            torch.cat([valid, valid.new_ones(b, 1)], 1), causal=False,
        )
        return self._decode(seq[:, -1], None, k, pixels, doy_t)

    @staticmethod
    def repeat_state(state: ContextState, times: int) -> ContextState:
        """The same context repeated ``times`` (scenario-major) to forecast many scenarios
        (``state.repeat(times)``; an ensemble's state repeats each member's)."""
        return state.repeat(times)

    @property
    def embed_dim(self) -> int:
        """Features per pixel of :meth:`embed`."""
        extra = self.pixel.inp.out_features if self.cfg.pixel_context else 0
        return self.cfg.dim + self.cfg.pixel_dim + extra

    def embed(self, batch: dict) -> torch.Tensor:
        """Per-pixel, per-date embeddings ``(B, L, embed_dim, H, W)``.

        The patch token of the sequence encoder (broadcast over its pixels) concatenated with
        the decoder's per-pixel features; with ``pixel_context``, also the per-pixel path's
        hidden layer at that date (reading the pixel's own series up to it). No embedding sees
        a later date when the objective is causal.
        """
        return self._embedding(batch, self.encode_context(batch).tokens, 0)

    def embed_last(self, batch: dict, state: ContextState | None = None) -> torch.Tensor:
        """``embed(batch)[:, -1]``, the embeddings ``(B, embed_dim, H, W)`` at the last
        context date ``t``, without the work of the earlier dates' embeddings.

        ``state`` is this batch's :meth:`encode_context` when the caller already has it (a
        forecast from the same context), so the context is encoded once for both.
        """
        if state is None:
            state = self.encode_context(batch)
        return self._embedding(batch, state.tokens, state.tokens.shape[1] - 1)[:, 0]

    def _embedding(self, batch: dict, tokens: torch.Tensor, first: int) -> torch.Tensor:
        """``(B, L - first, embed_dim, H, W)``: the embeddings at context dates ``first``
        onwards, from the sequence encoder's output ``tokens`` ``(B, L, N, dim)``."""
        p, side = self.cfg.patch, self.cfg.tile
        g = side // p
        last = tokens[:, first:]
        b, nd, n, d = last.shape
        patch = last.reshape(b, nd, g, g, d).permute(0, 1, 4, 2, 3)
        patch = patch.repeat_interleave(p, dim=-2).repeat_interleave(p, dim=-1)
        out = torch.cat([patch, self.decoder.features(last)], dim=2)
        if self.cfg.pixel_context:
            out = torch.cat([out, self._pixel_embedding(batch, tokens, first)], dim=2)
        return out

    def _pixel_embedding(self, batch: dict, tokens: torch.Tensor,
                         first: int = 0) -> torch.Tensor:
        """``(B, L - first, hidden, H, W)``: the per-pixel path's hidden layer at each context
        date from ``first`` on, from the pixel's series up to that date and that date's
        season (no later image)."""
        images = self.norm_images(batch["images"].float())
        valid = batch["mask"].bool() & batch["context_mask"].bool()[:, :, None, None]
        offsets = batch["image_offsets"]
        out = []
        for i in range(first, tokens.shape[1]):
            z = tokens[:, i]
            base = self.decoder(z)
            hist = self._pixel_history(images[:, :i + 1], valid[:, :i + 1],
                                       offsets[:, :i + 1] - offsets[:, i:i + 1]).to(base.dtype)
            hist = torch.cat([hist, _season(batch["doy"][:, i], base)], 1)
            out.append(self.pixel.hidden(self.decoder.features(z), base, hist))
        return torch.stack(out, 1)

    # ---------------------------------------------------------------- losses
    def loss(self, batch: dict, objective: str | None = None, phase: int = 2,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss of ``objective`` in ``phase`` (1: reconstruct, 2: forecast).

        Bands the batch's ``band_mask`` marks as not observed are left out of every image loss
        (out of the sum and of the count), whatever their target values.
        """
        objective = check_objective(objective or self.objective)
        if phase == 1:
            return self._reconstruction_loss(batch, objective, generator)
        if objective == "next-token":
            return self._next_token_loss(batch)
        return self._forecast_loss(batch, objective)

    def _rand(self, shape, device, generator):
        return torch.rand(shape, device=device, generator=generator)

    def _reconstruction_loss(self, batch, objective, generator, ratio: float = 0.5):
        images = batch["images"]
        b, nd = images.shape[:2]
        dev = images.device
        valid_ctx = batch["context_mask"].bool()
        patch_mask = self._rand((b, nd, self.cfg.n_patches), dev, generator) < ratio
        # one whole date token per sample is hidden: reconstructed from the other dates (and,
        # with weather, from the drivers up to that date)
        scores = self._rand((b, nd), dev, generator).masked_fill(~valid_ctx, -1.0)
        date_mask = F.one_hot(scores.argmax(1), nd).bool()
        patch_mask = (patch_mask | date_mask.unsqueeze(-1)) & valid_ctx.unsqueeze(-1)
        day_mask = None
        if self._uses_weather(objective):
            day_mask = (self._rand(batch["drivers"].shape[:2], dev, generator) < ratio / 2)
            day_mask &= batch["drivers_mask"].bool()
        norm, valid, valid_ctx, tokens, hidden = self._context_inputs(
            batch, objective, patch_mask, day_mask)
        seq = self.sequence_encoder(tokens, valid_ctx, objective in CAUSAL)
        recon = self.decoder(seq)
        p = self.cfg.patch
        g = self.cfg.tile // p
        hide = patch_mask.reshape(b, nd, g, g).repeat_interleave(p, 2).repeat_interleave(p, 3)
        loss_img = masked_mse(recon, norm, valid & hide, batch.get("band_mask"))
        logs = {"image": float(loss_img.detach())}
        loss = loss_img
        if hidden is not None and day_mask is not None and bool(day_mask.any()):
            pred = self.weather_encoder.recon(hidden)
            target = self.norm_drivers(batch["drivers"].float())
            loss_w = ((pred - target) ** 2)[day_mask].mean()
            logs["weather"] = float(loss_w.detach())
            loss = loss + 0.5 * loss_w
        logs["loss"] = float(loss.detach())
        return loss, logs

    def _forecast_loss(self, batch, objective):
        norm_target = self.norm_images(batch["target"].float())
        images, valid, valid_ctx, tokens, hidden = self._context_inputs(batch, objective)
        pixels = (None if self.pixel is None
                  else self._pixel_history(images, valid, batch["image_offsets"]))
        k = batch["k"]
        t_index = batch["t_index"]
        if objective == "mm-vsf":
            doy_t = batch["doy"][:, -1]
            h_tk = self.weather_encoder.read(hidden, t_index + k)
            pred = self._query_forecast(tokens, valid_ctx, h_tk, doy_t, k, pixels)
        else:
            seq = self.sequence_encoder(tokens, valid_ctx, objective in CAUSAL)
            weather = None
            if hidden is not None:
                window = None
                if self.cfg.weather_windows:
                    window = window_means(self.norm_drivers(batch["drivers"].float()),
                                          t_index, k)
                weather = self.forecaster.summary(
                    self.weather_encoder.read(hidden, t_index),
                    self.weather_encoder.read(hidden, t_index + k), window,
                )
            pred = self._decode(self.forecaster(seq[:, -1], weather, k), weather, k, pixels,
                                batch["doy"][:, -1])
        target_mask = batch["target_mask"].bool()
        loss = masked_mse(pred, norm_target, target_mask, batch.get("band_mask"))
        logs = {"forecast": float(loss.detach())}
        if self.ndvi_weight > 0 and self._ndvi_idx is not None:
            loss_ndvi = self._ndvi_loss(pred, batch["target"].float(), target_mask,
                                        batch.get("band_mask"))
            logs["ndvi"] = float(loss_ndvi.detach())
            loss = loss + self.ndvi_weight * loss_ndvi
        if self.pair_weight > 0 and "pair_of" in batch:
            loss_pair = self._pair_loss(pred, norm_target, batch["target"].float(), target_mask,
                                        batch["pair_of"], batch.get("band_mask"))
            if loss_pair is not None:
                logs["pair"] = float(loss_pair.detach())
                loss = loss + self.pair_weight * loss_pair
        logs["loss"] = float(loss.detach())
        return loss, logs

    def _pair_loss(self, pred: torch.Tensor, norm_target: torch.Tensor, target: torch.Tensor,
                   mask: torch.Tensor, pair_of: torch.Tensor,
                   band_mask: torch.Tensor | None) -> torch.Tensor | None:
        """Paired-variant loss (our extension; :class:`TrainConfig` ``pair_weight``).

        ``pair_of[i]`` is the batch index of sample ``i``'s partner (the same tile, start date
        and horizon under other weather) or -1. For each pair ``(i, j)`` with ``i < j``:
        the squared error of the forecast change ``pred[j] - pred[i]`` against the observed
        change, on pixels clear in both (normalised reflectance, the mean over observed
        bands), plus the NDVI change error in units of 0.05 NDVI. None without pairs.
        """
        idx = torch.arange(len(pair_of), device=pair_of.device)
        a = idx[(pair_of > idx)]
        if a.numel() == 0:
            return None
        b = pair_of[a]
        m = mask[a] & mask[b]
        bm = None
        if band_mask is not None:
            bm = band_mask[a].bool() & band_mask[b].bool()
        change = masked_mse(pred[b] - pred[a], norm_target[b] - norm_target[a], m, bm)
        if self._ndvi_idx is None:
            return change
        red, nir = self._ndvi_idx
        if bm is not None:
            m = m & (bm[:, red] & bm[:, nir])[:, None, None]
        real = self.denorm_images(pred)
        d_pred = _ndvi(real[b], red, nir) - _ndvi(real[a], red, nir)
        d_true = _ndvi(target[b], red, nir) - _ndvi(target[a], red, nir)
        diff = torch.where(m, d_pred - d_true, pred.new_zeros((), dtype=torch.float32))
        return change + (diff / 0.05).pow(2).sum() / m.sum().clamp_min(1)

    def _ndvi_loss(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                   band_mask: torch.Tensor | None) -> torch.Tensor:
        """Mean squared NDVI error over ``mask``, in units of 0.25 NDVI (our extension)."""
        red, nir = self._ndvi_idx
        m = mask
        if band_mask is not None:
            m = m & (band_mask[:, red] & band_mask[:, nir]).bool()[:, None, None]
        diff = torch.where(m, _ndvi(self.denorm_images(pred), red, nir) - _ndvi(target, red, nir),
                           pred.new_zeros((), dtype=torch.float32))
        return (diff / 0.25).pow(2).sum() / m.sum().clamp_min(1)

    def _next_token_loss(self, batch):
        norm, valid, valid_ctx, tokens, _ = self._context_inputs(batch, "next-token")
        seq = self.sequence_encoder(tokens, valid_ctx, causal=True)
        offsets = batch["image_offsets"]
        # the next date of context position i is i + 1; of the last position, the target
        gaps = torch.cat([offsets[:, 1:] - offsets[:, :-1], batch["k"][:, None]], 1)
        nxt_img = torch.cat([norm[:, 1:], self.norm_images(batch["target"].float())[:, None]], 1)
        nxt_valid = torch.cat([valid[:, 1:], batch["target_mask"].bool()[:, None]], 1)
        pair = valid_ctx & torch.cat([valid_ctx[:, 1:], valid_ctx.new_ones(len(gaps), 1)], 1)
        b, nd, n, d = seq.shape
        z = self.forecaster(seq.reshape(b * nd, n, d), None, gaps.reshape(-1).clamp_min(1))
        pred = self.decoder(z).reshape(nxt_img.shape)
        loss = masked_mse(pred, nxt_img, nxt_valid & pair[:, :, None, None],
                          batch.get("band_mask"))
        return loss, {"next": float(loss.detach()), "loss": float(loss.detach())}
