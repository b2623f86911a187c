"""Tile-mean future drivers of a region under any scenario, fast and exact.

The model reads, per tile, the mean over the tile's pixels of the drivers interpolated to the
pixels (:func:`kgvsf_explore.inference.tiles.tile_drivers`). Interpolation and the mean are
linear, so each tile-mean series is a fixed weighted sum of the *stored* driver cells (the
coarse ``y_met`` x ``x_met`` grid, the pixels, or the single station series). :class:`DriverMap`
keeps those few cells in memory with the weights and, for a scenario, applies
:meth:`Scenario.apply <kgvsf_explore.scenario.Scenario.apply>` to the cells exactly as
:func:`~kgvsf_explore.inference.region.forecast_region` applies it to the stored drivers
(clipping included), then takes the weighted sums. No approximation: the result equals the
slow path's up to float rounding (a test checks it), at a few milliseconds per scenario.

A scenario the cells cannot take (a region the small cell block does not resolve, or a change
that needs days outside the block kept for pixel-grid drivers) falls back to the slow path.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from ..cube.cube import Cube
from ..errors import KGVSFError, ScenarioError
from ..inference.tiles import tile_drivers

#: Above this many stored values (cells x days x drivers) only the forecast days are kept.
MAX_CELL_VALUES = 4_000_000


def driver_layout(ds: xr.Dataset, names: Sequence[str]) -> str:
    """``"met"`` (coarse grid), ``"pixel"`` (on ``y, x``) or ``"series"`` (``day`` only)."""
    dims = {tuple(ds[n].dims) for n in names}
    if len(dims) != 1:
        raise KGVSFError(f"the drivers {list(names)} do not share one layout: {sorted(dims)}")
    (d,) = dims
    if schema.Y_MET_DIM in d or schema.X_MET_DIM in d:
        return "met"
    if schema.Y_DIM in d:
        return "pixel"
    return "series"


def _span(coord: np.ndarray, lo: float, hi: float) -> slice:
    """Index slice of ``coord`` (monotonic) covering ``[lo, hi]`` and one neighbour each side."""
    inside = np.flatnonzero((coord >= lo) & (coord <= hi))
    if inside.size == 0:  # the block falls between two cells: their two neighbours
        below = np.flatnonzero(coord < lo)
        above = np.flatnonzero(coord > hi)
        inside = np.concatenate([below[-1:] if coord[0] < coord[-1] else below[:1],
                                 above[:1] if coord[0] < coord[-1] else above[-1:]])
    i0, i1 = int(inside.min()) - 1, int(inside.max()) + 2
    return slice(max(0, i0), min(len(coord), i1))


def _flatten(cells: xr.Dataset, names: Sequence[str]) -> xr.Dataset:
    """The drivers on ``(day, cell)`` (cells in C order of the stored grid), day coordinate only."""
    n_days = cells.sizes[schema.DAY_DIM]
    return xr.Dataset(
        {n: ((schema.DAY_DIM, "cell"), np.asarray(cells[n].values).reshape(n_days, -1),
             cells[n].attrs) for n in names},
        coords={schema.DAY_DIM: cells[schema.DAY_DIM].values})


class DriverMap:
    """The drivers of a set of tiles for days ``d0..d1``, for any scenario.

    Parameters
    ----------
    cube
        The cube whose stored drivers are read.
    windows
        Tile origins ``(row, col)``.
    tile
        Tile side in pixels.
    names
        Drivers in the model's order.
    d0, d1
        First and last day index (inclusive) of the forecast period.

    Examples
    --------
    >>> dmap = DriverMap(cube, [(0, 0)], 32, schema.DRIVERS, 900, 959)   # doctest: +SKIP
    >>> dmap.future(None).shape                                          # doctest: +SKIP
    (1, 60, 7)
    """

    def __init__(self, cube: Cube, windows: Sequence[tuple[int, int]], tile: int,
                 names: Sequence[str], d0: int, d1: int) -> None:
        ds = cube.ds
        self.cube, self.windows, self.tile = cube, list(windows), tile
        self.names, self.d0, self.d1 = list(names), int(d0), int(d1)
        missing = [n for n in self.names if n not in ds]
        if missing:
            raise KGVSFError(f"the cube lacks the drivers {missing} the model needs")
        self.layout = driver_layout(ds, self.names)
        r0 = min(r for r, _ in self.windows)
        c0 = min(c for _, c in self.windows)
        r1 = max(r for r, _ in self.windows) + tile
        c1 = max(c for _, c in self.windows) + tile
        self._footprint = (slice(r0, r1), slice(c0, c1))
        space = self._space_indexers(ds)
        n_days = ds.sizes[schema.DAY_DIM]
        n_cells = int(np.prod([ds.sizes[d] for d in ds[self.names[0]].dims
                               if d != schema.DAY_DIM], dtype=np.int64))
        if space:
            n_cells = int(np.prod([s.stop - s.start for s in space.values()], dtype=np.int64))
        # whole day axis when small (scenarios may read other days, e.g. another year's
        # weather); else the forecast days only
        self.day0 = 0 if n_cells * n_days * len(self.names) <= MAX_CELL_VALUES else self.d0
        day_sel = slice(self.day0, n_days if self.day0 == 0 else self.d1 + 1)
        keep = self.names + ([schema.GRID_MAPPING] if schema.GRID_MAPPING in ds else [])
        cells = ds[keep].isel({schema.DAY_DIM: day_sel, **space})
        order = {"met": (schema.Y_MET_DIM, schema.X_MET_DIM), "pixel": (schema.Y_DIM, schema.X_DIM),
                 "series": ()}[self.layout]
        cells = cells.transpose(schema.DAY_DIM, *order, ...)
        self.cells: xr.Dataset = cells.load()
        self.flat = _flatten(self.cells, self.names)
        self.weights = self._weights(ds)  # (tiles, cells)
        self.observed = self._reduce(self.cells)  # (tiles, K, V) float32

    # ------------------------------------------------------------------------- construction
    def _space_indexers(self, ds: xr.Dataset) -> dict[str, slice]:
        rows, cols = self._footprint
        if self.layout == "pixel":
            return {schema.Y_DIM: rows, schema.X_DIM: cols}
        if self.layout == "series":
            return {}
        y = np.asarray(ds[schema.Y_DIM].values[rows], dtype="float64")
        x = np.asarray(ds[schema.X_DIM].values[cols], dtype="float64")
        return {schema.Y_MET_DIM: _span(np.asarray(ds[schema.Y_MET_DIM].values, "float64"),
                                        float(y.min()), float(y.max())),
                schema.X_MET_DIM: _span(np.asarray(ds[schema.X_MET_DIM].values, "float64"),
                                        float(x.min()), float(x.max()))}

    def _weights(self, ds: xr.Dataset) -> np.ndarray:
        """``(tiles, cells)``: tile-mean driver = weights @ cell values (the same for every
        driver, as they share a layout)."""
        tile, name = self.tile, self.names[0]
        if self.layout == "series":
            return np.ones((len(self.windows), 1))
        if self.layout == "pixel":
            (rows, cols), out = self._footprint, []
            for r, c in self.windows:
                w = np.zeros((rows.stop - rows.start, cols.stop - cols.start))
                w[r - rows.start:r - rows.start + tile, c - cols.start:c - cols.start + tile] = 1
                out.append(w.ravel() / w.sum())
            return np.stack(out)
        # coarse grid: probe tile_drivers with one unit cell per "day" (it is linear)
        shape = tuple(self.cells.sizes[d] for d in (schema.Y_MET_DIM, schema.X_MET_DIM))
        n = int(np.prod(shape))
        eye = np.eye(n, dtype="float64").reshape(n, *shape)
        probe = xr.Dataset(
            {name: ((schema.DAY_DIM, schema.Y_MET_DIM, schema.X_MET_DIM), eye)},
            coords={d: self.cells[d].values for d in (schema.Y_MET_DIM, schema.X_MET_DIM)})
        out = []
        for r, c in self.windows:
            w = tile_drivers(probe, ds, slice(r, r + tile), slice(c, c + tile), 0, n - 1, [name])
            out.append(np.asarray(w[:, 0], dtype="float64"))
        return np.stack(out)

    # ------------------------------------------------------------------------- use
    def _reduce(self, cells: xr.Dataset) -> np.ndarray:
        k0, k1 = self.d0 - self.day0, self.d1 - self.day0 + 1
        vals = np.stack([np.asarray(cells[n].values)[k0:k1].reshape(k1 - k0, -1)
                         for n in self.names], axis=-1)  # (K, cells, V)
        return np.einsum("tc,kcv->tkv", self.weights, vals.astype("float64")).astype("float32")

    def future(self, scenario: Any = None) -> tuple[np.ndarray, list[str]]:
        """Tile-mean drivers ``(tiles, K, V)`` of the forecast days under ``scenario``.

        Returns the array and the texts of any scenario warnings (e.g. clipped values).
        """
        if scenario is None or getattr(scenario, "is_identity", False):
            return self.observed, []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # the cells as (day, cell) without spatial coordinates: a third faster to change,
            # and the same numbers when no change of the scenario is limited to a region
            spatial = any(getattr(c, "region", None) is not None for c in scenario.changes)
            try:
                out = self._reduce(scenario.apply(self.cells if spatial else self.flat))
            except (ScenarioError, KeyError, IndexError):
                out = self._slow(scenario)
        return out, [str(w.message) for w in caught]

    def _slow(self, scenario: Any) -> np.ndarray:
        """The reference path: the scenario on all stored drivers, then ``tile_drivers``."""
        from ..inference.region import scenario_drivers

        drivers = scenario_drivers(self.cube, scenario)
        ds, tile = self.cube.ds, self.tile
        return np.stack([tile_drivers(drivers, ds, slice(r, r + tile), slice(c, c + tile),
                                      self.d0, self.d1, self.names)
                         for r, c in self.windows]).astype("float32")
