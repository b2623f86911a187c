"""Applying a scenario's changes, in order, to a Dataset of drivers (or a Cube), then clipping.

Each kind of change becomes new values of one driver: arithmetic for
:class:`~kgvsf_explore.scenario.Change`, a lazy re-indexing of the day axis for
:class:`~kgvsf_explore.scenario.YearReplacement`, a broadcast daily series for
:class:`~kgvsf_explore.scenario.SeriesReplacement`. The region and the window then decide which
values change. Every step is an xarray operation, so dask-backed drivers stay lazy.

Runs of arithmetic changes of one driver are applied together by
:mod:`~kgvsf_explore.scenario._fused`, in place on the slices they touch, so applying ``n``
changes takes time linear in ``n`` (and one dask layer per run, not several per change).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..errors import ScenarioError
from . import _fused
from .change import Change
from .clip import clip, restore
from .regions import data_crs_getter, region_mask
from .replace import SeriesReplacement, YearReplacement
from .vocabulary import RESULT_ATTR

if TYPE_CHECKING:  # pragma: no cover
    from .scenario import Scenario


def apply_scenario(scenario: Scenario, obj: Any) -> tuple[xr.Dataset, list[str]]:
    """The drivers of ``obj`` with ``scenario`` applied, and the clipping report lines.

    See :meth:`Scenario.apply <kgvsf_explore.scenario.Scenario.apply>` for the contract.
    """
    ds = drivers_of(obj)
    names = [v for v in schema.DRIVERS if v in ds.data_vars]
    if not names:
        raise ScenarioError(
            f"Scenario.apply: the data holds no driver variable; expected some of "
            f"{', '.join(schema.DRIVERS)} with a '{schema.DAY_DIM}' dimension."
        )
    for v in names:
        if schema.DAY_DIM not in ds[v].dims:
            raise ScenarioError(
                f"Scenario.apply: driver {v!r} has dims {ds[v].dims} without "
                f"'{schema.DAY_DIM}'; drivers must be daily, on (day,), (day, y, x) or "
                f"(day, y_met, x_met)."
            )
    for i, c in enumerate(scenario.changes):
        if c.variable not in names:
            raise ScenarioError(
                f"Scenario.apply: change {i + 1} ({c}) targets {c.variable!r}, which the data "
                f"does not hold (it has {', '.join(names)}); drop that change or add the "
                f"driver."
            )
    orig = {v: ds[v] for v in names}
    out = dict(orig)
    get_crs = data_crs_getter(obj, ds)
    pending: dict[str, list[_fused.Step]] = {v: [] for v in names}
    masks: dict[tuple, Any] = {}  # one mask per distinct region of a driver's grid

    def flush(v: str) -> None:
        out[v] = _fused.apply_steps(out[v], pending[v])
        pending[v] = []

    for i, c in enumerate(scenario.changes):  # every check runs in order, so errors do too
        da = out[c.variable]
        if isinstance(c, Change) and _fused.can_fuse(da):
            pending[c.variable].append(_step(c, da, i, get_crs, masks))
            continue
        flush(c.variable)
        da = out[c.variable]
        new, day_mask = _APPLY[type(c)](c, da, i)
        space_mask = region_mask(c, da, i, get_crs)
        for mask in (space_mask, day_mask):
            if mask is not None:
                new = xr.where(mask, new, da)
        out[c.variable] = restore(new, da)
    for v in names:
        flush(v)
    report = clip(out, orig, set(scenario.variables))
    result = xr.Dataset({v: out[v] for v in names})
    if schema.GRID_MAPPING in ds.variables and schema.GRID_MAPPING not in result.variables:
        result = result.assign_coords({schema.GRID_MAPPING: ds[schema.GRID_MAPPING].variable})
    result.attrs = {**ds.attrs, RESULT_ATTR: json.dumps(scenario.to_dict())}
    return result, report


def _step(c: Change, da: xr.DataArray, i: int, get_crs: Any, masks: dict) -> _fused.Step:
    """The fused form of arithmetic change ``c`` (number ``i``), checked as the per-change
    path checks it."""
    sel = None
    if c.start is not None or c.end is not None:
        sel = _window_selection(c, _day_index(c, da, i, "has a date window"), i)
    region = c.region
    key = (da.dims, region.wkb if hasattr(region, "wkb") else repr(region), c.region_crs)
    if c.region is None:
        cells = None
    elif key in masks:
        cells = masks[key]
    else:
        cells = masks[key] = _fused.cell_mask(region_mask(c, da, i, get_crs), da)
    return _fused.Step(c.op, c.value, _fused.day_positions(sel, da.sizes[schema.DAY_DIM]),
                       cells)


def drivers_of(obj: Any) -> xr.Dataset:
    """The drivers Dataset of ``obj``: itself, or its ``.drivers`` (a Cube's, e.g.)."""
    if isinstance(obj, xr.Dataset):
        return obj
    drivers = getattr(obj, "drivers", None)
    if callable(drivers) and not isinstance(drivers, xr.Dataset):
        drivers = drivers()
    if not isinstance(drivers, xr.Dataset):
        hint = (
            " (for one DataArray use da.to_dataset(name='prcp'))"
            if isinstance(obj, xr.DataArray)
            else ""
        )
        raise ScenarioError(
            f"Scenario.apply: expected an xarray.Dataset of drivers or an object with a "
            f".drivers Dataset such as a Cube, got {type(obj).__name__}{hint}."
        )
    return drivers


# ----------------------------------------------------------------------------------------------
# Days
# ----------------------------------------------------------------------------------------------


def _day_index(c: Any, da: xr.DataArray, i: int, why: str) -> pd.DatetimeIndex:
    idx = da.indexes.get(schema.DAY_DIM)
    if not isinstance(idx, pd.DatetimeIndex):
        raise ScenarioError(
            f"Scenario.apply: change {i + 1} ({c}) {why}, but {c.variable!r} has no "
            f"datetime64 '{schema.DAY_DIM}' coordinate to compare it with."
        )
    return idx


def _span(idx: pd.DatetimeIndex) -> str:
    return f"{idx.min().date()}..{idx.max().date()}" if len(idx) else "no day at all"


def _window_selection(c: Any, idx: pd.DatetimeIndex, i: int) -> np.ndarray:
    """True on the days of ``idx`` inside the window of ``c`` (every day for an open one)."""
    sel = np.ones(len(idx), dtype=bool)
    if c.start is not None:
        sel &= idx >= pd.Timestamp(c.start)
    if c.end is not None:
        sel &= idx < pd.Timestamp(c.end) + pd.Timedelta(days=1)
    if not sel.any():
        raise ScenarioError(
            f"Scenario.apply: change {i + 1} ({c}) has the window {c.window_text()}, which matches "
            f"no day of the data ({_span(idx)}); pick dates inside the data's range."
        )
    return sel


def _day_mask(idx: pd.DatetimeIndex, sel: np.ndarray) -> xr.DataArray:
    return xr.DataArray(sel, dims=(schema.DAY_DIM,), coords={schema.DAY_DIM: idx})


# ----------------------------------------------------------------------------------------------
# One change of each kind: (new values, day mask or None)
# ----------------------------------------------------------------------------------------------


def _arithmetic(c: Change, da: xr.DataArray, i: int) -> tuple[xr.DataArray, Any]:
    day_mask = None
    if c.start is not None or c.end is not None:
        idx = _day_index(c, da, i, "has a date window")
        day_mask = _day_mask(idx, _window_selection(c, idx, i))
    if c.op == "offset":
        new = da + c.value
    elif c.op == "scale":
        new = da * c.value
    else:
        new = xr.where(da.isnull(), da, c.value)
    return new, day_mask


def _from_year(c: YearReplacement, da: xr.DataArray, i: int) -> tuple[xr.DataArray, None]:
    idx = _day_index(c, da, i, "takes the weather of another year")
    sel = _window_selection(c, idx, i)
    dates = idx.normalize()
    if not dates.is_unique:
        raise ScenarioError(
            f"Scenario.apply: change {i + 1} ({c}) needs one value per day, but the data's "
            f"'{schema.DAY_DIM}' coordinate repeats a date."
        )
    targets = np.flatnonzero(sel)
    source = c.source_days(dates[targets])
    pos = dates.get_indexer(source)
    missing = source[pos < 0].unique()
    if len(missing):
        raise ScenarioError(
            f"Scenario.apply: change {i + 1} ({c}) takes each day from the same calendar day of "
            f"{c.year}, but the data ({_span(idx)}) lacks {len(missing)} of the days of {c.year} "
            f"needed ({_span(missing)}); narrow the window or use data that covers {c.year}."
        )
    indexer = np.arange(len(idx))
    indexer[targets] = pos
    if np.array_equal(indexer, np.arange(len(idx))):
        return da, None
    new = da.isel({schema.DAY_DIM: indexer})
    along_day = {k: v for k, v in da.coords.items() if schema.DAY_DIM in v.dims}
    return new.assign_coords(along_day), None


def _from_series(c: SeriesReplacement, da: xr.DataArray, i: int) -> tuple[xr.DataArray, None]:
    idx = _day_index(c, da, i, "replaces days by a series")
    sel = _window_selection(c, idx, i)
    try:
        pos = pd.DatetimeIndex(c.days).get_indexer(idx.normalize())
    except (OverflowError, pd.errors.OutOfBoundsDatetime):  # e.g. a series from year 1000
        pos = np.full(len(idx), -1)
    has = (pos >= 0) & sel
    if not has.any():
        window = f" within the window {c.window_text()}" if c.window_text() else ""
        raise ScenarioError(
            f"Scenario.apply: change {i + 1} ({c}) covers none of the data's days{window}: the "
            f"series runs {c.days[0]}..{c.days[-1]}, the data {_span(idx)}; check the series' "
            f"dates (and years)."
        )
    values = np.where(has, np.asarray(c.values)[pos], np.nan)
    use = _day_mask(idx, has) & da.notnull()
    return xr.where(use, _day_mask(idx, values), da), None


_APPLY: dict[type, Any] = {
    Change: _arithmetic,
    YearReplacement: _from_year,
    SeriesReplacement: _from_series,
}
