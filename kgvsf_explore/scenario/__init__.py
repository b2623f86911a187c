"""What-if weather scenarios: an immutable description of a change to the daily weather drivers.

A :class:`Scenario` is an ordered tuple of changes to the drivers of
:data:`kgvsf_explore.schema.DRIVERS` (in their schema units), each optionally only inside an
inclusive date window and/or a spatial region. There are three kinds of change:

* :class:`Change` offsets, scales or sets one driver (``"tmax +3"``, ``"prcp x0.5"``);
* :class:`YearReplacement` gives each day the weather of the same calendar day of another year
  of the same data (``"all from year 2021"``; a 29 February without counterpart takes 28 February);
* :class:`SeriesReplacement` puts a user's own daily series (a weather station's record, read by
  :meth:`Scenario.from_series` from pandas, xarray or CSV) in place of a driver, broadcast over
  space, on the days the series covers.

:meth:`Scenario.apply` returns a new dataset of changed drivers, lazily when the input is
dask-backed; the input is never modified. Changes apply in order, each to the result of the
previous ones (a replacement reads the other year's days as they are at that point).

Physics
-------
*Impossible specifications are rejected; impossible results are clipped.*

Rejected when a change is built (:class:`~kgvsf_explore.errors.ScenarioError`): changing
``dayl`` (day length is astronomical, fixed by latitude and date), a negative scale factor, setting
a driver outside its plausible range (:data:`~kgvsf_explore.schema.DRIVER_RANGES`, so e.g. a
negative ``prcp``, ``srad``, ``vp`` or ``swe``), an offset larger than the whole plausible range
of the driver (a units mix-up such as Kelvin for degC), non-finite values, an end date before the
start date and degenerate regions; for a series also values outside the plausible range and
series that look like wrong units (Kelvin, precipitation in metres, vapour pressure in kPa).

Clipped after *all* changes were applied, because a reasonable specification can still produce an
impossible value on some days (``prcp -5`` on a day with 2 mm of rain, ``tmin +4`` on a day whose
range was 3 degC, another year's ``tmax`` below this year's ``tmin``):

* ``prcp``, ``srad``, ``swe`` below 0 are set to 0;
* where ``tmin > tmax``, ``tmin`` is set to ``tmax``;
* ``vp`` is clipped to ``[0, e0(tmax)]`` with the FAO-56 (eq. 11) saturation vapour pressure
  ``e0(T) = 610.8 * exp(17.27 T / (T + 237.3))`` Pa: the day's mean vapour pressure cannot
  exceed the saturation at its warmest (real daily means often exceed ``e0(tmin)``, so that
  is no bound; see :mod:`kgvsf_explore.scenario.clip`).

Clipping only touches values the scenario changed (a value whose inputs the scenario left as they
were is returned bit for bit, even if the input data already broke one of these rules), and only
variables the scenario could affect: ``tmin`` when ``tmin`` or ``tmax`` changed, ``vp`` when ``vp``
or ``tmax`` changed. With numpy-backed
data a :class:`~kgvsf_explore.errors.ScenarioClipWarning` names each clipped variable and how many
values were clipped; with dask-backed data clipping is silent, because counting would compute the
data. Missing values (NaN) stay missing under ``set`` and series replacement. Dtypes are kept.

JSON
----
:meth:`Scenario.to_json` writes format version :data:`SCENARIO_FORMAT_VERSION` (2) only when a
replacement needs it, version 1 otherwise; every version-1 file still reads as before. See
``docs/scenarios.md``.

Examples
--------
>>> import numpy as np, pandas as pd, xarray as xr
>>> from kgvsf_explore.scenario import Scenario
>>> s = Scenario.parse("tmax +3 from 2022-07-01 to 2022-07-31", "prcp x0", name="hot-dry")
>>> s
Scenario('hot-dry': tmax +3.0 [2022-07-01..2022-07-31]; prcp x0.0)
>>> day = pd.date_range("2022-06-30", periods=3)
>>> ds = xr.Dataset(
...     {"tmax": ("day", np.array([25, 26, 27], "float32")),
...      "prcp": ("day", np.array([1, 0, 2], "float32"))},
...     coords={"day": day},
... )
>>> out = s.apply(ds)
>>> out["tmax"].values
array([25., 29., 30.], dtype=float32)
>>> out["prcp"].values
array([0., 0., 0.], dtype=float32)
>>> Scenario.from_dict(s.to_dict()) == s
True

Another year's weather, and a station's series (NaN keeps the data's value):

>>> two_years = xr.Dataset(
...     {"tmax": ("day", np.arange(730, dtype="float32") / 100)},
...     coords={"day": pd.date_range("2021-01-01", periods=730)},
... )
>>> july = Scenario.weather_of_year(2021, "2022-07-01", "2022-07-31", variables="tmax")
>>> july
Scenario('weather of 2021': tmax from year 2021 [2022-07-01..2022-07-31])
>>> new = july.apply(two_years)
>>> np.array_equal(new["tmax"].sel(day="2022-07"), two_years["tmax"].sel(day="2021-07"))
True
>>> station = pd.Series([30.0, np.nan], index=pd.date_range("2022-07-01", periods=2), name="tmax")
>>> own = Scenario.from_series(station, name="station")
>>> own
Scenario('station': tmax from series 2022-07-01..2022-07-01 (1 day))
>>> own.apply(two_years)["tmax"].sel(day=["2022-07-01", "2022-07-02"]).values
array([30.  ,  5.47], dtype=float32)
>>> Scenario.from_json(own.to_json()) == own
True
"""

from __future__ import annotations

from .change import Change
from .clip import saturation_vapour_pressure
from .jsonform import AnyChange
from .regions import BBox, Region
from .replace import SeriesReplacement, YearReplacement
from .scenario import Scenario
from .vocabulary import (
    CHANGEABLE_DRIVERS,
    OP_FORMAT_VERSION,
    OPS,
    REPLACEMENT_OPS,
    RESULT_ATTR,
    SCENARIO_FORMAT_VERSION,
    VERSION_KEY,
)

__all__ = [
    "CHANGEABLE_DRIVERS",
    "OPS",
    "OP_FORMAT_VERSION",
    "REPLACEMENT_OPS",
    "RESULT_ATTR",
    "SCENARIO_FORMAT_VERSION",
    "VERSION_KEY",
    "AnyChange",
    "BBox",
    "Change",
    "Region",
    "Scenario",
    "SeriesReplacement",
    "YearReplacement",
    "saturation_vapour_pressure",
]
