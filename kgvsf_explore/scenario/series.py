"""Reading a user's own driver series (pandas, xarray or CSV) into one clean series per driver.

The result of :func:`read_series` is what :meth:`Scenario.from_series
<kgvsf_explore.scenario.Scenario.from_series>` turns into
:class:`~kgvsf_explore.scenario.SeriesReplacement` changes: per driver a float
:class:`pandas.Series` on a sorted, duplicate-free daily :class:`pandas.DatetimeIndex` (dates at
midnight, time-zones dropped keeping the local date), without missing values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..errors import ScenarioError
from .vocabulary import CHANGEABLE_DRIVERS, DAYL_REASON

#: Column or dimension names read as the date, in order of preference.
DATE_NAMES: tuple[str, ...] = ("date", "day", "time")

_WHERE = "Scenario.from_series"


def read_series(data: Any, variables: str | Iterable[str] | None = None) -> dict[str, pd.Series]:
    """One clean series per driver from ``data``, in ``variables`` order (or the data's).

    Parameters
    ----------
    data
        A :class:`pandas.DataFrame` (date index or a ``date``/``day``/``time`` column, one column
        per driver), a named :class:`pandas.Series`, an :class:`xarray.Dataset` or named
        :class:`xarray.DataArray` on a ``day`` (or ``time``) dimension, or the path of a CSV file
        with a ``date``/``day``/``time`` column and driver columns.
    variables
        The drivers to take; None takes every driver column (``dayl`` skipped, all-missing
        columns skipped) and refuses other columns.

    Raises
    ------
    ScenarioError
        On unknown driver names, unreadable dates, duplicated dates, non-numeric values, or
        when nothing is left.
    """
    wanted = _as_variables(variables)
    frame = _as_frame(data, wanted)
    if wanted is None:
        unknown = [c for c in frame.columns if c not in schema.DRIVERS]
        if unknown:
            raise ScenarioError(
                f"{_WHERE}: unknown driver column(s) {unknown}; drivers are named "
                f"{', '.join(CHANGEABLE_DRIVERS)} (in schema units, see schema.DRIVER_UNITS). "
                f"Rename the columns, or pick some with variables=[...]."
            )
        names = [c for c in frame.columns if c != "dayl"]
    else:
        missing = [v for v in wanted if v not in frame.columns]
        if missing:
            raise ScenarioError(
                f"{_WHERE}: the data has no column(s) {missing} (it has "
                f"{', '.join(map(str, frame.columns)) or 'none'})."
            )
        names = wanted
    index = _as_index(frame.index)
    out: dict[str, pd.Series] = {}
    for name in names:
        try:
            values = pd.to_numeric(frame[name], errors="raise").astype(float)
        except (ValueError, TypeError) as err:
            raise ScenarioError(
                f"{_WHERE}: column {name!r} holds non-numeric values ({err}); leave missing days "
                f"empty (NaN) and write numbers in {schema.DRIVER_UNITS[name]}."
            ) from None
        series = pd.Series(values.to_numpy(), index=index, name=name).dropna().sort_index()
        if series.empty:
            if wanted is None:
                continue  # an empty column of a station file: nothing to replace
            raise ScenarioError(f"{_WHERE}: column {name!r} holds no value (all missing).")
        out[name] = series
    if not out:
        raise ScenarioError(
            f"{_WHERE}: the data holds no driver value; expected columns named "
            f"{', '.join(CHANGEABLE_DRIVERS)} with numbers."
        )
    return out


def _as_variables(variables: str | Iterable[str] | None) -> list[str] | None:
    if variables is None:
        return None
    names = [variables] if isinstance(variables, str) else list(variables)
    if not names:
        raise ScenarioError(f"{_WHERE}: variables is empty; give driver names or None for all.")
    for v in names:
        if v == "dayl":
            raise ScenarioError(f"{_WHERE}: {DAYL_REASON}; leave it out of variables.")
        if v not in CHANGEABLE_DRIVERS:
            raise ScenarioError(
                f"{_WHERE}: unknown driver {v!r}; use one of {', '.join(CHANGEABLE_DRIVERS)}."
            )
    if len(set(names)) != len(names):
        raise ScenarioError(f"{_WHERE}: variables names a driver twice: {names}.")
    return names


def _as_frame(data: Any, wanted: list[str] | None) -> pd.DataFrame:
    if isinstance(data, (str, os.PathLike)):
        return _read_csv(Path(data))
    if isinstance(data, pd.DataFrame):
        return _date_indexed(data, "the DataFrame")
    if isinstance(data, (pd.Series, xr.DataArray)):
        name = data.name
        if name is None and wanted is not None and len(wanted) == 1:
            name = wanted[0]
        if name is None:
            raise ScenarioError(
                f"{_WHERE}: the {type(data).__name__} has no name to tell which driver it is; "
                f"pass variables='prcp' (say) or name it first."
            )
        if isinstance(data, xr.DataArray):
            return _from_xarray(data.to_dataset(name=str(name)))
        return data.rename(str(name)).to_frame()
    if isinstance(data, xr.Dataset):
        return _from_xarray(data if wanted is None else data[[v for v in wanted if v in data]])
    raise ScenarioError(
        f"{_WHERE}: expected a pandas DataFrame or Series indexed by date, an xarray Dataset or "
        f"DataArray with a 'day' dimension, or the path of a CSV file; got {type(data).__name__}."
    )


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise ScenarioError(f"{_WHERE}: cannot read the CSV file {path}: {err}") from None
    return _date_indexed(frame, f"the CSV file {path.name}")


def _date_indexed(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """``frame`` indexed by its date: its index if that holds dates, else a date column."""
    if isinstance(frame.index, (pd.DatetimeIndex, pd.PeriodIndex)):
        return frame
    lower = {str(c).strip().lower(): c for c in frame.columns}
    for name in DATE_NAMES:
        if name in lower:
            column = lower[name]
            return frame.set_index(column).rename_axis(name)
    if not isinstance(frame.index, pd.RangeIndex):
        return frame  # a date index still as text: _as_index reads it
    raise ScenarioError(
        f"{_WHERE}: {what} has no date: give a date index or a column named "
        f"{' / '.join(DATE_NAMES)} (it has columns {', '.join(map(str, frame.columns))})."
    )


def _from_xarray(ds: xr.Dataset) -> pd.DataFrame:
    dim = next((d for d in (schema.DAY_DIM, schema.TIME_DIM) if d in ds.dims), None)
    if dim is None:
        raise ScenarioError(
            f"{_WHERE}: the xarray data has no '{schema.DAY_DIM}' or '{schema.TIME_DIM}' "
            f"dimension (it has {tuple(ds.dims)})."
        )
    columns = {}
    for name, da in ds.data_vars.items():
        if dim not in da.dims:
            continue
        extra = [d for d in da.dims if d != dim and da.sizes[d] != 1]
        if extra:
            raise ScenarioError(
                f"{_WHERE}: {name!r} is on {da.dims}; a series must be 1-D over '{dim}'. Select "
                f"one point first, e.g. da.sel(x=..., y=..., method='nearest')."
            )
        columns[str(name)] = da.squeeze([d for d in da.dims if d != dim], drop=True).values
    index = ds.indexes[dim] if dim in ds.indexes else pd.RangeIndex(ds.sizes[dim])
    return pd.DataFrame(columns, index=index)


def _as_index(index: pd.Index) -> pd.DatetimeIndex:
    if isinstance(index, pd.PeriodIndex):
        index = index.to_timestamp()
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(index))
    except (ValueError, TypeError, OverflowError) as err:
        raise ScenarioError(
            f"{_WHERE}: cannot read the dates ({err}); write them as ISO dates such as "
            f"'2022-07-01'."
        ) from None
    if idx.hasnans:
        raise ScenarioError(f"{_WHERE}: a date is missing; every row needs a date.")
    if idx.tz is not None:
        idx = idx.tz_localize(None)  # keep the local calendar date of a station's record
    idx = idx.normalize()
    dup = idx[idx.duplicated()]
    if len(dup):
        shown = ", ".join(str(d.date()) for d in dup.unique()[:5])
        raise ScenarioError(
            f"{_WHERE}: duplicated date(s) {shown}; keep one row per day (e.g. average them "
            f"first with df.groupby(level=0).mean())."
        )
    return idx



def redate(series: pd.Series, year: int) -> pd.Series:
    """Move a daily series to ``year`` by month and day (its first year becomes ``year``).

    A record of several years keeps its years apart (each shifted by the same number of
    years); 29 February is dropped when its new year is not a leap year (that day keeps the
    data's value), and a leap target year's 29 February stays uncovered when the record has
    none.

    Examples
    --------
    >>> s = pd.Series([1.0, 2.0, 3.0], index=pd.to_datetime(["2020-02-28", "2020-02-29",
    ...                                                      "2020-03-01"]))
    >>> redate(s, 2022)
    2022-02-28    1.0
    2022-03-01    3.0
    dtype: float64
    """
    if not isinstance(year, (int, np.integer)) or not 1 <= int(year) <= 9999:
        raise ScenarioError(f"{_WHERE}: year must be a calendar year such as 2022, got {year!r}")
    if series.empty:
        return series
    idx = pd.DatetimeIndex(series.index)
    years = idx.year + (int(year) - int(idx.year.min()))
    leap = (years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))
    keep = ~((idx.month == 2) & (idx.day == 29) & ~leap)
    new = pd.to_datetime({"year": years[keep], "month": idx.month[keep], "day": idx.day[keep]})
    return pd.Series(series.to_numpy()[keep], index=pd.DatetimeIndex(new.to_numpy()),
                     name=series.name)
