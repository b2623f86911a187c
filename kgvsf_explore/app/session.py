"""A region's encoded context, kept so that a weather or horizon change re-forecasts in ms.

:class:`RegionSession` does the expensive part once per (region, start date): it reads the
context images of the region's tiles, encodes them (:meth:`KGVSF.encode_context`) and keeps the
stored driver cells of the forecast period (:class:`~kgvsf_explore.app.drivers.DriverMap`).
Every later call only runs the driver-dependent part, :meth:`KGVSF.forecast`, on the cached
state. Results equal :func:`~kgvsf_explore.inference.region.forecast_region`'s (a test checks
it); the baseline (observed weather) forecast is cached per horizon.

:class:`SessionCache` keeps the last few sessions, so going back to a region is free.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import schema
from ..cube.cube import Cube
from ..errors import KGVSFError
from ..inference.tiles import Stitcher, context_batches, not_observed_note, plan_tiles
from ..models.kgvsf import KGVSF
from .drivers import DriverMap


def ndvi(refl: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """NDVI from reflectance with the band axis at ``-3`` (``(..., band, y, x)``)."""
    bands = list(bands)
    nir = refl[..., bands.index("B08"), :, :]
    red = refl[..., bands.index("B04"), :, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (nir - red) / (nir + red)


class RegionSession:
    """The encoded context of one region at one start date, ready to re-forecast.

    Parameters
    ----------
    model
        A :class:`KGVSF` (put in eval mode).
    cube
        The cube.
    start
        Forecast date; ``t`` is the last image on or before it.
    rows, cols
        The region as pixel slices of the cube.
    batch_size
        Tiles per encoding pass.

    Raises
    ------
    KGVSFError
        No image on or before ``start``, no drivers after ``t``, or the cube observed none of
        the model's bands (a cube lacking some of them is fine: :attr:`band_notes` says which).

    Examples
    --------
    >>> s = RegionSession(model, cube, "2022-07-01", rows=slice(0, 64), cols=slice(0, 64))
    ... # doctest: +SKIP
    >>> s.forecast([5, 15, 30], Scenario.warming(3)).shape   # (H, band, y, x)  # doctest: +SKIP
    (3, 7, 64, 64)
    """

    def __init__(self, model: KGVSF, cube: Cube, start: Any, *, rows: slice, cols: slice,
                 batch_size: int = 64) -> None:
        self.model, self.cube = model.eval(), cube
        cfg = model.cfg
        self.plan = plan = plan_tiles(cube, cfg, start, rows=rows, cols=cols)
        self.t: pd.Timestamp = plan.t
        self.t_day = int(plan.t_day)
        self.k_max = min(cfg.k_max, len(plan.days) - 1 - self.t_day)
        if self.k_max < cfg.k_min:
            raise KGVSFError(f"the cube's drivers end {plan.days[-1].date()}: no weather after "
                             f"t = {self.t.date()} to forecast with; pick an earlier date")
        self.windows: list[tuple[int, int]] = []
        self.batches: list[tuple[list[tuple[int, int]], dict]] = []
        states = []
        with torch.no_grad():
            for chunk, batch in context_batches(plan, batch_size, progress=False):
                self.windows += list(chunk)
                self.batches.append((list(chunk), batch))
                states.append(self.model.encode_context(batch))
        self._states = states  # per batch, for the embedding at t
        self.state = states[0].cat(states)
        self.past_drivers = torch.cat([b["drivers"] for _, b in self.batches]).numpy()
        self.drivers = DriverMap(cube, self.windows, cfg.tile, cfg.drivers, self.t_day + 1,
                                 self.t_day + self.k_max)
        self._last_future: tuple[str | None, Any, list[str]] = (None, None, [])
        self._baseline: dict[int, np.ndarray] = {}
        self._embedding: np.ndarray | None = None
        self._rgb: np.ndarray | None = None
        self._age: np.ndarray | None = None
        self.warnings: list[str] = []
        #: The model's bands the cube never observed (the model predicts them from the others).
        self.missing_bands: tuple[str, ...] = plan.missing_bands
        #: A note for every forecast when bands are missing (else empty).
        self.band_notes: list[str] = (
            [not_observed_note(self.missing_bands, cfg.bands)] if self.missing_bands else [])

    # ---------------------------------------------------------------- geometry
    @property
    def rows(self) -> slice:
        """Pixel rows of the region in the cube."""
        return self.plan.rows

    @property
    def cols(self) -> slice:
        """Pixel columns of the region in the cube."""
        return self.plan.cols

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the region."""
        return (self.rows.stop - self.rows.start, self.cols.stop - self.cols.start)

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y, x)`` pixel-centre coordinates of the region."""
        ds = self.cube.ds
        return (np.asarray(ds[schema.Y_DIM].values[self.rows]),
                np.asarray(ds[schema.X_DIM].values[self.cols]))

    def check_horizons(self, horizons: Sequence[int]) -> list[int]:
        """The horizons as ints, or a :class:`KGVSFError` naming the allowed range."""
        hs = [int(h) for h in horizons]
        lo = self.model.cfg.k_min
        if not hs or min(hs) < lo or max(hs) > self.k_max:
            why = "" if self.k_max == self.model.cfg.k_max else (
                f" (the drivers end {self.plan.days[-1].date()})")
            what = f"horizon {hs[0]} days is" if len(hs) == 1 else f"horizons {hs} days are"
            raise KGVSFError(f"{what} outside the range the model can forecast from "
                             f"t = {self.t.date()}: {lo}..{self.k_max} days{why}")
        return hs

    # ---------------------------------------------------------------- forecasts
    def future(self, scenario: Any = None) -> np.ndarray:
        """Tile-mean drivers ``(tiles, K, V)`` of days ``t+1..t+K`` under ``scenario``.

        The last scenario's drivers are kept: the maps, the trajectory and the driver plot of
        one slider move ask for them three times.
        """
        if scenario is None or scenario.is_identity:
            self.warnings = []
            return self.drivers.observed
        key = scenario.to_json()
        if self._last_future[0] != key:
            out, notes = self.drivers.future(scenario)
            self._last_future = (key, out, notes)
        self.warnings = list(self._last_future[2])
        return self._last_future[1]

    def _run(self, future: np.ndarray, horizons: list[int]) -> np.ndarray:
        fut = torch.from_numpy(np.ascontiguousarray(future[:, :max(horizons)]))
        with torch.no_grad():
            out = self.model.forecast(self.state, fut, horizons)
        return out.float().numpy()

    def _stitch(self, tiles: np.ndarray) -> np.ndarray:
        stitch = Stitcher(self.plan)
        for i, origin in enumerate(self.windows):
            stitch.add(origin, tiles[i])
        return stitch.result()

    def forecast(self, horizons: Sequence[int], scenario: Any = None) -> np.ndarray:
        """Reflectance ``(horizon, band, y, x)`` under ``scenario`` (None: observed weather)."""
        hs = self.check_horizons(horizons)
        if scenario is None or scenario.is_identity:
            return self.baseline(hs)
        tiles = self._run(self.future(scenario), hs)
        return self._stitch(tiles)

    def baseline(self, horizons: Sequence[int]) -> np.ndarray:
        """Reflectance ``(horizon, band, y, x)`` under the observed weather (cached)."""
        hs = self.check_horizons(horizons)
        todo = [h for h in dict.fromkeys(hs) if h not in self._baseline]
        if todo:
            stitched = self._stitch(self._run(self.drivers.observed, todo))
            self._baseline.update({h: stitched[i] for i, h in enumerate(todo)})
        return np.stack([self._baseline[h] for h in hs])

    def pixel_forecast(self, row: int, col: int, horizons: Sequence[int],
                       scenarios: Sequence[Any] = (None,)) -> np.ndarray:
        """Reflectance ``(scenario, horizon, band)`` of one pixel (cube row/col indices).

        The tiles covering the pixel are averaged, as in the region's maps.
        """
        hs = self.check_horizons(horizons)
        tile = self.model.cfg.tile
        idx = [i for i, (r, c) in enumerate(self.windows)
               if r <= row < r + tile and c <= col < c + tile]
        if not idx:
            raise KGVSFError(f"pixel ({row}, {col}) lies outside the region")
        futs = np.concatenate([self.future(s)[idx] for s in scenarios])
        state = self.state.take(idx).repeat(len(scenarios))
        fut = torch.from_numpy(np.ascontiguousarray(futs[:, :max(hs)]))
        with torch.no_grad():
            out = self.model.forecast(state, fut, hs).float().numpy()
        out = out.reshape(len(scenarios), len(idx), len(hs), out.shape[2], tile, tile)
        vals = [out[:, j, :, :, row - self.windows[i][0], col - self.windows[i][1]]
                for j, i in enumerate(idx)]
        return np.mean(vals, axis=0)

    def tile_drivers_at(self, row: int, col: int, scenario: Any = None) -> np.ndarray:
        """Mean over the tiles covering a pixel of their drivers ``(days, V)``: the context
        days (observed) then the forecast days (under ``scenario``)."""
        tile = self.model.cfg.tile
        idx = [i for i, (r, c) in enumerate(self.windows)
               if r <= row < r + tile and c <= col < c + tile]
        fut = self.future(scenario)
        past = self.past_drivers[idx, :self.t_day - self.plan.first_day + 1]
        return np.concatenate([past.mean(0), fut[idx].mean(0)])

    def driver_days(self) -> pd.DatetimeIndex:
        """Days of :meth:`tile_drivers_at` rows."""
        return self.plan.days[self.plan.first_day:self.t_day + self.k_max + 1]

    def anchor_age(self) -> np.ndarray:
        """Days ``(y, x)`` between ``t`` and each pixel's last clear context image, read from
        the context already in memory (:data:`~kgvsf_explore.inference.intervals.NO_CLEAR_AGE`
        where none is clear); computed once."""
        if self._age is None:
            from ..inference.intervals import NO_CLEAR_AGE

            stitch = Stitcher(self.plan)
            for chunk, batch in self.batches:
                clear = (batch["mask"] & batch["context_mask"][:, :, None, None]).numpy()
                days = -batch["image_offsets"].numpy()
                age = np.full(clear.shape[:1] + clear.shape[2:], NO_CLEAR_AGE, "float64")
                for j in range(clear.shape[1]):  # oldest first: a newer clear look wins
                    age = np.where(clear[:, j], days[:, j, None, None], age)
                for i, origin in enumerate(chunk):
                    stitch.add(origin, age[i][None])
            self._age = np.rint(stitch.result()[0]).astype(np.int64)
        return self._age

    # ---------------------------------------------------------------- embeddings
    def embedding(self) -> np.ndarray:
        """Per-pixel embedding ``(feature, y, x)`` at ``t`` (computed once)."""
        if self._embedding is None:
            stitch = Stitcher(self.plan)
            with torch.no_grad():
                for (chunk, batch), state in zip(self.batches, self._states):
                    out = self.model.embed_last(batch, state).float().numpy()
                    for i, origin in enumerate(chunk):
                        stitch.add(origin, out[i])
            self._embedding = stitch.result()
        return self._embedding

    def embedding_rgb(self) -> np.ndarray:
        """``(3, y, x)`` PCA false colour of :meth:`embedding` (computed once)."""
        if self._rgb is None:
            import xarray as xr

            from ..embeddings import pca_rgb

            da = xr.DataArray(self.embedding(), dims=("feature", schema.Y_DIM, schema.X_DIM))
            self._rgb = np.asarray(pca_rgb(da).values)
        return self._rgb


def with_drivers_in_memory(cube: Cube, max_values: int = 4_000_000) -> Cube:
    """The cube with its stored drivers loaded into memory when they are small.

    Coarse-grid or station drivers are a few MB; reading tile means from memory instead of
    through dask makes a region's context many times faster to build. Large pixel-grid
    drivers stay lazy.
    """
    ds = cube.ds
    names = [n for n in cube.driver_names]
    if not names or sum(ds[n].size for n in names) > max_values:
        return cube
    loaded = ds.assign({n: ds[n].load() for n in names})
    return Cube(loaded, fields=cube.fields)


class SessionCache:
    """The last ``size`` :class:`RegionSession` objects, keyed by region and ``t``.

    Thread-safe: a miss is built outside the cache's lock (two threads missing the same key at
    once may both build it; the cache keeps one).

    Examples
    --------
    >>> cache = SessionCache(model, cube)                                 # doctest: +SKIP
    >>> s = cache.get("2022-07-01", slice(0, 64), slice(0, 64))           # encodes
    ... # doctest: +SKIP
    >>> cache.get("2022-07-02", slice(0, 64), slice(0, 64)) is s   # same t # doctest: +SKIP
    True
    """

    def __init__(self, model: KGVSF, cube: Cube, size: int = 4) -> None:
        self.model, self.cube, self.size = model, cube, size
        self._items: OrderedDict[tuple, RegionSession] = OrderedDict()
        self._times = pd.DatetimeIndex(cube.ds[schema.TIME_DIM].values)
        self._lock = threading.Lock()

    def key(self, start: Any, rows: slice, cols: slice) -> tuple:
        """The cache key: the region's slices and the context's last image date."""
        n = int((self._times <= pd.Timestamp(start)).sum())
        t = self._times[n - 1] if n else None
        return (rows.start, rows.stop, cols.start, cols.stop, t)

    def get(self, start: Any, rows: slice, cols: slice) -> RegionSession:
        """The session of this region and date (built on a miss)."""
        key = self.key(start, rows, cols)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        session = RegionSession(self.model, self.cube, start, rows=rows, cols=cols)
        with self._lock:
            session = self._items.setdefault(key, session)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return session

    def __contains__(self, key: tuple) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)
