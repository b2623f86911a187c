"""Bring daily drivers from their native grid onto the image pixel grid, lazily."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from ..errors import DriverGapError


def drivers_on_pixels(ds: xr.Dataset, drivers: tuple[str, ...] | None = None) -> xr.Dataset:
    """Return the driver variables of ``ds`` on ``(day, y, x)``.

    Drivers stored on a coarse native grid ``(day, y_met, x_met)`` (e.g. Daymet's 1 km grid) are
    bilinearly interpolated to the pixel centres with :meth:`xarray.Dataset.interp`; a single
    station-like series ``(day,)`` is broadcast to every pixel; drivers already on ``(day, y, x)``
    are returned as they are. Dask-backed inputs stay lazy.

    Parameters
    ----------
    ds
        A dataset that follows :mod:`kgvsf_explore.schema`.
    drivers
        Names to return; defaults to every name of :data:`~kgvsf_explore.schema.DRIVERS` present.

    Returns
    -------
    xarray.Dataset
        Drivers with dims ``(day, y, x)`` in float32, attributes kept.
    """
    names = drivers or tuple(v for v in schema.DRIVERS if v in ds.data_vars)
    template = xr.DataArray(
        0.0,
        coords={schema.Y_DIM: ds[schema.Y_DIM], schema.X_DIM: ds[schema.X_DIM]},
        dims=(schema.Y_DIM, schema.X_DIM),
    )
    out = {}
    for name in names:
        da = ds[name]
        if schema.Y_MET_DIM in da.dims or schema.X_MET_DIM in da.dims:
            # Interpolate in float64 explicitly: on dask arrays xarray's interp declares the
            # input dtype but returns float64 chunks, which would make the cast below a no-op.
            da = da.astype("float64").interp(
                {schema.Y_MET_DIM: ds[schema.Y_DIM], schema.X_MET_DIM: ds[schema.X_DIM]},
                method="linear",
            ).drop_vars([schema.Y_MET_DIM, schema.X_MET_DIM], errors="ignore")
        elif schema.Y_DIM not in da.dims:
            da = da + template.astype(da.dtype)
        out[name] = (
            da.transpose(schema.DAY_DIM, schema.Y_DIM, schema.X_DIM)
            .astype("float32")
            .assign_attrs(ds[name].attrs)
        )
    return xr.Dataset(out)


def tile_weights(grid: np.ndarray, points: np.ndarray) -> tuple[slice, np.ndarray] | None:
    """Mean 1-D linear-interpolation weights of ``points`` on ``grid`` (monotonic).

    Returns ``(slice of grid cells used, weights)`` with ``weights`` summing to 1, or None when a
    point lies outside the grid (where linear interpolation gives NaN).
    """
    grid = np.asarray(grid, dtype="float64")
    points = np.asarray(points, dtype="float64")
    lo, hi = min(grid[0], grid[-1]), max(grid[0], grid[-1])
    if points.min() < lo or points.max() > hi:
        return None
    if grid.size == 1:
        return slice(0, 1), np.ones(1)
    ascending = grid[-1] > grid[0]
    g = grid if ascending else grid[::-1]
    j = np.clip(np.searchsorted(g, points, side="right") - 1, 0, g.size - 2)
    frac = (points - g[j]) / (g[j + 1] - g[j])
    w = np.zeros(g.size)
    np.add.at(w, j, 1.0 - frac)
    np.add.at(w, j + 1, frac)
    w /= points.size
    if not ascending:
        w = w[::-1]
    used = np.flatnonzero(w)
    if used.size == 0:  # pragma: no cover - weights always sum to 1
        return None
    sl = slice(int(used[0]), int(used[-1]) + 1)
    return sl, w[sl]


class TileDrivers:
    """Tile-mean daily drivers of pixel windows, from drivers in any stored layout.

    The drivers of ``days`` over the pixel ``extent`` are read once (the native met cells that
    cover it, or its pixels, or a series); the mean of a window is then a small weighted sum.
    It equals the window mean of :func:`drivers_on_pixels` exactly: bilinear interpolation is
    separable, so the mean of the interpolated field is the native field weighted by the outer
    product of the window-mean 1-D weights (:func:`tile_weights`). Windows reaching outside
    the native grid fall back to :func:`drivers_on_pixels`.

    Parameters
    ----------
    drivers
        Drivers on ``(day, y_met, x_met)``, ``(day, y, x)`` or ``(day,)`` (e.g. a scenario's).
    y, x
        The cube's pixel-centre coordinates (all of them).
    names
        Driver names, in the order of the output columns.
    days
        Day indices to read (a slice of the ``day`` dimension).
    extent
        ``(rows, cols)`` pixel slices every window will lie in; default the whole grid.
    reader
        A :class:`~kgvsf_explore.cube.arrays.WindowReader` of ``drivers`` to reuse.
    check
        Raise :class:`~kgvsf_explore.errors.DriverGapError` when a value read is missing or
        infinite. False defers that to the caller (a table over every day of a cube whose
        windows each need only some of them; :meth:`mean` then returns NaN on gap days).
    """

    def __init__(self, drivers: xr.Dataset, y: np.ndarray, x: np.ndarray,
                 names: Sequence[str], days: slice,
                 extent: tuple[slice, slice] | None = None, reader: Any = None,
                 check: bool = True) -> None:
        import dask

        self.y, self.x = np.asarray(y), np.asarray(x)
        self.names = list(names)
        self.days = days
        self.drivers = drivers
        rows, cols = extent or (slice(0, len(self.y)), slice(0, len(self.x)))
        self.extent = rows, cols
        self._met: dict[str, tuple[slice, slice]] = {}
        self._weight_cache: dict[tuple[Any, ...], tuple[slice, np.ndarray] | None] = {}
        self._met_y = self._met_x = np.empty(0)
        if schema.Y_MET_DIM in drivers.dims and schema.X_MET_DIM in drivers.dims:
            self._met_y = np.asarray(drivers[schema.Y_MET_DIM].values, dtype="float64")
            self._met_x = np.asarray(drivers[schema.X_MET_DIM].values, dtype="float64")
        from .arrays import WindowReader
        from .reading import reading

        reader = reader or WindowReader(drivers)
        values: dict[str, Any] = {}
        lazy: dict[str, Any] = {}
        for name in self.names:
            dims = drivers[name].dims
            if schema.Y_MET_DIM in dims:
                wy = tile_weights(self._met_y, self.y[rows])
                wx = tile_weights(self._met_x, self.x[cols])
                ysl = wy[0] if wy else slice(None)
                xsl = wx[0] if wx else slice(None)
                self._met[name] = (ysl, xsl)
                index = {schema.DAY_DIM: days, schema.Y_MET_DIM: ysl, schema.X_MET_DIM: xsl}
                order = (schema.DAY_DIM, schema.Y_MET_DIM, schema.X_MET_DIM)
            elif schema.Y_DIM in dims:
                index = {schema.DAY_DIM: days, schema.Y_DIM: rows, schema.X_DIM: cols}
                order = (schema.DAY_DIM, schema.Y_DIM, schema.X_DIM)
            else:
                index, order = {schema.DAY_DIM: days}, (schema.DAY_DIM,)
            axes = [dims.index(d) for d in order]
            if reader.in_memory(name):
                values[name] = np.transpose(reader.take(name, index), axes)
            else:
                lazy[name] = drivers[name].isel(index).transpose(*order).data
        if lazy:
            with reading("the drivers " + ", ".join(lazy)):
                values.update(zip(lazy, dask.compute(*lazy.values()), strict=True))
        self._values = [np.asarray(values[n], dtype="float64") for n in self.names]
        if check:
            for name, v in zip(self.names, self._values, strict=True):
                bad = ~np.isfinite(v)
                if bad.any():
                    self._gap_error(name, bad, drivers)

    def _gap_error(self, name: str, bad: np.ndarray, drivers: xr.Dataset) -> None:
        per_day = bad.reshape(bad.shape[0], -1).any(axis=1)
        dates = drivers[schema.DAY_DIM].values[self.days][per_day]
        shown = ", ".join(str(np.datetime_as_string(d, unit="D")) for d in dates[:5])
        more = f" and {len(dates) - 5} more" if len(dates) > 5 else ""
        raise DriverGapError(
            f"driver {name!r} is missing (NaN) or infinite on {len(dates)} day(s) the model "
            f"needs: {shown}{more}. Drivers must be complete: fill the gaps, e.g. "
            f"ds['{name}'] = ds['{name}'].interpolate_na('day'), or give weather for those days"
        )

    def mean(self, rows: slice, cols: slice, days: slice = slice(None)) -> np.ndarray:
        """Window-mean drivers ``(days, len(names))`` float32 of pixels ``rows`` x ``cols``.

        ``days`` selects days within the table's own (default: all of them).
        """
        r0, c0 = self.extent[0].start or 0, self.extent[1].start or 0
        values = [v[days] for v in self._values]
        out = np.empty((values[0].shape[0], len(self.names)), dtype="float64")
        weights: dict[tuple[int, int, int, int], Any] = {}  # met vars share their weights
        for i, (name, v) in enumerate(zip(self.names, values, strict=True)):
            if name in self._met:
                ysl, xsl = self._met[name]
                key = (ysl.start, ysl.stop, xsl.start, xsl.stop)
                if key not in weights:
                    weights[key] = (self._weights(self._met_y, ysl, self.y, rows),
                                    self._weights(self._met_x, xsl, self.x, cols))
                wy, wx = weights[key]
                if wy is None or wx is None:
                    return self._reference(rows, cols)[days]
                (sy, wy), (sx, wx) = wy, wx
                out[:, i] = np.einsum("dab,a,b->d", v[:, sy, sx], wy, wx)
            elif v.ndim == 3:
                out[:, i] = v[:, rows.start - r0:rows.stop - r0,
                              cols.start - c0:cols.stop - c0].mean(axis=(1, 2))
            else:
                out[:, i] = v
        return out.astype("float32")

    def _weights(self, grid: np.ndarray, cells: slice, centres: np.ndarray,
                 window: slice) -> tuple[slice, np.ndarray] | None:
        """:func:`tile_weights` of a window on one axis, memoised (a training sampler asks for
        the same rows and columns again and again)."""
        key = (id(grid), cells.start, cells.stop, window.start, window.stop)
        if key not in self._weight_cache:
            if len(self._weight_cache) > 65536:
                self._weight_cache.clear()
            self._weight_cache[key] = tile_weights(grid[cells], centres[window])
        return self._weight_cache[key]

    def _reference(self, rows: slice, cols: slice) -> np.ndarray:
        sub = self.drivers[self.names].isel({schema.DAY_DIM: self.days})
        sub = sub.assign_coords({schema.Y_DIM: self.y[rows], schema.X_DIM: self.x[cols]})
        means = drivers_on_pixels(sub, tuple(self.names)).mean(
            (schema.Y_DIM, schema.X_DIM)).compute()
        return np.stack([means[n].values for n in self.names], axis=-1).astype("float32")
