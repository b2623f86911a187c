"""Shared fixtures: a tiny schema-following dataset made in memory (no simulator needed),
and a batch of forecast samples from a tiny sample world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from kgvsf_explore import schema

EPSG_UTM15N_WKT_CODE = 32615


def make_fake_dataset(
    ny: int = 16,
    nx: int = 20,
    n_days: int = 120,
    revisit: int = 5,
    seed: int = 0,
    drivers_on: str = "met",
) -> xr.Dataset:
    """A small random dataset that follows the cube schema.

    Parameters
    ----------
    drivers_on
        ``"met"`` puts the drivers on a coarse ``(day, y_met, x_met)`` grid, ``"pixel"`` on
        ``(day, y, x)``, ``"series"`` on ``(day,)``.
    """
    from pyproj import CRS

    rng = np.random.default_rng(seed)
    res = 10.0
    x = 440_000 + res / 2 + res * np.arange(nx)
    y = 4_650_000 - res / 2 - res * np.arange(ny)
    day = pd.date_range("2021-03-01", periods=n_days, freq="D")
    time = day[::revisit]
    nt = len(time)
    ds = xr.Dataset(coords={"time": time, "day": day, "y": y, "x": x})
    crs = CRS.from_epsg(EPSG_UTM15N_WKT_CODE)
    ds[schema.GRID_MAPPING] = xr.DataArray(
        0, attrs={"crs_wkt": crs.to_wkt(), "spatial_ref": crs.to_wkt()}
    )
    cloud = rng.random((nt, ny, nx)) < 0.2
    for i, band in enumerate(schema.BANDS):
        truth = (0.05 + 0.05 * i + 0.02 * rng.standard_normal((nt, ny, nx))).astype("float32")
        obs = np.where(cloud, np.nan, truth + 0.003 * rng.standard_normal(truth.shape))
        ds[band] = (("time", "y", "x"), obs.astype("float32"), {"units": "1"})
        ds[schema.truth_name(band)] = (("time", "y", "x"), truth, {"units": "1"})
    ds[schema.CLOUD_MASK] = (("time", "y", "x"), cloud)
    ds[schema.SOIL_MOISTURE] = (
        ("day", "y", "x"),
        (0.2 + 0.05 * rng.random((n_days, ny, nx))).astype("float32"),
        {"units": schema.SOIL_MOISTURE_UNITS},
    )
    doy = day.day_of_year.values
    base = {
        "prcp": rng.gamma(0.7, 5.0, n_days) * (rng.random(n_days) < 0.35),
        "tmax": 20 + 8 * np.sin(2 * np.pi * (doy - 100) / 365) + rng.normal(0, 2, n_days),
        "srad": 350 + 100 * rng.random(n_days),
        "dayl": 43200 + 10000 * np.sin(2 * np.pi * (doy - 80) / 365),
        "swe": np.zeros(n_days),
    }
    base["tmin"] = base["tmax"] - 10 - rng.random(n_days)
    base["vp"] = 610.8 * np.exp(17.27 * base["tmin"] / (base["tmin"] + 237.3)) * 0.9
    if drivers_on == "met":
        ym = y[0] + 5 - 80.0 * np.arange(-1, ny * 10 // 80 + 2)
        xm = x[0] - 5 + 80.0 * np.arange(-1, nx * 10 // 80 + 2)
        ds = ds.assign_coords(y_met=ym, x_met=xm)
        shape, dims = (n_days, len(ym), len(xm)), ("day", "y_met", "x_met")
        grad = np.linspace(0.9, 1.1, len(xm))[None, None, :]
    elif drivers_on == "pixel":
        shape, dims = (n_days, ny, nx), ("day", "y", "x")
        grad = np.linspace(0.9, 1.1, nx)[None, None, :]
    else:
        shape, dims, grad = (n_days,), ("day",), 1.0
    for name in schema.DRIVERS:
        values = np.broadcast_to(base[name].reshape((n_days,) + (1,) * (len(shape) - 1)), shape)
        if name in ("prcp", "srad"):
            values = values * grad
        ds[name] = (dims, values.astype("float32"), {"units": schema.DRIVER_UNITS[name]})
    field = (np.arange(ny)[:, None] // 8) * 10 + (np.arange(nx)[None, :] // 10) + 1
    ds[schema.FIELD_ID] = (("y", "x"), field.astype("int32"))
    ds[schema.CROP_TYPE] = (
        ("y", "x"),
        (field % 5).astype("int8"),
        schema.legend_attrs(schema.CROP_CLASSES, "crop type"),
    )
    ds[schema.SOIL_TYPE] = (
        ("y", "x"),
        (field % 3).astype("int8"),
        schema.legend_attrs(schema.SOIL_CLASSES, "soil texture class"),
    )
    for name in list(ds.data_vars):
        if name != schema.GRID_MAPPING:
            ds[name].attrs["grid_mapping"] = schema.GRID_MAPPING
    return ds


@pytest.fixture
def fake_ds() -> xr.Dataset:
    """A tiny schema-following dataset with drivers on a coarse met grid."""
    return make_fake_dataset()


@pytest.fixture(scope="module")
def forecast_batch():
    """Four training samples (16 x 16 tiles, 6 context images) of tiny sample world 3, and
    their collated tensors: ``(samples, batch)``."""
    import torch

    from kgvsf_explore.cube.cube import Cube
    from kgvsf_explore.cube.sampler import Sampler, sample_to_tensors
    from kgvsf_explore.world import make_world

    cube = Cube(make_world(seed=3, size="tiny")[0].load())
    samples = Sampler(cube, tile=16, context=6, seed=0, n_samples=4).sample()
    n = max(len(s.drivers) for s in samples)
    items = [sample_to_tensors(s, context=6, drivers_len=n) for s in samples]
    return samples, torch.utils.data.default_collate(items)
