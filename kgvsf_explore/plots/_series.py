"""The data behind :func:`kgvsf_explore.plots.trajectory`: a pixel's or a field's time series.

Everything here returns plain pandas objects (no plotting), so it is tested on its own:

* :func:`locate` picks the pixels (nearest pixel, or every pixel of a field);
* :func:`observed_series` / :func:`truth_series` give the cube's cloud-free observations and
  the simulator's cloud-free truth of a variable (a band or a spectral index);
* :func:`forecast_points` gives the forecast value at ``t + k`` per scenario and horizon;
* :func:`driver_series` gives the daily drivers, observed and under scenarios.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..cube.cube import INDICES, Cube
from ..cube.regrid import drivers_on_pixels
from ..errors import KGVSFError, RegionError, ScenarioError
from . import _style

#: Name of the weather every forecast without a scenario dimension was made under.
OBSERVED = _style.OBSERVED


@dataclass(frozen=True)
class Place:
    """Pixels of a cube to average: a sub-dataset around them and a ``(y, x)`` mask."""

    ds: xr.Dataset
    mask: xr.DataArray
    label: str


def locate(cube: Cube, pixel: Sequence[float] | None, field: int | None) -> Place:
    """The pixel nearest ``pixel = (x, y)`` (cube CRS) or the pixels of field ``field``.

    Raises
    ------
    RegionError
        When the point lies outside the cube.
    KGVSFError
        When both or neither of ``pixel`` and ``field`` are given, or the field is unknown.
    """
    if (pixel is None) == (field is None):
        raise KGVSFError("give exactly one of pixel=(x, y) (in the cube's CRS) or field=<id>")
    ds = cube.ds
    if pixel is not None:
        try:
            px, py = (float(v) for v in pixel)
        except (TypeError, ValueError):
            raise KGVSFError(f"pixel must be (x, y) in the cube's CRS, got {pixel!r}") from None
        xmin, ymin, xmax, ymax = cube.bounds
        if not (xmin <= px <= xmax and ymin <= py <= ymax):
            raise RegionError(f"pixel ({px:.1f}, {py:.1f}) lies outside the cube, whose bounds "
                              f"are ({xmin:.1f}, {ymin:.1f}, {xmax:.1f}, {ymax:.1f}) in "
                              f"{_crs_name(cube)}")
        i = int(np.abs(ds[schema.X_DIM].values - px).argmin())
        j = int(np.abs(ds[schema.Y_DIM].values - py).argmin())
        sub = ds.isel({schema.Y_DIM: [j], schema.X_DIM: [i]})
        x0, y0 = float(sub[schema.X_DIM][0]), float(sub[schema.Y_DIM][0])
        mask = xr.ones_like(sub[schema.Y_DIM] * sub[schema.X_DIM], dtype=bool)
        return Place(sub, mask, f"pixel ({x0:.0f}, {y0:.0f})")
    if schema.FIELD_ID not in ds:
        raise KGVSFError("field= needs a 'field_id' layer, which the cube lacks; use pixel=")
    ids = np.asarray(ds[schema.FIELD_ID].values)
    hit = ids == field
    if not hit.any():
        known = np.unique(ids[ids > 0])
        shown = ", ".join(str(v) for v in known[:10]) + (" ..." if len(known) > 10 else "")
        raise KGVSFError(f"unknown field id {field!r}: the cube's {len(known)} fields have ids "
                         f"{shown}")
    rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
    window = {schema.Y_DIM: slice(rows[0], rows[-1] + 1),
              schema.X_DIM: slice(cols[0], cols[-1] + 1)}
    sub = ds.isel(window)
    mask = (sub[schema.FIELD_ID] == field).compute().drop_vars(schema.GRID_MAPPING,
                                                              errors="ignore")
    return Place(sub, mask, f"field {field} ({int(hit.sum())} px)")


def check_var(var: str) -> str:
    """``var`` as a band name or a lower-case spectral index name; KGVSFError if neither."""
    if var in schema.BANDS:
        return var
    if var.lower() in INDICES:
        return var.lower()
    raise KGVSFError(f"unknown variable {var!r}: give a band {list(schema.BANDS)} or an index "
                     f"{sorted(INDICES)}")


def compute_var(bands: Mapping[str, xr.DataArray], var: str) -> xr.DataArray:
    """``var`` (a band or an index of :data:`~kgvsf_explore.cube.cube.INDICES`) from bands."""
    if var in schema.BANDS:
        return bands[var]
    needed, formula, _ = INDICES[var]
    missing = [b for b in needed if b not in bands]
    if missing:
        raise KGVSFError(f"{var} needs the band(s) {missing}, which are missing")
    return formula({b: bands[b].astype("float64") for b in needed})


def _mean(da: xr.DataArray, mask: xr.DataArray, dim: str) -> pd.Series:
    values = da.where(mask).mean((schema.Y_DIM, schema.X_DIM), skipna=True).compute()
    return pd.Series(np.asarray(values.values, dtype="float64"),
                     index=pd.DatetimeIndex(values[dim].values), name=str(da.name))


def observed_series(place: Place, var: str, min_valid: float = 0.5) -> pd.Series:
    """Mean of the cloud-free values of ``var`` over the place, per image date.

    Dates where fewer than ``min_valid`` of the place's pixels are cloud-free are dropped.
    """
    sub = Cube(place.ds)
    if var in schema.BANDS:
        if var not in place.ds:
            raise KGVSFError(f"the cube has no band {var!r}")
        da = place.ds[var].where(sub.valid)
    else:
        da = sub.index(var)
    da = da.where(place.mask)
    n_valid = da.notnull().sum((schema.Y_DIM, schema.X_DIM)).compute().values
    series = _mean(da.rename(var), place.mask, schema.TIME_DIM)
    enough = n_valid >= max(1, min_valid * int(place.mask.sum()))
    return series[enough].dropna()


def truth_series(place: Place, var: str) -> pd.Series | None:
    """Mean of the cloud-free truth (``<band>_true``) of ``var``, or None when absent."""
    truth = Cube(place.ds).truth
    if truth is None:
        return None
    bands = {str(b): truth.sel(band=b, drop=True) for b in truth["band"].values}
    try:
        da = compute_var(bands, var)
    except KGVSFError:
        return None
    return _mean(da.rename(var), place.mask, schema.TIME_DIM)


def forecast_origin(forecast: xr.Dataset) -> pd.Timestamp:
    """The forecast date ``t`` (attrs ``t``, else the first ``time`` minus its horizon)."""
    if forecast.attrs.get("t"):
        return pd.Timestamp(forecast.attrs["t"])
    if schema.TIME_DIM in forecast.coords and "horizon" in forecast.coords:
        first = pd.Timestamp(forecast[schema.TIME_DIM].values.ravel()[0])
        return first - pd.Timedelta(days=int(forecast["horizon"].values.ravel()[0]))
    raise KGVSFError("the forecast has no 't' attribute nor time/horizon coordinates")


def forecast_points(forecast: xr.Dataset, place: Place, var: str,
                    res: float) -> pd.DataFrame:
    """The forecast of ``var`` averaged over the place: columns scenario, horizon, time, value.

    Pixels of the place outside the forecast region are left out of the mean; KGVSFError when
    none is inside, or when the forecast cannot give ``var``.
    """
    if not isinstance(forecast, xr.Dataset):
        raise KGVSFError(f"a forecast is an xarray.Dataset, got {type(forecast).__name__}")
    if var in forecast.data_vars:
        da = forecast[var]
    elif "reflectance" in forecast.data_vars:
        refl = forecast["reflectance"]
        bands = {str(b): refl.sel(band=b, drop=True) for b in refl["band"].values}
        da = compute_var(bands, var)
    else:
        raise KGVSFError(f"the forecast has no {var!r} and no 'reflectance' to compute it from; "
                         f"it holds {sorted(str(v) for v in forecast.data_vars)}")
    if "band" in da.dims:
        raise KGVSFError(f"cannot plot {var!r} of the forecast: it has a band dimension")
    tol = res / 2 + 1e-6
    on_place = da.reindex({schema.Y_DIM: place.ds[schema.Y_DIM],
                           schema.X_DIM: place.ds[schema.X_DIM]}, method="nearest", tolerance=tol)
    covered = on_place.notnull().any([d for d in on_place.dims
                                      if d not in (schema.Y_DIM, schema.X_DIM)])
    if not bool((covered & place.mask).any()):
        raise KGVSFError(f"the forecast from {forecast_origin(forecast).date()} does not cover "
                         f"{place.label}")
    mean = on_place.where(place.mask).mean((schema.Y_DIM, schema.X_DIM), skipna=True)
    if "scenario" not in mean.dims:
        mean = mean.expand_dims(scenario=[OBSERVED])
    t = forecast_origin(forecast)
    rows = []
    for s in mean["scenario"].values:
        for h in mean["horizon"].values:
            value = float(mean.sel(scenario=s, horizon=h))
            rows.append({"scenario": str(s), "horizon": int(h),
                         "time": t + pd.Timedelta(days=int(h)), "value": value})
    return pd.DataFrame(rows)


def scenario_name(scenario: Any, i: int) -> str:
    """The name :func:`kgvsf_explore.inference.forecast_region` gives scenario ``i``."""
    if scenario is None:
        return OBSERVED
    return getattr(scenario, "name", "") or f"scenario {i}"


def driver_series(place: Place, names: Sequence[str], scenarios: Sequence[Any],
                  days: slice) -> pd.DataFrame:
    """Daily drivers averaged over the place: columns scenario, time and one per driver.

    The observed drivers come first (scenario ``"observed"``), then each scenario's, changed
    as :func:`kgvsf_explore.inference.forecast_region` changes them (on the stored grid, then
    interpolated to the pixels).
    """
    ds = place.ds
    present = [d for d in schema.DRIVERS if d in ds.data_vars]
    unknown = [n for n in names if n not in present]
    if unknown:
        raise KGVSFError(f"unknown driver(s) {unknown}: the cube's drivers are {present}")
    frames = []
    sets = [(OBSERVED, ds)] + [(scenario_name(s, i), s) for i, s in enumerate(scenarios)
                               if s is not None]
    for name, what in sets:
        changed = ds if what is ds else _apply(what, ds)
        on_px = drivers_on_pixels(changed.sel({schema.DAY_DIM: days}), tuple(names))
        cols = {n: _mean(on_px[n], place.mask, schema.DAY_DIM) for n in names}
        frame = pd.DataFrame(cols).rename_axis("time").reset_index()
        frames.append(frame.assign(scenario=name))
    return pd.concat(frames, ignore_index=True)


def _apply(scenario: Any, ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its drivers changed by ``scenario`` (stored grid first, else the pixels)."""
    try:
        changed = scenario.apply(ds)
    except ScenarioError:
        on_px = drivers_on_pixels(ds)
        if schema.GRID_MAPPING in ds:
            on_px = on_px.assign_coords({schema.GRID_MAPPING: ds[schema.GRID_MAPPING]})
        changed = scenario.apply(on_px)
        return ds.drop_vars(list(on_px.data_vars)).assign(
            {k: v.variable for k, v in changed.data_vars.items() if k in on_px.data_vars})
    return ds.assign({k: v.variable for k, v in changed.data_vars.items() if k in ds.data_vars})


def _crs_name(cube: Cube) -> str:
    try:
        return cube.crs.to_string()
    except KGVSFError:
        return "the cube's CRS"
