"""Check that a dataset follows the cube schema, reporting every problem with a fix.

Validation is cheap on big lazy cubes: coordinates are read in full (they are small) but data
variables are only sampled (a few image dates, a few hundred days at a handful of pixels), so a
multi-gigabyte dask-backed cube validates in well under a second.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..errors import CubeValidationError
from ._util import crs_text, is_small, load_samples, sample_parts

__all__ = ["CubeValidationWarning", "validate_dataset"]

_MISSING_ATTR = "kgvsf_missing_bands"


class CubeValidationWarning(UserWarning):
    """Something in a cube looks wrong but does not stop it from being used."""


def _listed_missing(ds: xr.Dataset, p: _Problems | None = None) -> list[str]:
    """Bands listed in ``attrs["kgvsf_missing_bands"]``; a malformed list is a problem."""
    from .cube import listed_missing_bands

    try:
        return listed_missing_bands(ds)
    except CubeValidationError as err:
        if p is not None:
            p.add(_MISSING_ATTR, str(err))
        return []

IMAGE_DIMS = (schema.TIME_DIM, schema.Y_DIM, schema.X_DIM)
PIXEL_DAILY_DIMS = (schema.DAY_DIM, schema.Y_DIM, schema.X_DIM)
DRIVER_DIMS = (
    (schema.DAY_DIM,),
    PIXEL_DAILY_DIMS,
    (schema.DAY_DIM, schema.Y_MET_DIM, schema.X_MET_DIM),
)
STATIC_DIMS = (schema.Y_DIM, schema.X_DIM)
STATICS = (schema.CROP_TYPE, schema.FIELD_ID, schema.SOIL_TYPE)

_TEMPS = ("tmax", "tmin")

#: Accepted spellings of each variable's units, after :func:`_norm_units`.
_OK_UNITS: dict[str, set[str]] = {
    "prcp": {"mm/day", "mm/d", "mm", "kg/m2", "kg/m2/day", "kg/m2/d", "mm/24h"},
    "tmax": {
        "degc",
        "°c",
        "c",
        "celsius",
        "degrees_celsius",
        "degree_celsius",
        "degreesc",
        "deg_c",
        "degreec",
        "degrees_c",
    },
    "srad": {"w/m2", "w/m²", "watt/m2", "w/meter2"},
    "vp": {"pa", "pascal", "pascals"},
    "dayl": {"s", "sec", "second", "seconds", "s/day"},
    "swe": {"kg/m2", "mm", "kg/m²"},
    schema.SOIL_MOISTURE: {"m3/m3", "m³/m³", "cm3/cm3", "1", "fraction", "m3m-3", "v/v"},
}
_OK_UNITS["tmin"] = _OK_UNITS["tmax"]

#: Known wrong units -> how to convert (per variable).
_BAD_UNITS: dict[str, dict[str, str]] = {
    "tmax": {
        **dict.fromkeys(
            ("k", "kelvin", "degk", "deg_k", "degreesk", "degrees_kelvin"),
            "Kelvin: subtract 273.15",
        ),
        **dict.fromkeys(
            ("degf", "°f", "f", "fahrenheit", "degrees_fahrenheit"),
            "Fahrenheit: convert with (F - 32) * 5 / 9",
        ),
    },
    "prcp": {
        **dict.fromkeys(("m", "m/day", "m/d", "meters", "metres"), "metres: multiply by 1000"),
        **dict.fromkeys(("kg/m2/s", "mm/s"), "a rate per second: multiply by 86400"),
        "cm": "centimetres: multiply by 10",
        **dict.fromkeys(("in", "inch", "inches"), "inches: multiply by 25.4"),
    },
    "srad": {
        **dict.fromkeys(
            ("j/m2", "j/m2/day", "j/m2/d"),
            "a daily total in J/m2: divide by the day length in seconds (dayl) to get the "
            "daylight-mean flux in W/m2",
        ),
        **dict.fromkeys(
            ("kj/m2", "kj/m2/day", "kj/m2/d"),
            "a daily total in kJ/m2: multiply by 1000 and divide by dayl (s) to get W/m2",
        ),
        **dict.fromkeys(
            ("mj/m2", "mj/m2/day", "mj/m2/d"),
            "a daily total in MJ/m2: multiply by 1e6 and divide by dayl (s) to get W/m2",
        ),
    },
    "vp": {
        "kpa": "kilopascal: multiply by 1000",
        **dict.fromkeys(("hpa", "mbar", "mb", "millibar"), "hectopascal: multiply by 100"),
    },
    "dayl": {
        **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours: multiply by 3600"),
        **dict.fromkeys(("min", "minute", "minutes"), "minutes: multiply by 60"),
    },
    "swe": {
        **dict.fromkeys(("m", "meters", "metres"), "metres: multiply by 1000"),
        "cm": "centimetres: multiply by 10",
    },
    schema.SOIL_MOISTURE: {"%": "percent: divide by 100", "percent": "percent: divide by 100"},
}
_BAD_UNITS["tmin"] = _BAD_UNITS["tmax"]
_BAD_BAND_UNITS = {
    "%": "percent: divide by 100",
    "percent": "percent: divide by 100",
    "dn": "scaled integers (e.g. Sentinel-2 DN): multiply by 1e-4",
}


def _norm_units(units: str) -> str:
    """Normalise a units string: ``'W m-2'`` -> ``'w/m2'``, ``'mm day-1'`` -> ``'mm/day'``."""
    u = str(units).strip().lower().replace("**", "").replace("^", "")
    u = u.replace("per ", "/")
    parts = u.split()
    out = ""
    for p in parts:
        if p.endswith("-1") and len(p) > 2:
            out += "/" + p[:-2]
        elif p.endswith("-2") and len(p) > 2:
            out += "/" + p[:-2] + "2"
        elif p.endswith("-3") and len(p) > 2:
            out += "/" + p[:-2] + "3"
        else:
            out += ("_" if out else "") + p
    return out


class _Problems:
    """Collects problems as ``"<var>: <what is wrong>; <how to fix it>"`` lines."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, var: str, message: str) -> None:
        self.items.append(f"{var}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            n = len(self.items)
            lines = "\n".join(f"  - {p}" for p in self.items)
            raise CubeValidationError(
                f"{n} problem{'s' if n > 1 else ''} with the dataset "
                f"(see kgvsf_explore.schema for the contract):\n{lines}"
            )


def validate_dataset(ds: xr.Dataset, *, require_truth: bool = False) -> None:
    """Check ``ds`` against the cube schema and raise one error listing every problem.

    Checks, each reported with the variable it concerns and how to fix it:

    * presence of the bands, ``cloud_mask``, the drivers and the static layers
      (``crop_type``, ``field_id``, ``soil_type``); ``<band>_true`` with ``require_truth``;
    * dimensions of every variable (expected vs got);
    * ``time``/``day`` are datetime, strictly increasing and unique; ``day`` has no gaps;
    * ``y`` decreasing and ``x`` increasing, both regularly spaced;
    * units, by the ``units`` attribute and by the values of a small sample (Kelvin, metres of
      rain, J/m2 radiation, kPa vapour pressure, hours of day length, scaled-integer bands...);
    * a projected CRS in ``spatial_ref.attrs['crs_wkt']`` or ``ds.attrs['crs']``;
    * bands that are entirely NaN;
    * a ``srad`` that looks like a 24-hour mean rather than the daylight mean (a
      :class:`CubeValidationWarning`: both are in range; see
      :func:`kgvsf_explore.ingest.estimate.srad_time_base`).

    A cube may lack bands (a sensor without a red edge): a band listed in
    ``ds.attrs["kgvsf_missing_bands"]`` (a JSON list, as ``kgvsf ingest --missing-bands nan``
    writes it) may be absent or entirely NaN, and the model treats it as not observed. A band
    that is entirely NaN but not listed only gives a :class:`CubeValidationWarning` saying to
    list it; an absent band that is not listed, and a cube without any observed band, are
    problems.

    Only small samples of the data variables are loaded, so it is cheap on lazy cubes.

    Parameters
    ----------
    ds
        The dataset to check.
    require_truth
        Also require the cloud-free truth ``<band>_true`` of every band (simulated cubes).

    Raises
    ------
    CubeValidationError
        Listing all problems found.
    """
    if not isinstance(ds, xr.Dataset):
        raise CubeValidationError(
            f"expected an xarray.Dataset, got {type(ds).__name__}; open files with "
            "kgvsf_explore.open_cube"
        )
    for dim, what in ((schema.TIME_DIM, "image dates"), (schema.DAY_DIM, "days of drivers")):
        if ds.sizes.get(dim, None) == 0:
            raise CubeValidationError(
                f"the dataset has no {what}: its '{dim}' dimension has length 0. A cube needs "
                f"at least one image and the daily drivers around it; check the date range "
                "or the selection that produced it (e.g. ds.sel(time=...) matching nothing)")
    p = _Problems()
    _check_presence(ds, p, require_truth)
    axes_ok = _check_axes(ds, p)
    dims_ok = _check_dims(ds, p, require_truth)
    _check_crs(ds, p)
    _check_units_attrs(ds, p)
    _check_values(ds, p, dims_ok, axes_ok)
    if dims_ok.get("srad") and dims_ok.get("dayl") and axes_ok.get(schema.DAY_DIM, True):
        _check_srad_time_base(ds)
    p.raise_if_any()


# --------------------------------------------------------------------------------------------
# presence and dims


def _present(ds: xr.Dataset) -> str:
    names = sorted(str(v) for v in ds.data_vars)
    return ", ".join(names) if names else "none"


def _check_presence(ds: xr.Dataset, p: _Problems, require_truth: bool) -> None:
    have = set(ds.variables)
    listed = _listed_missing(ds, p)
    unknown = [b for b in listed if b not in schema.BANDS]
    if unknown:
        p.add(
            _MISSING_ATTR,
            f"lists unknown band(s) {unknown}; band names are {list(schema.BANDS)}",
        )
    bands = [b for b in schema.BANDS if b in have]
    missing = [b for b in schema.BANDS if b not in have and b not in listed]
    if missing:
        p.add(
            ",".join(missing),
            f"missing band(s) {missing}; bands present: {bands or 'none'}. Add them as "
            "(time, y, x) float32 surface reflectance (0-1), NaN under clouds, named "
            f"{list(schema.BANDS)} (Sentinel-2 names; data variables present: {_present(ds)})"
            f"; or, if the sensor has no such band, list it in ds.attrs['{_MISSING_ATTR}'] "
            f"(e.g. json.dumps({missing})) and the model treats it as not observed",
        )
    observed = [b for b in bands if b not in listed]
    if bands and not observed:
        p.add(
            ",".join(bands),
            f"every band present is listed in ds.attrs['{_MISSING_ATTR}'] = {listed}: the "
            "cube has no observation at all; the model needs at least one band",
        )
    if require_truth:
        miss_t = [schema.truth_name(b) for b in schema.BANDS
                  if schema.truth_name(b) not in have and b not in listed]
        if miss_t:
            p.add(
                ",".join(miss_t),
                f"missing cloud-free truth variable(s) {miss_t}, required with "
                "require_truth=True; use a simulated cube or pass require_truth=False",
            )
    if schema.CLOUD_MASK not in have:
        p.add(
            schema.CLOUD_MASK,
            "missing (time, y, x) boolean cloud mask; add one, e.g. "
            "ds['cloud_mask'] = ds['B04'].isnull() if clouds are already NaN "
            f"(data variables present: {_present(ds)})",
        )
    missing_d = [d for d in schema.DRIVERS if d not in have]
    if missing_d:
        present_d = [d for d in schema.DRIVERS if d in have]
        p.add(
            ",".join(missing_d),
            f"missing driver(s) {missing_d}; drivers present: {present_d or 'none'}. Add daily "
            "Daymet-style drivers on (day,), (day, y, x) or (day, y_met, x_met) with units "
            f"{schema.DRIVER_UNITS}",
        )
    missing_s = [s for s in STATICS if s not in have]
    if missing_s:
        present_s = [s for s in STATICS if s in have]
        p.add(
            ",".join(missing_s),
            f"missing static layer(s) {missing_s}; static layers present: {present_s or 'none'}. "
            "Add them as integer (y, x) rasters with CF flag_values/flag_meanings legends "
            "(see kgvsf_explore.schema.legend_attrs)",
        )


def _dims_problem(
    ds: xr.Dataset, name: str, allowed: tuple[tuple[str, ...], ...], p: _Problems
) -> bool:
    """Report ``name`` when its dims are not one of ``allowed``; return True when fine."""
    if name not in ds.variables:
        return False
    got = tuple(str(d) for d in ds[name].dims)
    if got in allowed:
        return True
    want = " or ".join(str(a) for a in allowed)
    for a in allowed:
        if set(a) == set(got):
            p.add(name, f"dims {got}, expected {a}; transpose with ds['{name}'].transpose{a}")
            return False
    p.add(name, f"wrong dims: expected {want}, got {got}; rename or reshape the variable")
    return False


def _check_dims(ds: xr.Dataset, p: _Problems, require_truth: bool) -> dict[str, bool]:
    ok: dict[str, bool] = {}
    for b in schema.BANDS:
        ok[b] = _dims_problem(ds, b, (IMAGE_DIMS,), p)
        t = schema.truth_name(b)
        if t in ds.variables:
            ok[t] = _dims_problem(ds, t, (IMAGE_DIMS,), p)
    ok[schema.CLOUD_MASK] = _dims_problem(ds, schema.CLOUD_MASK, (IMAGE_DIMS,), p)
    if ok[schema.CLOUD_MASK] and ds[schema.CLOUD_MASK].dtype != bool:
        p.add(
            schema.CLOUD_MASK,
            f"dtype {ds[schema.CLOUD_MASK].dtype}, expected bool; convert with "
            "ds['cloud_mask'] = ds['cloud_mask'].astype(bool)",
        )
    for d in schema.DRIVERS:
        ok[d] = _dims_problem(ds, d, DRIVER_DIMS, p)
    ok[schema.SOIL_MOISTURE] = _dims_problem(ds, schema.SOIL_MOISTURE, (PIXEL_DAILY_DIMS,), p)
    for s in STATICS:
        allowed = (STATIC_DIMS, (schema.YEAR_DIM, *STATIC_DIMS)) if s == schema.CROP_TYPE else (
            STATIC_DIMS,)
        ok[s] = _dims_problem(ds, s, allowed, p)
    return ok


# --------------------------------------------------------------------------------------------
# coordinate axes


def _check_time_axis(ds: xr.Dataset, dim: str, p: _Problems, daily: bool) -> bool:
    if dim not in ds.dims:
        users = [str(v) for v in ds.data_vars if dim in ds[v].dims]
        if dim == schema.TIME_DIM or users:
            p.add(dim, f"dimension '{dim}' is missing; image variables need a '{dim}' axis")
        return False
    if dim not in ds.coords:
        p.add(
            dim,
            f"dimension '{dim}' has no coordinate; assign datetime64 values with "
            f"ds.assign_coords({dim}=pd.to_datetime(...))",
        )
        return False
    values = ds[dim].values
    if not np.issubdtype(values.dtype, np.datetime64):
        kind = type(values.flat[0]).__name__ if values.size else str(values.dtype)
        p.add(
            dim,
            f"'{dim}' is not datetime64 (got {values.dtype}, e.g. {kind}); convert with "
            f"ds['{dim}'] = pd.to_datetime(ds['{dim}'].values) (or, for cftime dates, "
            f"ds.indexes['{dim}'].to_datetimeindex())",
        )
        return False
    idx = pd.DatetimeIndex(values)
    good = True
    if idx.has_duplicates:
        dup = idx[idx.duplicated()][0]
        p.add(
            dim,
            f"'{dim}' has duplicated dates (e.g. {dup.date()}); drop or merge them, "
            f"e.g. ds = ds.drop_duplicates('{dim}')",
        )
        good = False
    if not idx.is_monotonic_increasing:
        p.add(dim, f"'{dim}' is not increasing; sort it with ds = ds.sortby('{dim}')")
        good = False
    if daily and good and len(idx) > 1:
        if not (idx == idx.normalize()).all():
            p.add(
                dim,
                f"'{dim}' must be at midnight; use ds['{dim}'] = ds.indexes['{dim}'].normalize()",
            )
            good = False
        else:
            full = pd.date_range(idx[0], idx[-1], freq="D")
            if len(full) != len(idx):
                missing = full.difference(idx)
                p.add(
                    dim,
                    f"'{dim}' has {len(missing)} missing date(s), first missing "
                    f"{missing[0].date()}; the daily axis must have no gaps: fill them, e.g. "
                    f"ds = ds.reindex({dim}=pd.date_range(...)).interpolate_na('{dim}')",
                )
                good = False
    return good


def _check_spatial_axis(ds: xr.Dataset, dim: str, decreasing: bool, p: _Problems) -> bool:
    if dim not in ds.dims:
        p.add(dim, f"dimension '{dim}' is missing; images must be on (time, y, x)")
        return False
    if dim not in ds.coords:
        p.add(
            dim,
            f"dimension '{dim}' has no coordinate; assign projected pixel-centre "
            f"coordinates in metres",
        )
        return False
    c = np.asarray(ds[dim].values)
    if not np.issubdtype(c.dtype, np.number):
        p.add(dim, f"'{dim}' is not numeric (got {c.dtype}); use pixel-centre coordinates")
        return False
    c = c.astype("float64")
    if c.size < 2:
        return True
    d = np.diff(c)
    direction = "decreasing (north-up)" if decreasing else "increasing"
    if (decreasing and not (d < 0).all()) or (not decreasing and not (d > 0).all()):
        fix = f"ds = ds.sortby('{dim}', ascending={not decreasing})"
        p.add(dim, f"'{dim}' must be strictly {direction}; fix with {fix}")
        return False
    if not np.allclose(d, d[0], rtol=1e-6, atol=1e-6 * abs(d[0])):
        p.add(
            dim,
            f"'{dim}' is irregularly spaced (steps {d.min():g}..{d.max():g}); resample "
            "to a regular grid (e.g. rioxarray reproject or ds.interp)",
        )
        return False
    return True


def _check_axes(ds: xr.Dataset, p: _Problems) -> dict[str, bool]:
    ok = {
        schema.TIME_DIM: _check_time_axis(ds, schema.TIME_DIM, p, daily=False),
        schema.DAY_DIM: _check_time_axis(ds, schema.DAY_DIM, p, daily=True),
        schema.Y_DIM: _check_spatial_axis(ds, schema.Y_DIM, True, p),
        schema.X_DIM: _check_spatial_axis(ds, schema.X_DIM, False, p),
    }
    for dim in (schema.Y_MET_DIM, schema.X_MET_DIM):
        if dim in ds.dims:
            if dim not in ds.coords:
                p.add(
                    dim,
                    f"dimension '{dim}' has no coordinate; assign the native grid's "
                    "cell centres (same CRS as y/x)",
                )
                continue
            c = np.asarray(ds[dim].values, dtype="float64")
            d = np.diff(c)
            if c.size > 1 and not ((d > 0).all() or (d < 0).all()):
                p.add(dim, f"'{dim}' must be strictly monotonic; sort with ds.sortby('{dim}')")
            elif c.size and ok.get(dim[0]):
                pix = np.asarray(ds[dim[0]].values, dtype="float64")
                if pix.size and (pix.min() < c.min() or pix.max() > c.max()):
                    p.add(
                        dim,
                        f"the drivers' native grid ({dim} {c.min():.1f}..{c.max():.1f}) does not "
                        f"cover the pixel centres ({dim[0]} {pix.min():.1f}..{pix.max():.1f}); "
                        "bilinear interpolation would give NaN there: extend the native grid by "
                        "one cell beyond the image",
                    )
    if ok[schema.TIME_DIM] and ok[schema.DAY_DIM] and ds.sizes[schema.TIME_DIM]:
        t = pd.DatetimeIndex(ds[schema.TIME_DIM].values).normalize()
        d = pd.DatetimeIndex(ds[schema.DAY_DIM].values)
        if len(d) and (t[0] < d[0] or t[-1] > d[-1]):
            p.add(
                schema.DAY_DIM,
                f"image dates {t[0].date()}..{t[-1].date()} are not covered by the daily "
                f"drivers {d[0].date()}..{d[-1].date()}; extend the drivers or cut the images "
                "with ds.sel(time=slice(...))",
            )
    return ok


# --------------------------------------------------------------------------------------------
# CRS


def _check_crs(ds: xr.Dataset, p: _Problems) -> None:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    text, where = crs_text(ds)
    if text is None:
        hint = ""
        if schema.X_DIM in ds.coords and schema.Y_DIM in ds.coords:
            x = np.asarray(ds[schema.X_DIM].values, dtype="float64")
            y = np.asarray(ds[schema.Y_DIM].values, dtype="float64")
            if x.size and y.size and np.abs(x).max() <= 180 and np.abs(y).max() <= 90:
                hint = (
                    " The x/y values look like longitude/latitude: reproject to a projected "
                    "CRS such as UTM first."
                )
        p.add(
            schema.GRID_MAPPING,
            "no CRS found (no 'spatial_ref' variable with a 'crs_wkt' attribute and no "
            "ds.attrs['crs']); add one, e.g. ds['spatial_ref'] = xr.DataArray(0, attrs="
            "{'crs_wkt': pyproj.CRS.from_epsg(32615).to_wkt()}) (your UTM zone), "
            "ds.rio.write_crs('EPSG:32615') with rioxarray, or ds.attrs['crs'] = 'EPSG:32615'."
            + hint,
        )
        return
    try:
        crs = CRS.from_user_input(text)
    except CRSError as exc:
        p.add(
            schema.GRID_MAPPING,
            f"CRS in {where} cannot be parsed by pyproj ({exc}); store "
            "a WKT string, e.g. pyproj.CRS.from_epsg(32615).to_wkt()",
        )
        return
    if crs.is_geographic:
        p.add(
            schema.GRID_MAPPING,
            f"geographic (lat/lon) CRS {crs.to_string()!r} in {where}: pixels must be in metres; "
            "reproject to a projected CRS such as UTM (e.g. with rioxarray: "
            "ds.rio.reproject(ds.rio.estimate_utm_crs()))",
        )
    elif not crs.is_projected:
        p.add(
            schema.GRID_MAPPING,
            f"CRS {crs.to_string()!r} in {where} is not a projected CRS; "
            "reproject to a projected CRS such as UTM",
        )


# --------------------------------------------------------------------------------------------
# units


def _check_units_attrs(ds: xr.Dataset, p: _Problems) -> None:
    for name in (*schema.DRIVERS, schema.SOIL_MOISTURE):
        if name not in ds.variables:
            continue
        units = ds[name].attrs.get("units")
        if units is None:
            continue
        u = _norm_units(units)
        expected = schema.DRIVER_UNITS.get(name, schema.SOIL_MOISTURE_UNITS)
        if u in _OK_UNITS[name] or u == _norm_units(expected):
            continue
        bad = _BAD_UNITS.get(name, {}).get(u)
        if bad:
            p.add(
                name,
                f"units attribute {units!r} looks like {bad}, then set "
                f"attrs['units'] = {expected!r}",
            )
        else:
            p.add(
                name,
                f"unrecognised units {units!r}; expected {expected!r} (Daymet "
                "conventions): convert the values and set attrs['units'] accordingly",
            )
    for b in schema.BANDS:
        for name in (b, schema.truth_name(b)):
            if name in ds.variables and "units" in ds[name].attrs:
                u = _norm_units(ds[name].attrs["units"])
                if u in _BAD_BAND_UNITS:
                    p.add(
                        name,
                        f"units {ds[name].attrs['units']!r} look like "
                        f"{_BAD_BAND_UNITS[u]}; reflectance must be unitless 0-1",
                    )


# --------------------------------------------------------------------------------------------
# values


def _nan_stats(v: np.ndarray) -> tuple[float, float, float] | None:
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    return float(v.min()), float(v.max()), float(v.mean())


def _check_values(
    ds: xr.Dataset, p: _Problems, dims_ok: dict[str, bool], axes_ok: dict[str, bool]
) -> None:
    # gather every sample first, then read them all in one dask pass
    requests: dict[str, list] = {}
    for name in schema.DRIVERS:
        if dims_ok.get(name):
            parts = sample_parts(ds[name], {schema.DAY_DIM: 400}, window=2, n_windows=2)
            requests[name] = parts
    if dims_ok.get(schema.SOIL_MOISTURE):
        requests[schema.SOIL_MOISTURE] = sample_parts(ds[schema.SOIL_MOISTURE], {schema.DAY_DIM: 6})
    for b in schema.BANDS:
        for name in (b, schema.truth_name(b)):
            if dims_ok.get(name):
                requests[name] = sample_parts(ds[name], {schema.TIME_DIM: 4}, n_windows=2)
    loaded = {k: v.astype("float64") for k, v in load_samples(requests).items()}

    samples: dict[str, np.ndarray] = {}
    for name in schema.DRIVERS:
        if name in loaded:
            samples[name] = loaded[name]
            _check_driver_values(name, loaded[name], p)
    if "tmax" in samples and "tmin" in samples and samples["tmax"].shape == samples["tmin"].shape:
        tx, tn = samples["tmax"], samples["tmin"]
        both = np.isfinite(tx) & np.isfinite(tn)
        if both.any() and (tn[both] > tx[both] + 1e-3).mean() > 0.5:
            p.add("tmax,tmin", "tmin exceeds tmax on most sampled days: the two look swapped")
    sm = schema.SOIL_MOISTURE
    if dims_ok.get(sm):
        st = _nan_stats(loaded[sm])
        if st and 1.0 < st[1] <= 100.0:
            p.add(
                sm,
                f"values up to {st[1]:.3g} look like percent; divide by 100 "
                f"(expected volumetric {schema.SOIL_MOISTURE_UNITS} in 0-1)",
            )
        elif st and (st[0] < -0.01 or st[1] > 1.0):
            p.add(
                sm,
                f"values {st[0]:.3g}..{st[1]:.3g} outside 0-1 "
                f"{schema.SOIL_MOISTURE_UNITS}; check units",
            )
    listed = set(_listed_missing(ds))
    for b in schema.BANDS:
        for name in (b, schema.truth_name(b)):
            if not dims_ok.get(name):
                continue
            da = ds[name]
            st = _nan_stats(loaded[name])
            if st is None and b in listed:
                continue  # listed as never observed: all-NaN is what it should be
            if st is None and name == b:
                how = "entirely NaN" if is_small(da) else "NaN in every sampled window"
                warnings.warn(
                    f"{name}: {how}; if the sensor has no such band, list it in "
                    f"ds.attrs['{_MISSING_ATTR}'] (e.g. "
                    f"ds.attrs['{_MISSING_ATTR}'] = {json.dumps([name])!r}) so that the model "
                    "treats it as not observed instead of seeing no valid pixel; otherwise "
                    "check the source data (nodata value decoded as NaN, wrong band mapping)",
                    CubeValidationWarning,
                    stacklevel=3,
                )
                continue
            if st is None:
                if is_small(da):
                    p.add(
                        name,
                        "entirely NaN; the band holds no observation: check the source "
                        "data (nodata value decoded as NaN?) or drop the band's dates",
                    )
                else:
                    p.add(
                        name,
                        "NaN in every sampled window and image date; the band looks empty: check "
                        "the source data (nodata value, wrong band mapping)",
                    )
                continue
            if st[1] > 2.0:
                p.add(
                    name,
                    f"values up to {st[1]:.6g} look like scaled integers (e.g. "
                    "Sentinel-2 DN): multiply by 1e-4 (and subtract the L2A offset "
                    "0.1 for processing baseline >= 04.00) to get 0-1 reflectance",
                )
            elif st[0] < -0.5:
                p.add(
                    name,
                    f"values down to {st[0]:.3g}; reflectance must be in about 0-1: "
                    "check the offset/scale",
                )


def _latitude(ds: xr.Dataset) -> float | None:
    """Latitude of the cube's centre: ``attrs['latitude']``, else from its CRS and x/y."""
    if "latitude" in ds.attrs:
        return float(ds.attrs["latitude"])
    text, _ = crs_text(ds)
    if not text or schema.Y_DIM not in ds.coords or schema.X_DIM not in ds.coords:
        return None
    from pyproj import CRS, Transformer

    y, x = ds[schema.Y_DIM].values, ds[schema.X_DIM].values
    if not (y.size and x.size):
        return None
    try:
        tr = Transformer.from_crs(CRS.from_user_input(text), "EPSG:4326", always_xy=True)
        _, lat = tr.transform(float(x.mean()), float(y.mean()))
    except Exception:  # an unusable CRS is reported by _check_crs
        return None
    return float(lat) if np.isfinite(lat) else None


def _check_srad_time_base(ds: xr.Dataset) -> None:
    """Warn when srad looks like a 24-hour mean flux instead of the daylight mean."""
    from ..ingest.estimate import extraterrestrial_mj, srad_time_base

    lat = _latitude(ds)
    if lat is None:
        return

    def series(name: str) -> np.ndarray:
        da = ds[name]
        return np.asarray(da.isel({d: 0 for d in da.dims if d != schema.DAY_DIM}).values,
                          dtype=float)

    try:
        days = pd.DatetimeIndex(ds[schema.DAY_DIM].values)
    except (TypeError, ValueError):
        return
    ra = extraterrestrial_mj(lat, days.day_of_year.to_numpy())
    base, ratios = srad_time_base(series("srad"), series("dayl"), ra)
    if base == "24h":
        warnings.warn(
            f"srad looks like a 24-hour mean flux, not the daylight mean the cube expects: "
            f"its clear days reach {ratios['p95_daylight']:.2f} Ra as a daylight mean but "
            f"{ratios['p95_24h']:.2f} Ra as a 24-hour mean (clear sky is about 0.75 Ra, "
            "FAO-56 eq. 37). Convert it: ds['srad'] = ds['srad'] * 86400 / ds['dayl'] "
            "(kgvsf ingest does it for a station file; --srad-mean says which it is)",
            CubeValidationWarning,
            stacklevel=3,
        )


def _check_driver_values(name: str, v: np.ndarray, p: _Problems) -> None:
    lo, hi = schema.DRIVER_RANGES[name]
    unit = schema.DRIVER_UNITS[name]
    st = _nan_stats(v)
    if st is None:
        p.add(name, "all sampled values are NaN or infinite; fill the driver (no gaps "
                    "allowed)")
        return
    vmin, vmax, vmean = st
    n_nan = int(np.isnan(v).sum())
    if n_nan:
        p.add(
            name,
            f"{n_nan} of {v.size} sampled values are NaN; drivers must be complete: "
            f"fill gaps, e.g. ds['{name}'] = ds['{name}'].interpolate_na('day')",
        )
    n_inf = int(np.isinf(v).sum())
    if n_inf:
        p.add(
            name,
            f"{n_inf} of {v.size} sampled values are infinite; replace them, e.g. "
            f"ds['{name}'] = ds['{name}'].where(np.isfinite(ds['{name}'])).interpolate_na('day')",
        )
    if name in _TEMPS and 150 < vmean < 400 and vmax < 400:  # 1e30 is not Kelvin
        p.add(name, f"mean {vmean:.1f} looks like Kelvin; subtract 273.15 to get {unit}")
        return
    if name == "prcp" and 0 < vmax < 0.5:
        p.add(
            name,
            f"max {vmax:.3g} on the sampled days looks like metres; multiply by 1000 "
            f"to get {unit} (or by 86400 if it is a rate in kg m-2 s-1)",
        )
        return
    if name == "srad" and vmax > hi:
        p.add(
            name,
            f"max {vmax:.4g} looks like J/m2 per day (a daily total, e.g. ERA5 ssrd) "
            "or kJ/m2; Daymet srad is the daylight-mean flux in W/m2: divide the "
            "daily total in J/m2 by dayl (s)",
        )
        return
    if name == "vp" and 0 < vmax < 10:
        p.add(name, f"max {vmax:.3g} looks like kPa; multiply by 1000 to get {unit}")
        return
    if name == "dayl" and 0 < vmax <= 24:
        p.add(name, f"max {vmax:.3g} looks like hours; multiply by 3600 to get {unit}")
        return
    span = hi - lo
    if vmin < lo - 1e-3 * span or vmax > hi + 1e-3 * span:
        p.add(
            name,
            f"sampled values {vmin:.4g}..{vmax:.4g} are outside the plausible range "
            f"{lo:g}..{hi:g} {unit}; check the units",
        )


def driver_gaps(ds: xr.Dataset) -> list[str]:
    """Every driver's missing (NaN) or infinite values, over all days (one line per driver).

    :func:`validate_dataset` only samples the drivers; this reads them whole (one dask pass
    per driver), so ``kgvsf info`` finds every gap a forecast would later refuse.
    """
    import dask

    lazy = {}
    for name in schema.DRIVERS:
        if name in ds.data_vars and schema.DAY_DIM in ds[name].dims:
            da = ds[name]
            bad = ~np.isfinite(da)
            other = [d for d in da.dims if d != schema.DAY_DIM]
            lazy[name] = (bad.any(other) if other else bad, np.isinf(da).any())
    if not lazy:
        return []
    (computed,) = dask.compute(lazy)
    lines = []
    days = ds[schema.DAY_DIM].values
    for name, (per_day, has_inf) in computed.items():
        flags = np.asarray(per_day.values if hasattr(per_day, "values") else per_day, bool)
        if not flags.any():
            continue
        dates = days[flags]
        shown = ", ".join(str(np.datetime_as_string(d, unit="D")) for d in dates[:5])
        more = f" and {len(dates) - 5} more" if len(dates) > 5 else ""
        kind = "missing (NaN) or infinite" if bool(has_inf) else "missing (NaN)"
        lines.append(f"driver {name!r} is {kind} on {len(dates)} day(s): {shown}{more}; "
                     "a forecast that needs those days refuses to run: fill them, e.g. "
                     f"ds['{name}'] = ds['{name}'].where(np.isfinite(ds['{name}']))"
                     ".interpolate_na('day')")
    return lines
