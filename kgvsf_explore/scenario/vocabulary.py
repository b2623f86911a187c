"""The scenario vocabulary as data: format version, JSON keys and the operations of each kind."""

from __future__ import annotations

from .. import schema

#: Newest version of the JSON form; readers accept this and every older one. A scenario is
#: written with the lowest version that can hold it (see :data:`OP_FORMAT_VERSION`), so a
#: scenario of offsets, scales and sets stays a version-1 file.
SCENARIO_FORMAT_VERSION = 2

#: Key of the format version in the JSON form.
VERSION_KEY = "kgvsf_scenario_version"

#: Attribute of :meth:`Scenario.apply` results that records the applied scenario as JSON.
RESULT_ATTR = "kgvsf_scenario"

#: The operations a :class:`~kgvsf_explore.scenario.Change` can do (arithmetic on a driver).
OPS: tuple[str, ...] = ("offset", "scale", "set")

#: The operations that replace a driver by other weather: another year's days of the same data
#: (:class:`~kgvsf_explore.scenario.YearReplacement`) or a user's series
#: (:class:`~kgvsf_explore.scenario.SeriesReplacement`).
REPLACEMENT_OPS: tuple[str, ...] = ("from_year", "replace")

#: The first JSON format version that knows each operation.
OP_FORMAT_VERSION: dict[str, int] = {
    "offset": 1, "scale": 1, "set": 1, "from_year": 2, "replace": 2,
}

#: Drivers a scenario may change: every driver but the astronomical day length.
CHANGEABLE_DRIVERS: tuple[str, ...] = tuple(v for v in schema.DRIVERS if v != "dayl")

#: Why ``dayl`` is never changed, shared by every kind of change.
DAYL_REASON = (
    "'dayl' (day length) is astronomical - fixed by latitude and date - and cannot be changed"
)
