"""Replacing a driver by other weather: another year of the same data, or a user's own series.

:class:`YearReplacement` takes each day of its window from the same calendar day of another
year of the data the scenario is applied to. :class:`SeriesReplacement` holds a daily series
(for example a weather station's record) inline and puts it in place of the driver on the days
it covers, the same value on every grid cell. Both carry a window and a region like
:class:`~kgvsf_explore.scenario.Change`, and are applied, in order, by
:meth:`Scenario.apply <kgvsf_explore.scenario.Scenario.apply>`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import ScenarioError
from .change import Scoped, fields_from_dict
from .regions import Region

_YEAR_KEYS = ("variable", "op", "year", "start", "end", "region")
_SERIES_KEYS = ("variable", "op", "days", "values", "start", "end", "region")

#: Series whose values are all this small but not all zero are refused as probably in the wrong
#: units: precipitation in metres (a 1 mm day is 0.001 m) and vapour pressure in kPa.
_TOO_SMALL: dict[str, tuple[float, str]] = {
    "prcp": (0.1, "in metres (m/day)? multiply by 1000 for mm/day"),
    "vp": (10.0, "in kPa? multiply by 1000 for Pa"),
}


@dataclass(frozen=True)
class YearReplacement(Scoped):
    """Replace a driver, inside the window, by the same calendar day of another ``year``.

    Each day ``d`` of the window (and region) takes the value the driver has on the day of
    ``year`` with the month and day of ``d``, in the data the scenario is applied to, after the
    changes before this one. A 29 February with no counterpart (``year`` is not a leap year)
    takes 28 February of ``year``. The data must hold every source day needed, else
    :meth:`Scenario.apply <kgvsf_explore.scenario.Scenario.apply>` raises a
    :class:`~kgvsf_explore.errors.ScenarioError` naming the data's range and ``year``. Values
    are copied as they are, missing values (NaN) included.

    Parameters
    ----------
    variable
        A name of :data:`~kgvsf_explore.scenario.CHANGEABLE_DRIVERS` (never ``dayl``).
    year
        The year whose weather to use, e.g. ``2021``.
    start, end, region, region_crs
        As for :class:`~kgvsf_explore.scenario.Change`. Without a window every day of the data
        is replaced (each year becomes ``year``).

    Examples
    --------
    >>> YearReplacement("prcp", 2021, "2022-07-01", "2022-07-31")
    YearReplacement(variable='prcp', year=2021, start='2022-07-01', end='2022-07-31', region=None, region_crs=None)
    >>> str(YearReplacement("tmax", 2012, end="2022-08-31"))
    'tmax from year 2012 [..2022-08-31]'
    """  # noqa: E501

    variable: str
    year: int
    start: str | None = None
    end: str | None = None
    region: Region | None = None
    region_crs: str | None = None

    _DAYL_HINT = "leave it out of the replaced variables"

    #: The JSON ``op`` of this kind.
    op = "from_year"

    def __post_init__(self) -> None:
        self._check_variable()
        year = self.year
        if isinstance(year, float) and year.is_integer():
            year = int(year)
        if isinstance(year, bool) or not isinstance(year, numbers.Integral):
            raise ScenarioError(
                f"YearReplacement.year: expected a whole year such as 2021, got {year!r}."
            )
        if not 1 <= int(year) <= 9999:
            raise ScenarioError(
                f"YearReplacement.year: {year} is not a year between 1 and 9999."
            )
        object.__setattr__(self, "year", int(year))
        self._normalise_scope()

    def __str__(self) -> str:
        return f"{self.variable} from year {self.year}{self.scope_text()}"

    @property
    def is_identity(self) -> bool:
        """True when the whole window lies in ``year`` itself, so every day is its own source."""
        return (
            self.start is not None
            and self.end is not None
            and int(self.start[:4]) == self.year == int(self.end[:4])
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (format version 2, see ``docs/scenarios.md``)."""
        return {"variable": self.variable, "op": self.op, "year": self.year,
                **self.scope_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "change") -> YearReplacement:
        """Inverse of :meth:`to_dict`; rejects unknown keys."""
        kwargs = fields_from_dict(data, where, _YEAR_KEYS, ("variable", "op", "year"))
        try:
            return cls(**kwargs)
        except ScenarioError as err:
            raise ScenarioError(f"{where}: {err}") from None

    def source_days(self, days: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """The day of ``year`` each of ``days`` takes its value from (29 Feb -> 28 Feb).

        Examples
        --------
        >>> r = YearReplacement("prcp", 2021)
        >>> [str(d.date()) for d in r.source_days(pd.DatetimeIndex(["2024-02-29", "2024-03-01"]))]
        ['2021-02-28', '2021-03-01']
        """
        month, day = np.asarray(days.month), np.asarray(days.day)
        if not _is_leap(self.year):
            day = np.where((month == 2) & (day == 29), 28, day)
        year = np.full(len(days), self.year)
        return pd.DatetimeIndex(pd.to_datetime({"year": year, "month": month, "day": day}))


@dataclass(frozen=True)
class SeriesReplacement(Scoped):
    """Replace a driver by a user's daily series on the days the series covers.

    The series is stored inline (ISO dates and values), so the scenario stays self-contained in
    its JSON file. On every day of the data that the series covers (and that lies in the window)
    the driver takes the series' value on every grid cell of the region (everywhere without a
    region); other days keep the data's values, and so do missing values of the data (as with
    ``set``). Build it with :meth:`Scenario.from_series
    <kgvsf_explore.scenario.Scenario.from_series>`, which reads DataFrames, xarray objects and
    CSV files and drops missing values (a NaN in the series keeps the data's value).

    Parameters
    ----------
    variable
        A name of :data:`~kgvsf_explore.scenario.CHANGEABLE_DRIVERS` (never ``dayl``).
    days
        The dates of the series, strictly increasing (anything :func:`pandas.to_datetime`
        reads), stored as ISO date strings.
    values
        One finite value per day in the driver's schema units, within
        :data:`~kgvsf_explore.schema.DRIVER_RANGES`. Series that look like wrong units
        (Kelvin, precipitation in metres, vapour pressure in kPa) are refused.
    start, end, region, region_crs
        As for :class:`~kgvsf_explore.scenario.Change`.

    Examples
    --------
    >>> s = SeriesReplacement("prcp", ("2022-07-01", "2022-07-02"), (0.0, 12.5))
    >>> s
    SeriesReplacement(variable='prcp', series=2022-07-01..2022-07-02 (2 days), start=None, end=None, region=None, region_crs=None)
    >>> str(s)
    'prcp from series 2022-07-01..2022-07-02 (2 days)'
    """  # noqa: E501

    variable: str
    days: tuple[str, ...]
    values: tuple[float, ...]
    start: str | None = None
    end: str | None = None
    region: Region | None = None
    region_crs: str | None = None

    _DAYL_HINT = "leave it out of the series"

    #: The JSON ``op`` of this kind.
    op = "replace"

    def __post_init__(self) -> None:
        self._check_variable()
        days = _as_days(self.days)
        values = _as_values(self.values, self.variable, days)
        object.__setattr__(self, "days", tuple(days.strftime("%Y-%m-%d")))
        object.__setattr__(self, "values", tuple(float(v) + 0.0 for v in values))
        self._normalise_scope()

    def __repr__(self) -> str:
        return (
            f"SeriesReplacement(variable={self.variable!r}, series={self.series_text()}, "
            f"start={self.start!r}, end={self.end!r}, region={self.region!r}, "
            f"region_crs={self.region_crs!r})"
        )

    def __str__(self) -> str:
        return f"{self.variable} from series {self.series_text()}{self.scope_text()}"

    def series_text(self) -> str:
        """``"first..last (n days)"``: what the series covers, without its values."""
        n = len(self.days)
        return f"{self.days[0]}..{self.days[-1]} ({n} day{'s' if n != 1 else ''})"

    @property
    def is_identity(self) -> bool:
        """Always False: a series is assumed to differ from the data."""
        return False

    def to_series(self) -> pd.Series:
        """The series as a :class:`pandas.Series` indexed by date, named after the variable."""
        return pd.Series(
            self.values, index=pd.DatetimeIndex(self.days, name="day"), name=self.variable
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (format version 2, see ``docs/scenarios.md``)."""
        return {"variable": self.variable, "op": self.op, "days": list(self.days),
                "values": list(self.values), **self.scope_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "change") -> SeriesReplacement:
        """Inverse of :meth:`to_dict`; rejects unknown keys."""
        kwargs = fields_from_dict(data, where, _SERIES_KEYS, ("variable", "op", "days", "values"))
        for key in ("days", "values"):
            if not isinstance(kwargs[key], (list, tuple)):
                raise ScenarioError(f"{where}.{key}: expected a list, got {kwargs[key]!r}.")
        try:
            return cls(**kwargs)
        except ScenarioError as err:
            raise ScenarioError(f"{where}: {err}") from None


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _as_days(days: Any) -> pd.DatetimeIndex:
    if isinstance(days, (str, bytes)) or not hasattr(days, "__len__") or len(days) == 0:
        raise ScenarioError(
            f"SeriesReplacement.days: expected a non-empty sequence of dates, got {days!r}."
        )
    try:
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(list(days), format="ISO8601"))
        except ValueError:
            idx = pd.DatetimeIndex(pd.to_datetime(list(days), format="mixed"))
    except (ValueError, TypeError, OverflowError) as err:
        raise ScenarioError(
            f"SeriesReplacement.days: cannot read the dates ({err}); give ISO dates such as "
            f"'2022-07-01'."
        ) from None
    if idx.hasnans:
        raise ScenarioError("SeriesReplacement.days: a date is missing (NaT); drop that day.")
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    idx = idx.normalize()
    dup = idx[idx.duplicated()]
    if len(dup):
        raise ScenarioError(
            f"SeriesReplacement.days: duplicated date(s) "
            f"{', '.join(str(d.date()) for d in dup.unique()[:5])}; keep one value per day."
        )
    if not idx.is_monotonic_increasing:
        raise ScenarioError(
            "SeriesReplacement.days: the dates are not sorted; sort the series by date."
        )
    return idx


def _as_values(values: Any, variable: str, days: pd.DatetimeIndex) -> np.ndarray:
    label = "SeriesReplacement.values"
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ScenarioError(f"{label}: expected a sequence of numbers, got {values!r}.")
    if len(values) != len(days):
        raise ScenarioError(
            f"{label}: {len(values)} value(s) for {len(days)} day(s); give one value per day."
        )
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in values):
        bad = next(v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Real))
        raise ScenarioError(f"{label}: expected numbers, got {bad!r} in the {variable} series.")
    arr = np.asarray(values, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ScenarioError(
            f"{label}: the {variable} series has {int(bad.sum())} missing or infinite value(s) "
            f"(first on {days[bad.argmax()].date()}); leave those days out (Scenario.from_series "
            f"drops NaN, which keeps the data's value)."
        )
    check_units(arr, variable, days, label)
    return arr


def check_units(arr: np.ndarray, variable: str, days: pd.DatetimeIndex, label: str) -> None:
    """Refuse values outside :data:`~kgvsf_explore.schema.DRIVER_RANGES`, and all-tiny series
    that look like precipitation in metres or vapour pressure in kPa, with a units hint."""
    lo, hi = schema.DRIVER_RANGES[variable]
    units = schema.DRIVER_UNITS[variable]
    out = (arr < lo) | (arr > hi)
    if out.any():
        first = int(out.argmax())
        hint = "check the units"
        if arr.min() <= -999:
            hint = "is it a missing-value code such as -9999? leave those days empty (NaN)"
        elif units == "degC" and arr.max() > hi and np.median(arr) > 150:
            hint = "the values look like Kelvin: subtract 273.15 for degC"
        elif units == "degC" and arr.max() > hi:
            hint = "in degF? convert with (F - 32) / 1.8 for degC"
        elif variable == "srad" and arr.max() > hi:
            hint = (
                "srad is the daylight-mean flux in W/m2; convert a daily total in J/m2 with "
                "J / dayl"
            )
        raise ScenarioError(
            f"{label}: {int(out.sum())} value(s) of the {variable} series are outside its "
            f"plausible range [{lo}, {hi}] {units} (first {arr[first]:g} on "
            f"{days[first].date()}, min {arr.min():g}, max {arr.max():g}); {hint}."
        )
    if variable in _TOO_SMALL:
        limit, hint = _TOO_SMALL[variable]
        if arr.max() > 0 and arr.max() < limit:
            raise ScenarioError(
                f"{label}: every value of the {variable} series is below {limit:g} {units} "
                f"(max {arr.max():g}), which is implausible in {units}; is the series {hint}."
            )
