"""Physics clipping of scenario results: what a reasonable change can still make impossible.

Run once after all changes: ``prcp``, ``srad``, ``swe`` below 0 are set to 0; ``tmin`` above
``tmax`` is set to ``tmax``; ``vp`` is clipped to ``[0, e0(tmax)]``. Only variables the scenario
could affect and only values it changed are touched.

The vapour-pressure bound is the one that is physically impossible to exceed, not a typical
value: the air's vapour pressure cannot exceed the saturation vapour pressure at its
temperature, ``e0(T)`` (FAO-56 eq. 11), at any moment, and the temperature never exceeds
``tmax``, so the day's mean vapour pressure cannot exceed ``e0(tmax)``. The saturation
vapour pressure of the day, ``e_s = (e0(tmax) + e0(tmin)) / 2`` (FAO-56 eq. 12), and
``e0(tmin)`` (the dew point at the minimum temperature, eq. 48) are estimates, often exceeded
by real daily means: a humid summer record has vp above ``e0(tmin)`` on most days, so clipping
to either would rewrite real observations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

_NON_NEGATIVE_CLIPPED = ("prcp", "srad", "swe")


def saturation_vapour_pressure(t: Any) -> Any:
    """Saturation vapour pressure in Pa over water at temperature ``t`` in degC (FAO-56 eq. 11).

    Works on numbers, numpy arrays and (lazily) on xarray/dask arrays; keeps float32.

    Examples
    --------
    >>> round(float(saturation_vapour_pressure(20.0)), 1)
    2338.3
    """
    return 610.8 * np.exp(17.27 * t / (t + 237.3))


def restore(new: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    """Give ``new`` the dims order, dtype, name and attributes of ``like``."""
    new = new.transpose(*like.dims)
    if new.dtype != like.dtype:
        new = new.astype(like.dtype)
    new.attrs = dict(like.attrs)
    new.name = like.name
    return new


def _count(cond: xr.DataArray) -> int | None:
    """Number of True values for numpy-backed data; None for dask (not computed)."""
    return None if cond.chunks is not None else int(cond.sum())


def clip(
    out: dict[str, xr.DataArray], orig: dict[str, xr.DataArray], changed: set[str]
) -> list[str]:
    """Clip impossible results in place of ``out``; return the numpy-side report lines.

    ``orig`` holds the input drivers, ``changed`` the names of the drivers the scenario changed.
    """
    report: list[str] = []

    def fix(name: str, cond: xr.DataArray, repl: Any, what: str) -> None:
        n = _count(cond)
        if n is not None and n == 0:
            return
        out[name] = restore(xr.where(cond, repl, out[name]), orig[name])
        if n:
            report.append(f"{name}: {n} value(s) {what}")

    def moved(name: str) -> xr.DataArray:
        return out[name] != orig[name]

    for v in _NON_NEGATIVE_CLIPPED:
        if v in changed and v in out:
            fix(v, (out[v] < 0) & moved(v), 0.0, "below 0 set to 0")
    if ({"tmin", "tmax"} & changed) and {"tmin", "tmax"} <= set(out):
        touched = moved("tmin") | moved("tmax")
        fix("tmin", (out["tmin"] > out["tmax"]) & touched, out["tmax"], "above tmax set to tmax")
    if ({"vp", "tmin", "tmax"} & changed) and "vp" in out:
        touched = moved("vp")
        if "tmax" in out:
            touched = touched | moved("tmax")
        fix("vp", (out["vp"] < 0) & touched, 0.0, "below 0 set to 0")
        if "tmax" in out:
            e_max = saturation_vapour_pressure(out["tmax"]).astype(out["vp"].dtype)
            fix("vp", (out["vp"] > e_max) & touched, e_max,
                "above e0(tmax), the saturation at the day's maximum, set to e0(tmax)")
    return report
