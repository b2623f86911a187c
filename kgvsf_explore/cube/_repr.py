"""Text and HTML summaries of a :class:`~kgvsf_explore.cube.cube.Cube` for notebooks."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .. import schema
from ._util import is_small

if TYPE_CHECKING:
    from .cube import Cube


def _size(nbytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"  # pragma: no cover


def _dates(index, noun: str) -> str:
    if len(index) == 0:
        return "none"
    return f"{index[0].date()} .. {index[-1].date()} ({len(index)} {noun})"


def _is_lazy(cube: Cube) -> bool:
    return any(getattr(v.data, "chunks", None) is not None for v in cube.ds.data_vars.values())


def summary_rows(cube: Cube) -> list[tuple[str, str]]:
    """``(label, value)`` rows describing ``cube``; the first row is a one-line headline.

    Only cheap facts are reported: the cloud fraction is computed only for in-memory or small
    cubes (otherwise "n/a (lazy)").
    """
    ds = cube.ds
    shape = cube.shape
    try:
        res = f"{cube.res:g} m"
    except Exception:  # a summary must never fail
        res = "? m"
    head = (
        f"{shape.get(schema.TIME_DIM, 0)} images x {shape.get(schema.Y_DIM, 0)} x "
        f"{shape.get(schema.X_DIM, 0)} px ({res}), {shape.get(schema.DAY_DIM, 0)} days"
    )
    rows: list[tuple[str, str]] = [("cube", head)]
    try:
        crs = cube.crs
        rows.append(("CRS", f"{crs.to_string()} ({crs.name})"))
    except Exception as exc:
        rows.append(("CRS", f"missing or invalid ({exc})"))
    try:
        b = cube.bounds
        rows.append(("bounds", f"({b[0]:.1f}, {b[1]:.1f}, {b[2]:.1f}, {b[3]:.1f})"))
    except Exception:
        rows.append(("bounds", "unknown"))
    rows.append(("time", _dates(cube.times, "image dates")))
    rows.append(("day", _dates(cube.days, "days")))
    has_truth = cube.bands and all(schema.truth_name(b) in ds for b in cube.bands)
    truth = " (+ cloud-free truth)" if has_truth else ""
    try:
        gone = cube.missing_bands()
    except Exception:  # a summary must never fail
        gone = ()
    observed = [b for b in cube.bands if b not in gone]
    text = " ".join(observed) + truth if observed else "none"
    if gone:
        text += f" (never observed: {' '.join(gone)})"
    rows.append(("bands", text))
    drivers = cube.driver_names
    if drivers:
        dims = ds[drivers[0]].dims
        if schema.Y_MET_DIM in dims:
            where = (
                f"native grid {ds.sizes[schema.Y_MET_DIM]} x "
                f"{ds.sizes[schema.X_MET_DIM]} (interpolated to pixels on use)"
            )
        elif schema.Y_DIM in dims:
            where = "per pixel"
        else:
            where = "one series for the whole cube"
        rows.append(("drivers", f"{' '.join(drivers)} ({where})"))
    else:
        rows.append(("drivers", "none"))
    statics = [
        s
        for s in (schema.CROP_TYPE, schema.FIELD_ID, schema.SOIL_TYPE, schema.SOIL_MOISTURE)
        if s in ds
    ]
    rows.append(("layers", " ".join(statics) if statics else "none"))
    if schema.CLOUD_MASK in ds:
        cm = ds[schema.CLOUD_MASK]
        if getattr(cm.data, "chunks", None) is None or is_small(cm):
            try:
                rows.append(("clouds", f"{100 * float(cm.mean()):.1f} % of pixels"))
            except Exception:
                rows.append(("clouds", "n/a"))
        else:
            rows.append(("clouds", "n/a (lazy)"))
    if "region_mask" in ds:
        inside = int(ds["region_mask"].sum())
        rows.append(("region", f"clipped: {inside} pixels inside the geometry"))
    if cube.fields is not None:
        rows.append(("fields", f"{len(cube.fields)} polygons"))
    rows.append(("size", f"{_size(ds.nbytes)}{' (lazy, dask)' if _is_lazy(cube) else ''}"))
    return rows


def repr_html(cube: Cube) -> str:
    """A compact HTML summary table followed by the (collapsed) xarray HTML repr."""
    rows = summary_rows(cube)
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in rows[1:]
    )
    try:
        xr_html = cube.ds._repr_html_()
    except Exception:
        xr_html = f"<pre>{html.escape(repr(cube.ds))}</pre>"
    return (
        "<div class='kgvsf-cube'>"
        f"<strong>kgvsf_explore.Cube</strong> &mdash; {html.escape(rows[0][1])}"
        f"<table style='margin-top:0.3em'>{cells}</table>"
        "<details><summary>xarray.Dataset</summary>"
        f"{xr_html}</details></div>"
    )
