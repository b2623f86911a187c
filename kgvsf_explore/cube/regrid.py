"""Bring daily drivers from their native grid onto the image pixel grid, lazily."""

from __future__ import annotations

import xarray as xr

from .. import schema


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
