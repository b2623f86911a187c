"""Soil moisture heads on season embeddings: estimation at an image date and forecasts.

:class:`SoilMoistureHead` regresses root-zone soil moisture on a target day ``d`` from the
embeddings of the last ``window`` image dates on or before ``d - lead_days`` (a
:class:`~.temporal.TemporalNet` whose time features are each date's day-of-year encoding, its
age at ``d`` and its clear flag). ``lead_days=0`` estimates the soil moisture of an image date;
``lead_days > 0`` forecasts it that many days after the last image the head reads. It is fitted
on a user's observations: a ``(time, y, x)`` raster or a table of points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .. import schema
from ._base import SeasonHead, as_list, check_embeddings, clear_of, days_of
from ._errors import HeadError, TooFewLabelsError
from .labels import observation_points
from .temporal import NetConfig, doy_features, fit_net, predict_net

__all__ = ["SoilMoistureHead"]

#: Time features per date: day-of-year sin/cos harmonics, age at the target (/60 days), clear.
N_TIME = 6
#: Observations more than this many days after the last image they could use are skipped.
MAX_GAP_DAYS = 30


class SoilMoistureHead(SeasonHead):
    """Soil moisture (m3/m3) on a day from the season embeddings up to ``lead_days`` before it.

    Parameters
    ----------
    lead_days
        0: estimate the soil moisture of the day from the images up to it; ``n > 0``: forecast
        it ``n`` days after the last image read.
    window
        Image dates read per estimate (the last ones on or before ``day - lead_days``).
    hidden, steps, batch_size, lr, seed
        Network width and training settings.
    max_samples
        Observations drawn at most (seeded).
    min_samples
        Fewest usable observations.

    Examples
    --------
    >>> emb = fc.season_embeddings(cube, None, 2021)                    # doctest: +SKIP
    >>> head = kx.SoilMoistureHead().fit(emb, stations_table)           # doctest: +SKIP
    >>> sm = head.predict(fc.season_embeddings(cube, box, 2022))        # doctest: +SKIP
    """

    kind = "soil_moisture"

    def __init__(self, lead_days: int = 0, window: int = 6, hidden: int = 64, steps: int = 800,
                 batch_size: int = 256, lr: float = 3e-3, seed: int = 0,
                 max_samples: int = 20_000, min_samples: int = 20) -> None:
        super().__init__()
        if lead_days < 0 or window < 1:
            raise HeadError(f"lead_days must be >= 0 and window >= 1 (got {lead_days}, "
                            f"{window})")
        self.lead_days, self.window = int(lead_days), int(window)
        self.hidden, self.steps, self.batch_size, self.lr, self.seed = (
            hidden, steps, batch_size, lr, seed)
        self.max_samples, self.min_samples = max_samples, min_samples
        self.scale = (0.0, 1.0)

    def __repr__(self) -> str:
        state = "fitted" if self.net is not None else "not fitted"
        return (f"SoilMoistureHead(lead_days={self.lead_days}, window={self.window}, {state}, "
                f"weights={self.weights_sha256[:12] or '?'})")

    # ----------------------------------------------------------------- inputs
    def _windows(self, emb_days: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, window)`` date indices (clipped) and validity of each target day's window."""
        last = np.searchsorted(emb_days, days - self.lead_days, "right") - 1
        idx = last[:, None] - np.arange(self.window)[::-1][None]
        ok = (idx >= 0) & (last[:, None] >= 0)
        return np.clip(idx, 0, None), ok

    def _inputs(self, values: np.ndarray, clear: np.ndarray, doy: np.ndarray,
                emb_days: np.ndarray, rows: np.ndarray, cols: np.ndarray, days: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx, ok = self._windows(emb_days, days)
        x = values[idx, :, rows[:, None], cols[:, None]].astype("float32")  # (n, W, F)
        cl = clear[idx, rows[:, None], cols[:, None]]
        mask = ok & np.isfinite(x).all(-1)
        age = (days[:, None] - emb_days[idx]).astype("float32") / 60.0
        tf = np.concatenate([doy_features(doy[idx]), age[..., None],
                             cl[..., None].astype("float32")], -1)
        return np.nan_to_num(x), tf.astype("float32"), mask

    # -------------------------------------------------------------------- fit
    def fit(self, embeddings: xr.DataArray | Sequence[xr.DataArray], observations: Any, *,
            value_column: str | None = None, progress: bool = True) -> SoilMoistureHead:
        """Fit on soil moisture observations of one or several seasons.

        Parameters
        ----------
        embeddings
            Season embeddings ``(time, feature, y, x)``, or a list of them.
        observations
            A ``(time or day, y, x)`` DataArray on the grid (NaN: not observed) or a table of
            points (``x``, ``y`` in the grid's CRS, ``time``, value); a list (one per season)
            for several seasons, or one for all.
        value_column
            The table's value column (default ``soil_moisture``, ``sm`` or ``value``).
        progress
            Show a progress bar over the training steps.

        Returns
        -------
        SoilMoistureHead
            ``self``, fitted.

        Raises
        ------
        LabelGridError, TooFewLabelsError, HeadError
        """
        embs = [check_embeddings(e) for e in as_list(embeddings)]
        obs = as_list(observations) if isinstance(observations, (list, tuple)) else [
            observations]
        if len(obs) == 1 and len(embs) > 1:
            obs = obs * len(embs)
        if len(obs) != len(embs):
            raise HeadError(f"{len(embs)} seasons of embeddings but {len(obs)} observation sets")
        self._source_of(embs)
        rng = np.random.default_rng(self.seed)
        per = max(1, self.max_samples // len(embs))
        xs, tfs, ms, ys = [], [], [], []
        for e, o in zip(embs, obs):
            r, c, d, v = observation_points(o, e, value_column=value_column)
            ed = days_of(e)
            last = np.searchsorted(ed, d - self.lead_days, "right") - 1
            gap = (d - self.lead_days) - ed[np.clip(last, 0, None)]
            use = np.nonzero((last >= 0) & (gap <= MAX_GAP_DAYS))[0]
            use = np.sort(rng.permutation(use)[:per])
            if not len(use):
                continue
            x, tf, m = self._inputs(np.asarray(e.values), clear_of(e), e["doy"].values, ed,
                                    r[use], c[use], d[use])
            keep = m.any(1)
            xs.append(x[keep])
            tfs.append(tf[keep])
            ms.append(m[keep])
            ys.append(v[use][keep])
        n = sum(len(y) for y in ys)
        if n < self.min_samples:
            raise TooFewLabelsError(
                f"{n} soil moisture observations fall on embedded pixels within "
                f"{MAX_GAP_DAYS} days after an image (+{self.lead_days} days lead); the head "
                f"needs at least {self.min_samples}: add observations or embed the seasons "
                "they fall in")
        x, tf, m, y = (np.concatenate(a) for a in (xs, tfs, ms, ys))
        self.scale = (float(y.mean()), float(max(y.std(), 1e-6)))
        yt = ((y - self.scale[0]) / self.scale[1]).astype("float32")

        def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.mse_loss(out[:, 0], target)

        cfg = NetConfig(n_features=x.shape[-1], n_time=N_TIME, n_out=1, hidden=self.hidden,
                        steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                        seed=self.seed)
        self.net = fit_net(cfg, x, tf, m, yt, loss, progress)
        self.info = {"observations": int(n), "seasons": [e.attrs.get("season", "")
                                                         for e in embs]}
        return self

    # ---------------------------------------------------------------- predict
    def predict_at(self, embeddings: xr.DataArray, rows: np.ndarray, cols: np.ndarray,
                   days: np.ndarray) -> np.ndarray:
        """Soil moisture ``(n,)`` at pixels ``(rows, cols)`` on ``days`` (since 1970).

        NaN where no image date lies on or before ``day - lead_days`` or no embedding is
        finite.
        """
        emb = check_embeddings(embeddings)
        self._check_source(emb)
        net = self._fitted()
        rows, cols, days = (np.asarray(a, np.int64) for a in (rows, cols, days))
        out = np.full(len(rows), np.nan, "float32")
        if not len(rows):
            return out
        x, tf, m = self._inputs(np.asarray(emb.values), clear_of(emb), emb["doy"].values,
                                days_of(emb), rows, cols, days)
        ok = m.any(1)
        if ok.any():
            pred = predict_net(net, x[ok], tf[ok], m[ok])[:, 0]
            out[ok] = pred * self.scale[1] + self.scale[0]
        return out

    def predict(self, embeddings: xr.DataArray, *, block_pixels: int = 8192) -> xr.DataArray:
        """Soil moisture ``lead_days`` after each image date of the season embeddings.

        Parameters
        ----------
        embeddings
            Season embeddings ``(time, feature, y, x)`` of the weights the head was fitted on
            (in memory or lazy: read ``block_pixels`` at a time).
        block_pixels
            Pixels per block.

        Returns
        -------
        xarray.DataArray
            ``(time, y, x)`` float32 soil moisture (m3/m3); ``time`` is the target day (each
            image date + ``lead_days``), coordinate ``image_time`` the image date it reads up
            to. NaN outside the embeddings' region.
        """
        emb = check_embeddings(embeddings)
        self._check_source(emb)
        self._fitted()
        nt, ny, nx = (emb.sizes[d] for d in (schema.TIME_DIM, schema.Y_DIM, schema.X_DIM))
        ed = days_of(emb)
        out = np.full((nt, ny, nx), np.nan, "float32")
        step = max(1, block_pixels // max(nx, 1))
        clear_all = clear_of(emb)
        for r0 in range(0, ny, step):
            rows = slice(r0, min(ny, r0 + step))
            block = emb.isel({schema.Y_DIM: rows}).assign_coords(
                {"clear": ((schema.TIME_DIM, schema.Y_DIM, schema.X_DIM), clear_all[:, rows])})
            block = xr.DataArray(np.asarray(block.values), dims=block.dims,
                                 coords=block.coords, attrs=block.attrs)
            nb = block.sizes[schema.Y_DIM]
            rr, cc = np.divmod(np.arange(nb * nx), nx)
            for t in range(nt):
                pred = self.predict_at(block, rr, cc, np.full(len(rr), ed[t] + self.lead_days))
                out[t, r0 + rr, cc] = pred
        times = pd.DatetimeIndex(emb[schema.TIME_DIM].values)
        coords = {k: v for k, v in emb.coords.items()
                  if set(v.dims) <= {schema.Y_DIM, schema.X_DIM}}
        coords[schema.TIME_DIM] = (times + pd.Timedelta(days=self.lead_days)).values
        coords["image_time"] = (schema.TIME_DIM, times.values)
        attrs = {"long_name": "root-zone soil moisture (season head)",
                 "units": schema.SOIL_MOISTURE_UNITS, "lead_days": self.lead_days,
                 "weights_sha256": self.weights_sha256}
        if schema.GRID_MAPPING in emb.coords:
            attrs["grid_mapping"] = schema.GRID_MAPPING
        return xr.DataArray(out, dims=(schema.TIME_DIM, schema.Y_DIM, schema.X_DIM),
                            coords=coords, attrs=attrs, name="soil_moisture")

    # ------------------------------------------------------------------ files
    def _config(self) -> dict[str, Any]:
        return {"lead_days": self.lead_days, "window": self.window, "scale": list(self.scale),
                "time_features": "doy sin/cos x2, age/60 d, clear"}

    def _set_config(self, cfg: dict[str, Any]) -> None:
        self.lead_days, self.window = int(cfg["lead_days"]), int(cfg["window"])
        self.scale = (float(cfg["scale"][0]), float(cfg["scale"][1]))
        net = cfg["net"]
        self.hidden, self.steps, self.seed = net["hidden"], net["steps"], net["seed"]
