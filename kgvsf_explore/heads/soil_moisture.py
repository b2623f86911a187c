"""Soil moisture heads on season embeddings: estimation at an image date and forecasts.

:class:`SoilMoistureHead` regresses root-zone soil moisture on a target day ``d`` from the
embeddings of the last ``window`` image dates on or before ``d - lead_days`` (a
:class:`~.temporal.TemporalNet` whose time features are each date's day-of-year encoding, its
age at ``d`` and its clear flag). ``lead_days=0`` estimates the soil moisture of an image date;
``lead_days > 0`` forecasts it that many days after the last image the head reads. It is fitted
on a user's observations: a ``(time, y, x)`` raster or a table of points.

With ``weather=cube`` the head also reads the weather up to the target day (each driver's mean
over the 30 and the 7 days up to it, on the cube's grid): soil moisture answers rain within days,
imagery weeks later, so what fell since the last image is most of what the embeddings cannot
know. The random-forest peer reads the same two windows.
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
#: Days of the weather windows read with ``weather=`` (each ending on the target day).
WEATHER_WINDOWS = (30, 7)


class _Weather:
    """A cube's drivers as window means at embedded pixels (``weather=``)."""

    def __init__(self, cube: Any) -> None:
        from ..cube.cube import Cube
        from ..evaluation.peers.drivers import DriverSums

        if not isinstance(cube, Cube):
            raise HeadError(f"weather= takes the Cube the embeddings were made from (with its "
                            f"drivers); got {type(cube).__name__}")
        self.sums = DriverSums(cube)
        self.names = list(self.sums.names)
        self.y = pd.Index(cube.ds[schema.Y_DIM].values)
        self.x = pd.Index(cube.ds[schema.X_DIM].values)

    def _index(self, coords: pd.Index, values: np.ndarray, dim: str) -> np.ndarray:
        step = abs(float(coords[1] - coords[0])) if len(coords) > 1 else 1.0
        idx = coords.get_indexer(values, method="nearest", tolerance=step / 2)
        if (idx < 0).any():
            raise HeadError(f"the embeddings' {dim} coordinates lie outside the weather cube's "
                            "grid: pass weather= the cube the embeddings were made from")
        return idx

    def features(self, emb: xr.DataArray, rows: np.ndarray, cols: np.ndarray,
                 days: np.ndarray) -> np.ndarray:
        """``(n, V * len(WEATHER_WINDOWS))`` driver means (NaN before the cube's first day)."""
        yi = self._index(self.y, emb[schema.Y_DIM].values, schema.Y_DIM)[rows]
        xi = self._index(self.x, emb[schema.X_DIM].values, schema.X_DIM)[cols]
        return np.concatenate([self.sums.mean(days - w + 1, days, yi, xi)
                               for w in WEATHER_WINDOWS], 1)


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
        #: drivers, windows and standardisation of the weather input (None: not read)
        self.weather: dict[str, Any] | None = None

    def __repr__(self) -> str:
        state = "fitted" if self.net is not None else "not fitted"
        wx = ", weather" if self.weather else ""
        return (f"SoilMoistureHead(lead_days={self.lead_days}, window={self.window}{wx}, "
                f"{state}, weights={self.weights_sha256[:12] or '?'})")

    # ----------------------------------------------------------------- inputs
    def _windows(self, emb_days: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, window)`` date indices (clipped) and validity of each target day's window."""
        last = np.searchsorted(emb_days, days - self.lead_days, "right") - 1
        idx = last[:, None] - np.arange(self.window)[::-1][None]
        ok = (idx >= 0) & (last[:, None] >= 0)
        return np.clip(idx, 0, None), ok

    def _weather_of(self, weather: Any, fitting: bool = False) -> _Weather | None:
        """The weather reader, checked against what the head was fitted with."""
        if weather is None:
            if self.weather is not None and not fitting:
                raise HeadError("this head was fitted with weather=: pass the cube of the "
                                "embeddings as weather= here too")
            return None
        if not fitting and self.weather is None:
            raise HeadError("this head was fitted without weather=; leave it out (or refit "
                            "the head with weather=cube)")
        wx = weather if isinstance(weather, _Weather) else _Weather(weather)
        if not fitting and wx.names != self.weather["drivers"]:
            raise HeadError(f"the head reads the drivers {self.weather['drivers']}; the "
                            f"weather cube has {wx.names}")
        return wx

    def _with_weather(self, tf: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``tf`` ``(n, T, F)`` with the weather features ``w`` ``(n, V)``, standardised by
        the fitted statistics, appended to every date."""
        mean = np.asarray(self.weather["mean"], "float32")
        std = np.asarray(self.weather["std"], "float32")
        w = np.nan_to_num((w - mean) / std).astype("float32")
        return np.concatenate([tf, np.broadcast_to(w[:, None], (*tf.shape[:2], w.shape[1]))],
                              -1)

    def _weather_tf(self, wx: _Weather | None, emb: xr.DataArray, rows: np.ndarray,
                    cols: np.ndarray, days: np.ndarray, tf: np.ndarray) -> np.ndarray:
        """``tf`` with the standardised weather features appended to every date."""
        if wx is None:
            return tf
        return self._with_weather(tf, wx.features(emb, rows, cols, days))

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
            weather: Any = None, value_column: str | None = None,
            progress: bool = True) -> SoilMoistureHead:
        """Fit on soil moisture observations of one or several seasons.

        Parameters
        ----------
        embeddings
            Season embeddings ``(time, feature, y, x)``, or a list of them.
        observations
            A ``(time or day, y, x)`` DataArray on the grid (NaN: not observed) or a table of
            points (``x``, ``y`` in the grid's CRS, ``time``, value); a list (one per season)
            for several seasons, or one for all.
        weather
            The :class:`~kgvsf_explore.cube.Cube` the embeddings were made from: the head then
            also reads each driver's mean over the 30 and 7 days up to the target day, and
            needs ``weather=`` in :meth:`predict` too. None: embeddings only.
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
        wx = self._weather_of(weather, fitting=True)
        rng = np.random.default_rng(self.seed)
        per = max(1, self.max_samples // len(embs))
        xs, tfs, ms, ys, ws = [], [], [], [], []
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
            if wx is not None:
                ws.append(wx.features(e, r[use][keep], c[use][keep], d[use][keep]))
        n = sum(len(y) for y in ys)
        if n < self.min_samples:
            raise TooFewLabelsError(
                f"{n} soil moisture observations fall on embedded pixels within "
                f"{MAX_GAP_DAYS} days after an image (+{self.lead_days} days lead); the head "
                f"needs at least {self.min_samples}: add observations or embed the seasons "
                "they fall in")
        x, tf, m, y = (np.concatenate(a) for a in (xs, tfs, ms, ys))
        self.weather = None
        if wx is not None:
            w = np.concatenate(ws)
            self.weather = {"drivers": wx.names, "windows_days": list(WEATHER_WINDOWS),
                            "mean": np.nan_to_num(np.nanmean(w, 0)).tolist(),
                            "std": np.nan_to_num(np.nanstd(w, 0), nan=1.0).clip(1e-6).tolist()}
            tf = self._with_weather(tf, w)
        self.scale = (float(y.mean()), float(max(y.std(), 1e-6)))
        yt = ((y - self.scale[0]) / self.scale[1]).astype("float32")

        def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.mse_loss(out[:, 0], target)

        cfg = NetConfig(n_features=x.shape[-1], n_time=tf.shape[-1], n_out=1, hidden=self.hidden,
                        steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                        seed=self.seed)
        self.net = fit_net(cfg, x, tf, m, yt, loss, progress)
        self.info = {"observations": int(n), "seasons": [e.attrs.get("season", "")
                                                         for e in embs]}
        return self

    # ---------------------------------------------------------------- predict
    def predict_at(self, embeddings: xr.DataArray, rows: np.ndarray, cols: np.ndarray,
                   days: np.ndarray, *, weather: Any = None) -> np.ndarray:
        """Soil moisture ``(n,)`` at pixels ``(rows, cols)`` on ``days`` (since 1970).

        NaN where no image date lies on or before ``day - lead_days`` or no embedding is
        finite. ``weather``: the cube, for a head fitted with ``weather=``.
        """
        emb = check_embeddings(embeddings)
        self._check_source(emb)
        net = self._fitted()
        wx = self._weather_of(weather)
        rows, cols, days = (np.asarray(a, np.int64) for a in (rows, cols, days))
        out = np.full(len(rows), np.nan, "float32")
        if not len(rows):
            return out
        x, tf, m = self._inputs(np.asarray(emb.values), clear_of(emb), emb["doy"].values,
                                days_of(emb), rows, cols, days)
        tf = self._weather_tf(wx, emb, rows, cols, days, tf)
        ok = m.any(1)
        if ok.any():
            pred = predict_net(net, x[ok], tf[ok], m[ok])[:, 0]
            out[ok] = pred * self.scale[1] + self.scale[0]
        return out

    def predict(self, embeddings: xr.DataArray, *, weather: Any = None,
                block_pixels: int = 8192) -> xr.DataArray:
        """Soil moisture ``lead_days`` after each image date of the season embeddings.

        Parameters
        ----------
        embeddings
            Season embeddings ``(time, feature, y, x)`` of the weights the head was fitted on
            (in memory or lazy: read ``block_pixels`` at a time).
        weather
            The cube the embeddings were made from, for a head fitted with ``weather=``.
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
        wx = self._weather_of(weather)
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
                pred = self.predict_at(block, rr, cc, np.full(len(rr), ed[t] + self.lead_days),
                                       weather=wx)
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
                "time_features": "doy sin/cos x2, age/60 d, clear"
                                 + (", weather" if self.weather else ""),
                "weather": self.weather}

    def _set_config(self, cfg: dict[str, Any]) -> None:
        self.lead_days, self.window = int(cfg["lead_days"]), int(cfg["window"])
        self.scale = (float(cfg["scale"][0]), float(cfg["scale"][1]))
        self.weather = cfg.get("weather")
        net = cfg["net"]
        self.hidden, self.steps, self.seed = net["hidden"], net["steps"], net["seed"]
