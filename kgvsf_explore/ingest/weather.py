"""Station CSVs and gridded NetCDF/zarr weather into the cube's daily drivers.

One code path for both: the file becomes an ``xarray.Dataset`` on ``time`` (plus ``lat/lon`` or
``y/x`` for grids) with a quantity name and units per variable; :func:`daily_drivers` converts
units (:mod:`~kgvsf_explore.ingest.units`), aggregates sub-daily steps (sum for rain and
radiation totals, max/min for temperature, mean for fluxes, vapour pressure and snow), derives
``vp`` from dew point (FAO-56 eq. 14) or relative humidity (eq. 19 for daily data), ``dayl``
from latitude (FAO-56 eq. 34), converts ``srad`` to the daylight-mean flux (a daily flux that is a
24-hour mean is detected and converted), estimates a missing ``srad`` or ``vp`` from the
temperatures (:mod:`~kgvsf_explore.ingest.estimate`, warned), and fills gaps of at most
``max_gap`` days by linear interpolation (flagged in ``attrs``); longer gaps are refused.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..world.solar import day_length_s, saturation_vapour_pressure_pa
from ..world.water import snowpack
from ._errors import IngestError, IngestWarning
from .estimate import (
    KRS_INTERIOR,
    extraterrestrial_mj,
    hargreaves_srad,
    srad_from_et0,
    srad_time_base,
)
from .units import convert, quantity_of, split_column

__all__ = ["read_station_csv", "read_gridded", "daily_drivers", "find_gaps", "MAX_GAP_DAYS"]

#: Longest run of missing days filled by linear interpolation.
MAX_GAP_DAYS = 3

_TIME_NAMES = ("date", "time", "datetime", "valid_time", "day", "timestamp")


def read_station_csv(
    path: str | Path, *, units: Mapping[str, str] | None = None, date_column: str | None = None
) -> xr.Dataset:
    """Read a station CSV into a ``(time,)`` dataset named by quantity, with ``units`` attrs.

    Columns are matched by name (:data:`~kgvsf_explore.ingest.units.ALIASES`: ``tmax``,
    ``t2m``, ``precipitation``, ``ssrd``, ``d2m``, ``rh``...); units come from ``units=``, else
    from the header (``'tmax (K)'``, ``'prcp [m]'``, ``'prcp_mm'``). Unknown columns are ignored.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise IngestError(f"weather file {path} does not exist")
    df = pd.read_csv(path, comment="#")
    units = dict(units or {})
    tcol = date_column or next((c for c in df.columns if str(c).strip().lower() in _TIME_NAMES),
                               None)
    if tcol is None:
        raise IngestError(
            f"{path.name}: no date column (looked for {', '.join(_TIME_NAMES)}; columns: "
            f"{list(df.columns)}); name it 'date' or pass date_column=..."
        )
    try:
        time = pd.to_datetime(df[tcol])
    except (ValueError, TypeError) as exc:
        raise IngestError(f"{path.name}: column {tcol!r} is not dates ({exc})") from None
    ds = xr.Dataset(coords={"time": time.to_numpy()})
    for col in df.columns:
        if col == tcol:
            continue
        name, unit = split_column(str(col))
        q = quantity_of(name)
        if q is None or q in ds:
            continue
        unit = units.get(str(col), units.get(name, unit))
        ds[q] = xr.DataArray(pd.to_numeric(df[col], errors="coerce").to_numpy(float),
                             dims="time", attrs={"units": unit, "source_name": name})
    return ds


def read_gridded(path: str | Path, *, units: Mapping[str, str] | None = None) -> xr.Dataset:
    """Open a gridded NetCDF or zarr (Daymet-, ERA5-Land-like) with quantity names.

    The result is on ``(time, y, x)`` with ``attrs['crs']`` (WKT): ``latitude/longitude`` grids
    become ``y/x`` in EPSG:4326, projected grids keep their CF grid mapping.
    """
    from pyproj import CRS

    path = Path(path).expanduser()
    if not path.exists():
        raise IngestError(f"weather file {path} does not exist")
    src = xr.open_zarr(path) if path.suffix == ".zarr" or path.is_dir() else xr.open_dataset(path)
    units = dict(units or {})
    tname = next((d for d in src.dims if str(d).lower() in _TIME_NAMES), None)
    if tname is None:
        raise IngestError(f"{path.name}: no time dimension (dims {list(src.dims)})")
    ren = {tname: "time"}
    crs = None
    for ydim, xdim in (("latitude", "longitude"), ("lat", "lon")):
        if ydim in src.dims and xdim in src.dims:
            ren.update({ydim: "y", xdim: "x"})
            crs = CRS.from_epsg(4326)
    if crs is None:
        if not ("y" in src.dims and "x" in src.dims):
            raise IngestError(f"{path.name}: no lat/lon or y/x grid (dims {list(src.dims)})")
        gm = next((src[v] for v in src.variables if "grid_mapping_name" in src[v].attrs
                   or "crs_wkt" in src[v].attrs), None)
        if gm is None and "crs" not in src.attrs:
            raise IngestError(
                f"{path.name}: projected y/x grid without a CRS; add a CF grid-mapping "
                "variable (crs_wkt) or attrs['crs']"
            )
        crs = CRS.from_user_input(src.attrs["crs"]) if gm is None else (
            CRS.from_wkt(gm.attrs["crs_wkt"]) if "crs_wkt" in gm.attrs else CRS.from_cf(gm.attrs))
    src = src.rename(ren)
    ds = xr.Dataset(coords={"time": src["time"].values, "y": src["y"].values,
                            "x": src["x"].values})
    for v in src.data_vars:
        q = quantity_of(str(v))
        if q is None or q in ds or set(src[v].dims) != {"time", "y", "x"}:
            continue
        ds[q] = src[v].transpose("time", "y", "x").astype("float64").load()
        ds[q].attrs = {"units": units.get(str(v), src[v].attrs.get("units")),
                       "source_name": str(v)}
    ds.attrs["crs"] = crs.to_wkt()
    src.close()
    return ds


def _es(t: xr.DataArray) -> xr.DataArray:
    return xr.apply_ufunc(saturation_vapour_pressure_pa, t)


def _latitude(ds: xr.Dataset, lat: float | None) -> xr.DataArray | float:
    if "y" not in ds.dims:
        if lat is None:
            raise IngestError("the latitude is needed for day length; pass lat=...")
        return float(lat)
    from pyproj import CRS, Transformer

    crs = CRS.from_wkt(ds.attrs["crs"])
    yy, xx = np.meshgrid(ds["y"].values, ds["x"].values, indexing="ij")
    if crs.is_geographic:
        la = yy
    else:
        _, la = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    return xr.DataArray(la, dims=("y", "x"))


def _check_assumed(q: str, da: xr.DataArray) -> None:
    """Refuse a temperature without units that cannot be degC (Fahrenheit or Kelvin)."""
    if q not in ("tmax", "tmin"):
        return
    mean = float(da.mean(skipna=True))
    if mean > 45.0:
        raise IngestError(
            f"{q} has no units and its mean {mean:.1f} cannot be degC; it looks like "
            f"{'Kelvin' if mean > 200 else 'Fahrenheit'}: say so in the header ('{q} (degF)', "
            f"'{q} (K)') or with units={{'{q}': 'degF'}} (kgvsf ingest --units {q}=degF)"
        )


def find_gaps(missing: pd.Series) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Runs of True in a daily boolean series, as ``(first, last)`` day pairs."""
    runs, start, prev = [], None, None
    for day, miss in missing.items():
        if miss and start is None:
            start = day
        if not miss and start is not None:
            runs.append((start, prev))
            start = None
        prev = day
    if start is not None:
        runs.append((start, prev))
    return runs


def daily_drivers(
    raw: xr.Dataset,
    *,
    lat: float | None = None,
    max_gap: int = MAX_GAP_DAYS,
    days: pd.DatetimeIndex | None = None,
    krs: float = KRS_INTERIOR,
    srad_mean: str | None = None,
) -> xr.Dataset:
    """Daily drivers in cube units from a quantity-named dataset (see the module docstring).

    Parameters
    ----------
    raw
        From :func:`read_station_csv` or :func:`read_gridded`.
    lat
        Latitude in degrees for ``dayl`` of a station series (grids use each cell's).
    max_gap
        Longest run of missing days filled by interpolation (default 3).
    days
        The daily axis wanted (default: the file's first to last day).
    krs
        Hargreaves' coefficient for a ``srad`` estimated from the temperature range: 0.16
        interior (default), 0.19 coastal (FAO-56 eq. 50).
    srad_mean
        Time base of a daily ``srad`` flux in W/m2: ``'daylight'`` (Daymet), ``'24h'``, or
        None (default) to detect it against the extraterrestrial radiation
        (:func:`~kgvsf_explore.ingest.estimate.srad_time_base`).

    Warns
    -----
    IngestWarning
        For each driver estimated from others (srad from the temperature range or ET0, vp
        from tmin) and for a 24-hour-mean srad converted; all recorded in
        ``attrs['kgvsf_weather_derived']`` (estimates also in
        ``attrs['kgvsf_weather_estimated']``).

    Raises
    ------
    IngestError
        Missing quantities, unknown units, or gaps longer than ``max_gap`` (dates named).
    """
    have = set(raw.data_vars)
    need = {"prcp": ("prcp",), "tmax": ("tmax", "temp"), "tmin": ("tmin", "temp")}
    lacking = [k for k, alts in need.items() if not have & set(alts)]
    if lacking:
        raise IngestError(
            f"the weather lacks {lacking} (found {sorted(have) or 'no known variable'}); "
            "needed: prcp, and tmax and tmin (or hourly temperature t2m); srad and vp are "
            "estimated when absent. Name the columns prcp/precipitation, tmax, tmin, with "
            "units in the header (e.g. 'tmax (degC)') or units=..."
        )
    if srad_mean not in (None, "daylight", "24h"):
        raise IngestError(f"srad_mean must be 'daylight', '24h' or None, got {srad_mean!r}")
    conv: dict[str, xr.DataArray] = {}
    tags: dict[str, str] = {}
    assumed: dict[str, str] = {}
    for q in raw.data_vars:
        da = raw[q]
        source = da.attrs.get("source_name", str(q))
        units = da.attrs.get("units")
        if units is None and str(source).strip().lower() == q and q in schema.DRIVER_UNITS:
            # a column named as the cube names the driver: in the cube's (Daymet) units
            units = assumed[str(q)] = schema.DRIVER_UNITS[str(q)]
            _check_assumed(str(q), da)
        vals, tag = convert(str(q), da, units, source=source)
        conv[str(q)], tags[str(q)] = vals, tag
    if assumed:
        warnings.warn(
            f"no units given for {sorted(assumed)}: taken in the cube's units {assumed} "
            "(validation still refuses Kelvin or metres); say them in the header, e.g. "
            "'tmax (K)', or with units=... (kgvsf ingest --units tmax=K) if they differ",
            IngestWarning, stacklevel=2)
    time = pd.DatetimeIndex(raw["time"].values)
    if len(time) < 2:
        raise IngestError("the weather has fewer than two time steps")
    if not time.is_monotonic_increasing:
        order = np.argsort(time.values)
        conv = {k: v.isel(time=order) for k, v in conv.items()}
        time = time[order]
    subdaily = pd.Series(time.normalize()).duplicated().any()
    derived: dict[str, str] = {}
    # vapour pressure, per step, before aggregating
    if "vp" not in conv:
        if "tdew" in conv:
            conv["vp"] = _es(conv["tdew"])
            derived["vp"] = "FAO-56 eq. 14 from the dew point"
        elif subdaily and "temp" in conv:
            conv["vp"] = conv["rh"] / 100.0 * _es(conv["temp"])
            derived["vp"] = "relative humidity x saturation vapour pressure, per time step"
    agg: dict[str, xr.DataArray] = {}

    def daily(da: xr.DataArray, how: str) -> xr.DataArray:
        # skipna=False: a day with a missing hour is a missing day (a gap), not a biased value
        return getattr(da.resample(time="1D"), how)(skipna=False).rename(time="day")

    if subdaily:
        agg["prcp"] = daily(conv["prcp"], "mean" if tags["prcp"] == "rate" else "sum")
        agg["tmax"] = daily(conv.get("tmax", conv.get("temp")), "max")
        agg["tmin"] = daily(conv.get("tmin", conv.get("temp")), "min")
        if "srad" in conv:
            agg["srad"] = daily(conv["srad"], "sum" if tags["srad"] == "energy" else "mean")
            tags["srad"] = "energy" if tags["srad"] == "energy" else "flux24"
        for q in ("vp", "dayl", "swe", "rh", "et0"):
            if q in conv:
                agg[q] = daily(conv[q], "mean")
    else:
        for q, da in conv.items():
            agg[q] = da.assign_coords(time=time.normalize()).rename(time="day")
        if "tmax" not in agg:
            raise IngestError("daily weather needs tmax and tmin columns (a daily mean "
                              "temperature is not enough)")
    if "vp" not in agg and "rh" in agg:
        es = (_es(agg["tmax"]) + _es(agg["tmin"])) / 2
        agg["vp"] = agg["rh"] / 100.0 * es
        derived["vp"] = "FAO-56 eq. 19: RH mean x mean of e0(tmax), e0(tmin)"
    full = days if days is not None else pd.date_range(agg["prcp"]["day"].values[0],
                                                      agg["prcp"]["day"].values[-1], freq="D")
    agg = {k: v.reindex(day=full) for k, v in agg.items()}
    filled, long_gaps = {}, []
    for q in ("prcp", "tmax", "tmin", "srad", "vp", "dayl", "swe", "et0"):
        if q not in agg:
            continue
        da = agg[q]
        other = [d for d in da.dims if d != "day"]
        miss = da.isnull().any(other) if other else da.isnull()
        runs = find_gaps(pd.Series(miss.values, index=full))
        for a, b in runs:
            n = (b - a).days + 1
            if n > max_gap or a == full[0] or b == full[-1]:
                long_gaps.append(f"{q} {a.date()}..{b.date()} ({n} day{'s' * (n > 1)})")
        if runs:
            filled[q] = [str(d.date()) for a, b in runs for d in pd.date_range(a, b)]
            agg[q] = da.interpolate_na("day", method="linear")
    if long_gaps:
        raise IngestError(
            f"the weather has gaps that cannot be filled (longer than {max_gap} days, or at the "
            f"start/end): {'; '.join(long_gaps)}. Fill them from another source (a nearby "
            "station, ERA5-Land) or cut the period; gaps of up to "
            f"{max_gap} days are interpolated"
        )
    doy = full.day_of_year.values
    need_lat = "dayl" not in agg or "srad" not in agg or (
        tags.get("srad") == "flux" and srad_mean is None)
    la = _latitude(raw, lat) if need_lat else None

    def per_day(fn) -> xr.DataArray:  # fn(lat, doy) on (day,) or (day, y, x)
        if isinstance(la, float):
            return xr.DataArray(fn(la, doy), dims="day", coords={"day": full})
        return xr.DataArray(fn(la.values[None], doy[:, None, None]),
                            dims=("day", *la.dims), coords={"day": full})

    if "dayl" not in agg:
        agg["dayl"] = per_day(day_length_s)
        derived["dayl"] = "FAO-56 eq. 34 from latitude"
    dayl = agg["dayl"]
    estimated: dict[str, str] = {}
    if "srad" not in agg:
        ra = per_day(extraterrestrial_mj)
        if "et0" in agg:
            agg["srad"] = xr.apply_ufunc(srad_from_et0, agg["et0"], agg["tmax"], agg["tmin"],
                                         ra, dayl)
            estimated["srad"] = ("from reference ET0 by Hargreaves & Samani (1985), Rs = ET0 / "
                                 "(0.0135 (Tmean + 17.8)), capped at 0.75 Ra")
        else:
            agg["srad"] = xr.apply_ufunc(hargreaves_srad, agg["tmax"], agg["tmin"], ra, dayl,
                                         kwargs={"krs": krs})
            estimated["srad"] = (f"Hargreaves radiation from the temperature range, FAO-56 eq. "
                                 f"50, kRs {krs:g} ({'coastal' if krs >= 0.19 else 'interior'})"
                                 ", capped at 0.75 Ra")
        tags["srad"] = "estimated"
    elif tags["srad"] == "flux":
        base, why = srad_mean, "as said (srad_mean='24h')"
        if base is None:
            base, ratios = srad_time_base(
                agg["srad"].transpose("day", ...).values,
                dayl.broadcast_like(agg["srad"]).transpose("day", ...).values,
                per_day(extraterrestrial_mj).broadcast_like(agg["srad"])
                .transpose("day", ...).values)
            why = (f"clear days reach {ratios.get('p95_daylight', 0):.2f} Ra read as the "
                   f"daylight mean, {ratios.get('p95_24h', 0):.2f} Ra read as a 24-hour mean; "
                   "clear sky is about 0.75 Ra, FAO-56 eq. 37") if ratios else ""
        if base == "24h":
            tags["srad"] = "flux24"
            warnings.warn(f"srad looks like a 24-hour mean flux ({why}); converted to the "
                          "daylight mean (x 86400 / dayl). Pass srad_mean='daylight' "
                          "(kgvsf ingest --srad-mean daylight) if it is not",
                          IngestWarning, stacklevel=2)
    if "vp" not in agg:
        agg["vp"] = _es(agg["tmin"])
        estimated["vp"] = "dew point taken as tmin, FAO-56 eq. 48 (ea = e0(Tmin))"
    if tags.get("srad") == "energy":
        agg["srad"] = xr.where(dayl > 0, agg["srad"] / dayl.where(dayl > 0), 0.0)
        derived["srad"] = "daily total / dayl (daylight-mean flux)"
    elif tags["srad"] == "flux24":
        agg["srad"] = xr.where(dayl > 0, agg["srad"] * 86400.0 / dayl.where(dayl > 0), 0.0)
        derived["srad"] = "24 h mean flux x 86400 / dayl (daylight-mean flux)"
    if "swe" not in agg:
        agg["swe"] = _snowpack(agg["prcp"], agg["tmax"], agg["tmin"])
        estimated["swe"] = ("degree-day snow model from prcp, tmax and tmin (precipitation "
                            "falls as snow when the daily mean is below 0 degC, melt 2.5 kg/m2 "
                            "per degC day; snow-free on the record's first day), as gridded "
                            "products such as Daymet estimate it")
    for q, how in estimated.items():
        derived[q] = "estimated: " + how
        warnings.warn(f"the weather has no {q}: estimated ({how}); recorded in the cube's "
                      "attrs['kgvsf_weather_estimated']. Give the measured values if you have "
                      "them", IngestWarning, stacklevel=2)
    out = xr.Dataset(coords={"day": full})
    for q in schema.DRIVERS:
        da = agg[q].astype("float32")
        if q == "prcp":
            da = da.clip(min=0)
        da.attrs = {"units": schema.DRIVER_UNITS[q], "long_name": schema.DRIVER_LONG_NAMES[q]}
        if q in derived:
            da.attrs["kgvsf_derived"] = derived[q]
        out[q] = da.transpose("day", ...)
    out.attrs["kgvsf_weather_filled_days"] = json.dumps(filled)
    out.attrs["kgvsf_weather_derived"] = json.dumps(derived)
    out.attrs["kgvsf_weather_estimated"] = json.dumps(estimated)
    out.attrs["kgvsf_weather_units_assumed"] = json.dumps(assumed)
    out.attrs["kgvsf_weather_subdaily"] = int(bool(subdaily))
    if "crs" in raw.attrs:
        out.attrs["crs"] = raw.attrs["crs"]
    return out


def _snowpack(prcp: xr.DataArray, tmax: xr.DataArray, tmin: xr.DataArray) -> xr.DataArray:
    """Daily snow water equivalent (kg/m2) of a record without one, by a degree-day model
    (:func:`kgvsf_explore.world.water.snowpack`; a missing temperature melts nothing)."""
    p = prcp.clip(min=0).transpose("day", ...)
    tx, tn = (t.transpose(*p.dims).values for t in (tmax, tmin))
    gap = ~(np.isfinite(tx) & np.isfinite(tn))  # a day at 0 degC: no snowfall, no melt
    swe = snowpack(np.nan_to_num(p.values), np.where(gap, 0.0, tx), np.where(gap, 0.0, tn))
    return p.copy(data=swe.astype("float32"))

