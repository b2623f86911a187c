"""Physics clipping of scenario results: what a reasonable change can still make impossible.

Run once after all changes: ``prcp``, ``srad``, ``swe`` below 0 are set to 0; ``tmin`` above
``tmax`` is set to ``tmax``; ``vp`` is clipped to ``[0, e_s(tmin)]``. Only variables the scenario
could affect and only values it changed are touched.
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
        if "tmin" in out:
            touched = touched | moved("tmin")
        fix("vp", (out["vp"] < 0) & touched, 0.0, "below 0 set to 0")
        if "tmin" in out:
            es = saturation_vapour_pressure(out["tmin"]).astype(out["vp"].dtype)
            fix("vp", (out["vp"] > es) & touched, es, "above e_s(tmin) set to e_s(tmin)")
    return report
