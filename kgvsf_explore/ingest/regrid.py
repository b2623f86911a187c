"""Gridded daily drivers onto a coarse ``(day, y_met, x_met)`` grid in the cube's CRS."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS

from .. import schema
from ._errors import IngestError
from .grid import Grid

__all__ = ["to_met_grid"]


def _native(ds: xr.Dataset) -> tuple[Affine, float, float]:
    x, y = ds["x"].values.astype(float), ds["y"].values.astype(float)
    dx, dy = float(x[1] - x[0]), float(y[0] - y[1])
    return Affine(dx, 0.0, x[0] - dx / 2, 0.0, -dy, y[0] + dy / 2), dx, dy


def to_met_grid(drivers: xr.Dataset, grid: Grid) -> xr.Dataset:
    """Warp ``(day, y, x)`` drivers (CRS in ``attrs['crs']``) to the cube's CRS, bilinearly.

    The met grid keeps about the native resolution (never finer than the pixels) and covers the
    cube's area plus one cell on each side, so the bilinear interpolation of
    :attr:`kgvsf_explore.Cube.drivers` is defined at every pixel. A source with a single cell
    becomes one ``(day,)`` series.
    """
    from rasterio.warp import Resampling, reproject

    if drivers.sizes.get("y", 1) < 2 or drivers.sizes.get("x", 1) < 2:
        return drivers.isel(y=0, x=0, drop=True) if "y" in drivers.dims else drivers
    drivers = drivers.sortby("y", ascending=False).sortby("x")
    src_crs = CRS.from_wkt(drivers.attrs["crs"])
    transform, dx, dy = _native(drivers)
    if src_crs.is_geographic:
        lat = float(np.mean(drivers["y"].values))
        native = min(dx * 111320 * math.cos(math.radians(lat)), dy * 110540)
    else:
        native = min(dx, dy)
    res = max(native, grid.res)
    xmin, ymin, xmax, ymax = grid.bounds
    nx = max(2, math.ceil((xmax - xmin) / res) + 2)
    ny = max(2, math.ceil((ymax - ymin) / res) + 2)
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    dst_t = Affine(res, 0.0, cx - nx * res / 2, 0.0, -res, cy + ny * res / 2)
    out = xr.Dataset(coords={
        "day": drivers["day"].values,
        schema.Y_MET_DIM: dst_t.f + (np.arange(ny) + 0.5) * dst_t.e,
        schema.X_MET_DIM: dst_t.c + (np.arange(nx) + 0.5) * dst_t.a,
    })
    for name in drivers.data_vars:
        da = drivers[name]
        if set(da.dims) != {"day", "y", "x"}:
            continue
        src = np.ascontiguousarray(da.transpose("day", "y", "x").values, dtype=np.float32)
        dst = np.full((src.shape[0], ny, nx), np.nan, dtype=np.float32)
        reproject(src, dst, src_transform=transform, src_crs=src_crs.to_wkt(), src_nodata=np.nan,
                  dst_transform=dst_t, dst_crs=grid.crs.to_wkt(), dst_nodata=np.nan,
                  resampling=Resampling.bilinear)
        if np.isnan(dst).any():
            raise IngestError(
                f"the weather grid does not cover the images' area (and a margin of one "
                f"{res:.0f} m cell) for {name!r}; use a weather file that extends beyond the "
                "images on every side"
            )
        out[name] = xr.DataArray(dst, dims=("day", schema.Y_MET_DIM, schema.X_MET_DIM),
                                 attrs=da.attrs)
    out.attrs = {k: v for k, v in drivers.attrs.items() if k != "crs"}
    return out
