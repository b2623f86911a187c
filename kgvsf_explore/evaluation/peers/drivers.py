"""Driver summaries over any window of days, per pixel, from cumulative sums.

The trees need, for every case, the mean of each driver over ``(t, t + k]`` and over the 30
days up to ``t``. :class:`DriverSums` reads the daily drivers once on a coarse grid of
``block`` x ``block``-pixel cells (the weather varies over hundreds of metres, a sample
world's grid is 320 m), applies a scenario exactly as the model's forecast does, and keeps
their cumulative sums over days, so a window mean is two lookups per pixel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ... import schema
from ...cube.cube import Cube
from ...cube.regrid import drivers_on_pixels
from ...inference.region import scenario_drivers

__all__ = ["DriverSums", "PAST_DAYS"]

#: Days of the "weather before t" summary.
PAST_DAYS = 30


class DriverSums:
    """Cumulative daily drivers of a cube on a coarse cell grid.

    Parameters
    ----------
    cube
        The cube.
    scenario
        A :class:`~kgvsf_explore.Scenario` applied to the drivers (None: observed weather).
    block
        Cell edge in pixels (default: at most 64 x 64 cells over the cube, at least 8 px).
    """

    def __init__(self, cube: Cube, scenario: Any = None, block: int | None = None) -> None:
        ds = cube.ds
        ny, nx = ds.sizes[schema.Y_DIM], ds.sizes[schema.X_DIM]
        self.block = int(block or max(8, -(-max(ny, nx) // 64)))
        self.names: tuple[str, ...] = tuple(v for v in schema.DRIVERS if v in cube.driver_names)
        drivers = scenario_drivers(cube, scenario)
        rows = np.arange(ny)[self.block // 2::self.block]
        cols = np.arange(nx)[self.block // 2::self.block]
        centres = xr.Dataset(coords={schema.Y_DIM: ds[schema.Y_DIM].values[rows],
                                     schema.X_DIM: ds[schema.X_DIM].values[cols]})
        merged = xr.merge([drivers, centres], compat="override", join="outer")
        if schema.Y_DIM in drivers.dims:  # already on pixels: take the cell centres
            merged = drivers.isel({schema.Y_DIM: rows, schema.X_DIM: cols})
        on = drivers_on_pixels(merged, self.names)
        daily = np.stack([np.asarray(on[v].values, "float64") for v in self.names], 1)
        daily = np.nan_to_num(daily, nan=0.0)  # gaps: the model refuses them; sums stay finite
        #: ``(D + 1, V, cy, cx)`` cumulative sums over days (row 0 is zero)
        self.cum = np.concatenate([np.zeros((1, *daily.shape[1:])), np.cumsum(daily, 0)])
        self.days = (cube.days - pd.Timestamp("1970-01-01")).days.to_numpy()
        self.n_cells = (len(rows), len(cols))

    def _cells(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.minimum(rows // self.block, self.n_cells[0] - 1),
                np.minimum(cols // self.block, self.n_cells[1] - 1))

    def mean(self, first: np.ndarray | int, last: np.ndarray | int, rows: np.ndarray,
             cols: np.ndarray) -> np.ndarray:
        """``(n, V)`` mean of each driver over days ``first .. last`` inclusive (days since
        1970, per pixel or scalars); NaN where the window leaves the drivers' days."""
        d0 = self.days[0]
        a = np.asarray(first) - d0
        b = np.asarray(last) - d0 + 1
        ok = (a >= 0) & (b <= len(self.days)) & (b > a)
        a, b = np.clip(a, 0, len(self.days)), np.clip(b, 0, len(self.days))
        a, b = np.broadcast_to(a, rows.shape), np.broadcast_to(b, rows.shape)
        cy, cx = self._cells(rows, cols)
        total = self.cum[b, :, cy, cx] - self.cum[a, :, cy, cx]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / np.maximum(b - a, 1)[:, None]
        return np.where(np.broadcast_to(ok, rows.shape)[:, None], out, np.nan).astype("float32")

    def summary(self, day: np.ndarray | int, k: np.ndarray | int, rows: np.ndarray,
                cols: np.ndarray) -> np.ndarray:
        """The trees' driver features ``(n, 2 V + 2)``: means over ``(t, t + k]`` and over the
        :data:`PAST_DAYS` days up to ``t``, and the rain totals of both windows (mm)."""
        day, k = np.asarray(day), np.asarray(k)
        fut = self.mean(day + 1, day + k, rows, cols)
        past = self.mean(day - PAST_DAYS + 1, day, rows, cols)
        ip = self.names.index("prcp") if "prcp" in self.names else None
        rain_f = fut[:, ip] * np.broadcast_to(k, rows.shape) if ip is not None else np.full(
            len(rows), np.nan, "float32")
        rain_p = past[:, ip] * PAST_DAYS if ip is not None else np.full(len(rows), np.nan,
                                                                          "float32")
        full_f = np.full((len(rows), len(schema.DRIVERS)), np.nan, "float32")
        full_p = full_f.copy()
        for j, v in enumerate(self.names):
            full_f[:, schema.DRIVERS.index(v)] = fut[:, j]
            full_p[:, schema.DRIVERS.index(v)] = past[:, j]
        return np.concatenate([full_f, full_p, rain_f[:, None], rain_p[:, None]], 1)
