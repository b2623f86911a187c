"""What-if weather scenarios: an immutable description of a change to the daily weather drivers.

A :class:`Scenario` is an ordered tuple of :class:`Change` objects. Each change offsets, scales or
sets one driver of :data:`kgvsf_explore.schema.DRIVERS` (in its schema units), optionally only
inside an inclusive date window and/or a spatial region. :meth:`Scenario.apply` returns a new
dataset of changed drivers, lazily when the input is dask-backed; the input is never modified.

Physics
-------
*Impossible specifications are rejected; impossible results are clipped.*

Rejected when a :class:`Change` is built (:class:`~kgvsf_explore.errors.ScenarioError`): changing
``dayl`` (day length is astronomical, fixed by latitude and date), a negative scale factor, setting
a driver outside its plausible range (:data:`~kgvsf_explore.schema.DRIVER_RANGES`, so e.g. a
negative ``prcp``, ``srad``, ``vp`` or ``swe``), an offset larger than the whole plausible range
of the driver (a units mix-up such as Kelvin for degC), non-finite values, an end date before the
start date and degenerate regions.

Clipped after *all* changes were applied, because a reasonable specification can still produce an
impossible value on some days (``prcp -5`` on a day with 2 mm of rain, ``tmin +4`` on a day whose
range was 3 degC):

* ``prcp``, ``srad``, ``swe`` below 0 are set to 0;
* where ``tmin > tmax``, ``tmin`` is set to ``tmax``;
* ``vp`` is clipped to ``[0, e_s(tmin)]`` with the FAO-56 (eq. 11) saturation vapour pressure
  ``e_s(T) = 610.8 * exp(17.27 T / (T + 237.3))`` Pa: the dew point cannot exceed the daily
  minimum temperature.

Clipping only touches values the scenario changed (a value whose inputs the scenario left as they
were is returned bit for bit, even if the input data already broke one of these rules), and only
variables the scenario could affect: ``tmin`` when ``tmin`` or ``tmax`` changed, ``vp`` when ``vp``
or ``tmin`` changed (including a ``tmin`` lowered by the ``tmin <= tmax`` rule). With numpy-backed
data a :class:`~kgvsf_explore.errors.ScenarioClipWarning` names each clipped variable and how many
values were clipped; with dask-backed data clipping is silent, because counting would compute the
data. Missing values (NaN) stay missing, also under ``set``. Dtypes are kept.

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
"""

from __future__ import annotations

import html
import json
import math
import numbers
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from . import schema
from ._atomic import atomic_write
from .errors import ScenarioClipWarning, ScenarioError

__all__ = [
    "CHANGEABLE_DRIVERS",
    "OPS",
    "SCENARIO_FORMAT_VERSION",
    "Change",
    "Scenario",
    "saturation_vapour_pressure",
]

#: Version of the JSON form written by :meth:`Scenario.to_dict`; readers accept this and older.
SCENARIO_FORMAT_VERSION = 1

#: Key of the format version in the JSON form.
VERSION_KEY = "kgvsf_scenario_version"

#: Attribute of :meth:`Scenario.apply` results that records the applied scenario as JSON.
RESULT_ATTR = "kgvsf_scenario"

#: The operations a :class:`Change` can do.
OPS: tuple[str, ...] = ("offset", "scale", "set")

#: Drivers a scenario may change: every driver but the astronomical day length.
CHANGEABLE_DRIVERS: tuple[str, ...] = tuple(v for v in schema.DRIVERS if v != "dayl")

#: A bounding box ``(xmin, ymin, xmax, ymax)``.
BBox = tuple[float, float, float, float]
Region = BBox | shapely.Geometry

_OP_SYMBOL = {"offset": "+", "scale": "x", "set": "="}
_NON_NEGATIVE_CLIPPED = ("prcp", "srad", "swe")
_CHANGE_KEYS = ("variable", "op", "value", "start", "end", "region")
_REGION_KEYS = ("bbox", "wkt", "crs")
_GRAMMAR = (
    "write '<variable> +N', '-N', 'xN' or '=N', optionally followed by "
    "'from YYYY-MM-DD to YYYY-MM-DD' (or '[YYYY-MM-DD..YYYY-MM-DD]') and "
    "'in bbox(xmin, ymin, xmax, ymax) [crs EPSG:XXXX]', "
    "e.g. 'tmax +3 from 2022-07-01 to 2022-07-31'"
)


def saturation_vapour_pressure(t: Any) -> Any:
    """Saturation vapour pressure in Pa over water at temperature ``t`` in degC (FAO-56 eq. 11).

    Works on numbers, numpy arrays and (lazily) on xarray/dask arrays; keeps float32.

    Examples
    --------
    >>> round(float(saturation_vapour_pressure(20.0)), 1)
    2338.3
    """
    return 610.8 * np.exp(17.27 * t / (t + 237.3))


# ----------------------------------------------------------------------------------------------
# Normalisation helpers
# ----------------------------------------------------------------------------------------------


def _as_date(value: Any, what: str) -> str | None:
    """Normalise anything :class:`pandas.Timestamp` parses to an ISO date string."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise ScenarioError(
            f"Change.{what}: cannot read {value!r} as a date ({err}); give an ISO date such as "
            f"'2022-07-01'."
        ) from None
    if ts is pd.NaT or pd.isna(ts):
        raise ScenarioError(
            f"Change.{what}: {value!r} is not a date; give an ISO date such as '2022-07-01' or "
            f"None for an open window."
        )
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.date().isoformat()


def _as_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ScenarioError(f"Change.{what}: expected a number, got {value!r}; e.g. value=3.0.")
    out = float(value)
    if not math.isfinite(out):
        raise ScenarioError(f"Change.{what}: must be a finite number, got {out!r}.")
    return out + 0.0  # -0.0 -> 0.0


def _as_crs_string(value: Any) -> str:
    try:
        crs = CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as err:
        raise ScenarioError(
            f"Change.region_crs: {value!r} is not a CRS pyproj understands ({err}); give e.g. "
            f"'EPSG:4326' or 32615."
        ) from None
    auth = crs.to_authority(min_confidence=100)
    return f"{auth[0]}:{auth[1]}" if auth else crs.to_wkt()


def _as_region(value: Any) -> Region:
    if isinstance(value, str):
        try:
            value = shapely.from_wkt(value)
        except shapely.errors.GEOSException as err:
            raise ScenarioError(
                f"Change.region: cannot read the string as WKT ({err}); give a WKT polygon such "
                f"as 'POLYGON ((0 0, 1 0, 1 1, 0 0))' or a bbox (xmin, ymin, xmax, ymax)."
            ) from None
    if isinstance(value, shapely.Geometry):
        if not value.is_valid:
            raise ScenarioError(
                f"Change.region: the geometry is invalid ({shapely.is_valid_reason(value)}); "
                f"repair it first, e.g. shapely.make_valid(geom)."
            )
        if value.is_empty or value.area <= 0:
            raise ScenarioError(
                f"Change.region: the geometry ({value.geom_type}) has no area; give a Polygon or "
                f"MultiPolygon (buffer points and lines first, e.g. geom.buffer(500))."
            )
        return value
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) == 4:
        try:
            box = tuple(_as_number(v, "region") for v in value)
        except ScenarioError:
            raise ScenarioError(
                f"Change.region: a bbox must be 4 finite numbers (xmin, ymin, xmax, ymax); got "
                f"{tuple(value)!r}."
            ) from None
        xmin, ymin, xmax, ymax = box
        if not (xmin < xmax and ymin < ymax):
            raise ScenarioError(
                f"Change.region: degenerate bbox {box!r}; it must be (xmin, ymin, xmax, ymax) "
                f"with xmin < xmax and ymin < ymax (is it in (xmin, xmax, ymin, ymax) order?)."
            )
        return box  # type: ignore[return-value]
    raise ScenarioError(
        f"Change.region: expected a bbox (xmin, ymin, xmax, ymax), a shapely geometry or a WKT "
        f"string, got {type(value).__name__}; for a GeoDataFrame pass gdf.union_all() and "
        f"region_crs=gdf.crs."
    )


def _fmt_num(value: float) -> str:
    return repr(float(value))


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


# ----------------------------------------------------------------------------------------------
# Change
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One change to one driver: ``variable <op> value``, optionally in a window and a region.

    Parameters
    ----------
    variable
        A name of :data:`CHANGEABLE_DRIVERS` (every driver but ``dayl``), in schema units.
    op
        ``"offset"`` (add ``value``), ``"scale"`` (multiply by ``value`` >= 0) or ``"set"``
        (replace by ``value``; missing values stay missing).
    value
        A finite number in the driver's units (:data:`~kgvsf_explore.schema.DRIVER_UNITS`).
    start, end
        Inclusive date window; anything :class:`pandas.Timestamp` parses, stored as ISO date
        strings. ``None`` leaves that side open.
    region
        A bbox ``(xmin, ymin, xmax, ymax)``, a shapely (multi)polygon or a WKT string. A grid cell
        is changed when its centre lies in the region (on or inside a bbox, strictly inside a
        geometry). Coordinates are in the data's CRS unless ``region_crs`` is given.
    region_crs
        CRS of ``region`` (anything :class:`pyproj.CRS` accepts; x/y order is always
        easting/northing or longitude/latitude). The region is reprojected to the data's CRS.

    Raises
    ------
    ScenarioError
        For any impossible specification; the message names the field and how to fix it.

    Examples
    --------
    >>> Change("tmax", "offset", 3, start="2022-07-01", end="2022-07-31")
    Change(variable='tmax', op='offset', value=3.0, start='2022-07-01', end='2022-07-31', region=None, region_crs=None)
    >>> str(Change("prcp", "scale", 0.5, region=(0, 0, 100, 100)))
    'prcp x0.5 in bbox(0.0, 0.0, 100.0, 100.0)'
    """  # noqa: E501

    variable: str
    op: str
    value: float
    start: str | None = None
    end: str | None = None
    region: Region | None = None
    region_crs: str | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__
        if self.variable == "dayl":
            raise ScenarioError(
                "Change.variable: 'dayl' (day length) is astronomical - fixed by latitude and "
                "date - and cannot be changed; change 'srad' for cloudier or sunnier days."
            )
        if self.variable not in CHANGEABLE_DRIVERS:
            raise ScenarioError(
                f"Change.variable: unknown driver {self.variable!r}; use one of "
                f"{', '.join(CHANGEABLE_DRIVERS)}."
            )
        if self.op not in OPS:
            raise ScenarioError(
                f"Change.op: unknown operation {self.op!r}; use one of {', '.join(OPS)}."
            )
        value = _as_number(self.value, "value")
        put(self, "value", value)
        lo, hi = schema.DRIVER_RANGES[self.variable]
        units = schema.DRIVER_UNITS[self.variable]
        if self.op == "scale" and value < 0:
            raise ScenarioError(
                f"Change.value: the scale factor of {self.variable} must be >= 0, got {value}; "
                f"use e.g. x0.5 to halve it or x0 to remove it."
            )
        if self.op == "set" and not lo <= value <= hi:
            why = "cannot be negative" if value < 0 and lo == 0 else f"must be in [{lo}, {hi}]"
            raise ScenarioError(
                f"Change.value: {self.variable} set to {value} {units}, but {self.variable} {why} "
                f"{units}; give a value in [{lo}, {hi}] {units} (check the units)."
            )
        if self.op == "offset" and abs(value) > hi - lo:
            raise ScenarioError(
                f"Change.value: an offset of {value} {units} exceeds the whole plausible range of "
                f"{self.variable} ([{lo}, {hi}] {units}); check the units."
            )
        start, end = _as_date(self.start, "start"), _as_date(self.end, "end")
        if start is not None and end is not None and end < start:
            raise ScenarioError(
                f"Change.end: the window ends ({end}) before it starts ({start}); swap start and "
                f"end."
            )
        put(self, "start", start)
        put(self, "end", end)
        if self.region is not None:
            put(self, "region", _as_region(self.region))
        if self.region_crs is not None:
            if self.region is None:
                raise ScenarioError(
                    "Change.region_crs: given without a region; give region= too or drop "
                    "region_crs."
                )
            put(self, "region_crs", _as_crs_string(self.region_crs))

    # -- text form -------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Change:
        """Read one change from the text grammar, e.g. ``"tmax +3 from 2022-07-01 to 2022-07-31"``.

        Grammar: ``<variable> +N | -N | xN | =N`` followed, in any order, by an optional window
        ``from <date> to <date>`` (either side alone works) or ``[<date>..<date>]``, and an
        optional region ``in bbox(xmin, ymin, xmax, ymax)`` with an optional ``crs <CRS>``.

        Examples
        --------
        >>> Change.parse("tmin =-5 [2022-01-01..2022-01-31]")
        Change(variable='tmin', op='set', value=-5.0, start='2022-01-01', end='2022-01-31', region=None, region_crs=None)
        """  # noqa: E501
        return _parse_change(text)

    def __str__(self) -> str:
        if self.op == "offset":
            out = f"{self.variable} {'-' if self.value < 0 else '+'}{_fmt_num(abs(self.value))}"
        else:
            out = f"{self.variable} {_OP_SYMBOL[self.op]}{_fmt_num(self.value)}"
        window = self.window_text()
        if window:
            out += f" [{window}]"
        if self.region is not None:
            out += f" in {self.region_text()}"
        if self.region_crs is not None:
            crs = self.region_crs if len(self.region_crs) < 40 else CRS(self.region_crs).name
            out += f" crs {crs}"
        return out

    def window_text(self) -> str:
        """The window as ``"start..end"`` (open sides empty), or ``""`` for the whole period."""
        if self.start is None and self.end is None:
            return ""
        return f"{self.start or ''}..{self.end or ''}"

    def region_text(self, full: bool = False) -> str:
        """The region as ``"bbox(...)"`` or WKT (shortened unless ``full``), ``""`` if none."""
        if self.region is None:
            return ""
        if isinstance(self.region, shapely.Geometry):
            wkt = shapely.to_wkt(self.region, rounding_precision=-1)
            return wkt if full else _short(wkt)
        return f"bbox({', '.join(_fmt_num(v) for v in self.region)})"

    @property
    def is_identity(self) -> bool:
        """True when the change leaves every value as it was (``+0`` or ``x1``)."""
        return (self.op == "offset" and self.value == 0) or (self.op == "scale" and self.value == 1)

    # -- dict form -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form of the change (see ``docs/scenarios.md``)."""
        region: dict[str, Any] | None = None
        if isinstance(self.region, shapely.Geometry):
            region = {"wkt": self.region_text(full=True), "crs": self.region_crs}
        elif self.region is not None:
            region = {"bbox": list(self.region), "crs": self.region_crs}
        return {
            "variable": self.variable,
            "op": self.op,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "region": region,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "change") -> Change:
        """Inverse of :meth:`to_dict`; rejects unknown keys."""
        if not isinstance(data, Mapping):
            raise ScenarioError(
                f"{where}: expected an object with keys {_CHANGE_KEYS}, got {data!r}."
            )
        unknown = sorted(set(data) - set(_CHANGE_KEYS))
        if unknown:
            raise ScenarioError(
                f"{where}: unknown key(s) {unknown}; allowed keys are {', '.join(_CHANGE_KEYS)}."
            )
        missing = [k for k in ("variable", "op", "value") if k not in data]
        if missing:
            raise ScenarioError(f"{where}: missing key(s) {missing}; every change needs them.")
        region, region_crs = data.get("region"), None
        if region is not None:
            if not isinstance(region, Mapping):
                raise ScenarioError(
                    f"{where}.region: expected null, {{'bbox': [xmin, ymin, xmax, ymax], 'crs': "
                    f"...}} or {{'wkt': '...', 'crs': ...}}, got {region!r}."
                )
            unknown = sorted(set(region) - set(_REGION_KEYS))
            if unknown:
                raise ScenarioError(
                    f"{where}.region: unknown key(s) {unknown}; allowed keys are bbox or wkt, and "
                    f"crs."
                )
            if ("bbox" in region) == ("wkt" in region):
                raise ScenarioError(f"{where}.region: give exactly one of 'bbox' and 'wkt'.")
            region_crs = region.get("crs")
            region = region["bbox"] if "bbox" in region else region["wkt"]
            if isinstance(region, str) and "bbox" in data["region"]:
                raise ScenarioError(f"{where}.region.bbox: expected 4 numbers, got {region!r}.")
        try:
            return cls(
                variable=data["variable"],
                op=data["op"],
                value=data["value"],
                start=data.get("start"),
                end=data.get("end"),
                region=region,
                region_crs=region_crs,
            )
        except ScenarioError as err:
            raise ScenarioError(f"{where}: {err}") from None


_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_HEAD_RE = re.compile(
    rf"\s*(?P<var>[A-Za-z]+)\s*(?P<op>[-+xX*\u00d7=])\s*(?P<num>{_NUM})(?P<rest>.*)"
)
_CLAUSES = {
    "from": re.compile(r"from\s+(?P<a>[^\s\[\]]+)", re.I),
    "to": re.compile(r"to\s+(?P<a>[^\s\[\]]+)", re.I),
    "window": re.compile(r"\[\s*(?P<a>[^\]]*?)\s*\.\.\s*(?P<b>[^\]]*?)\s*\]"),
    "bbox": re.compile(r"in\s+bbox\s*\(\s*(?P<a>[^)]*)\)", re.I),
    "crs": re.compile(r"crs\s+(?P<a>\S+)", re.I),
}


def _parse_change(text: str) -> Change:
    def fail(why: str) -> ScenarioError:
        return ScenarioError(f"cannot parse scenario change {text!r}: {why}; {_GRAMMAR}.")

    if not isinstance(text, str):
        raise ScenarioError(f"Scenario.parse: expected strings, got {text!r}; {_GRAMMAR}.")
    head = _HEAD_RE.fullmatch(text)
    if head is None:
        raise fail("expected '<variable> <op><number>' first")
    sym, num = head["op"], head["num"]
    if sym in "+-" and num[0] in "+-":
        raise fail(f"double sign '{sym}{num}'")
    value = float(num)
    op = {"+": "offset", "-": "offset", "=": "set"}.get(sym, "scale")
    if sym == "-":
        value = -value
    found: dict[str, re.Match[str]] = {}
    rest = head["rest"].strip()
    while rest:
        for key, pattern in _CLAUSES.items():
            m = pattern.match(rest)
            if m:
                if key in found or (key == "window" and {"from", "to"} & set(found)):
                    raise fail(f"the {key!r} part is given twice")
                if key in ("from", "to") and "window" in found:
                    raise fail("the window is given twice")
                found[key] = m
                rest = rest[m.end() :].strip()
                break
        else:
            raise fail(f"unexpected {_short(rest, 30)!r}")
    start = end = None
    if "window" in found:
        start, end = found["window"]["a"] or None, found["window"]["b"] or None
    if "from" in found:
        start = found["from"]["a"]
    if "to" in found:
        end = found["to"]["a"]
    region = None
    if "bbox" in found:
        parts = [p.strip() for p in found["bbox"]["a"].split(",")]
        if len(parts) != 4 or not all(re.fullmatch(_NUM, p) for p in parts):
            raise fail("bbox(...) needs 4 comma-separated numbers xmin, ymin, xmax, ymax")
        region = tuple(float(p) for p in parts)
    if "crs" in found and region is None:
        raise fail("'crs' needs a region ('in bbox(...)') before it")
    return Change(
        variable=head["var"].lower(),
        op=op,
        value=value,
        start=start,
        end=end,
        region=region,
        region_crs=found["crs"]["a"] if "crs" in found else None,
    )


# ----------------------------------------------------------------------------------------------
# Scenario
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """An immutable, ordered set of :class:`Change` objects to the daily weather drivers.

    Parameters
    ----------
    changes
        The changes, applied in order (a list is turned into a tuple; strings are parsed with
        :meth:`Change.parse`).
    name
        A free-text label, shown in reprs and plots.

    Examples
    --------
    >>> hot = Scenario.parse("tmax +3", "tmin +3", name="hot")
    >>> dry = Scenario([Change("prcp", "scale", 0.0)], name="dry")
    >>> hot & dry
    Scenario('hot & dry': tmax +3.0; tmin +3.0; prcp x0.0)
    >>> Scenario().is_identity
    True
    """

    changes: tuple[Change, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        changes = self.changes
        if isinstance(changes, (Change, str)):
            changes = (changes,)
        if not isinstance(changes, Iterable):
            raise ScenarioError(
                f"Scenario.changes: expected a sequence of Change objects, got {changes!r}."
            )
        out = []
        for i, c in enumerate(changes):
            if isinstance(c, str):
                c = _parse_change(c)
            if not isinstance(c, Change):
                raise ScenarioError(
                    f"Scenario.changes[{i}]: expected a Change (or its text form), got "
                    f"{type(c).__name__}; build one with Change(...) or Scenario.parse(...)."
                )
            out.append(c)
        object.__setattr__(self, "changes", tuple(out))
        if not isinstance(self.name, str):
            raise ScenarioError(f"Scenario.name: expected a string, got {self.name!r}.")

    # -- constructors ----------------------------------------------------------------------------

    @classmethod
    def parse(cls, *texts: str, name: str = "") -> Scenario:
        """Build a scenario from the text grammar, one change per string (or ``;``-separated).

        Examples
        --------
        >>> Scenario.parse("tmax +3", "prcp x0.5; prcp =0 from 2022-07-01 to 2022-07-31")
        Scenario(tmax +3.0; prcp x0.5; prcp =0.0 [2022-07-01..2022-07-31])
        """
        changes = []
        for text in texts:
            if not isinstance(text, str):
                raise ScenarioError(f"Scenario.parse: expected strings, got {text!r}; {_GRAMMAR}.")
            changes += [_parse_change(t) for t in re.split(r"[;\n]", text) if t.strip()]
        return cls(tuple(changes), name=name)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Build a scenario from its JSON form (see ``docs/scenarios.md``).

        Raises
        ------
        ScenarioError
            On unknown keys, a missing or newer ``kgvsf_scenario_version``, or a bad change.
        """
        if not isinstance(data, Mapping):
            raise ScenarioError(f"scenario: expected a JSON object, got {type(data).__name__}.")
        allowed = (VERSION_KEY, "name", "changes")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ScenarioError(
                f"scenario: unknown key(s) {unknown}; allowed keys are {', '.join(allowed)}."
            )
        if VERSION_KEY not in data:
            raise ScenarioError(
                f'scenario: missing {VERSION_KEY!r}; add "{VERSION_KEY}": '
                f"{SCENARIO_FORMAT_VERSION} to the object."
            )
        version = data[VERSION_KEY]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ScenarioError(
                f"scenario: {VERSION_KEY} must be a positive integer, got {version!r}."
            )
        if version > SCENARIO_FORMAT_VERSION:
            raise ScenarioError(
                f"scenario: {VERSION_KEY} {version} was written by a newer kgvsf_explore; this "
                f"one reads up to version {SCENARIO_FORMAT_VERSION}. Upgrade kgvsf_explore."
            )
        changes = data.get("changes", [])
        if not isinstance(changes, (list, tuple)):
            raise ScenarioError(f"scenario.changes: expected a list, got {changes!r}.")
        name = data.get("name") or ""
        if not isinstance(name, str):
            raise ScenarioError(f"scenario.name: expected a string, got {name!r}.")
        return cls(
            tuple(Change.from_dict(c, where=f"changes[{i}]") for i, c in enumerate(changes)),
            name=name,
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Scenario:
        """Read a scenario from a JSON file (or from JSON text starting with ``{``).

        Examples
        --------
        >>> s = Scenario.parse("tmax +2", name="warm")
        >>> Scenario.from_json(s.to_json()) == s
        True
        """
        if isinstance(path, str) and path.lstrip().startswith("{"):
            text, where = path, "JSON text"
        else:
            where = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as err:
                raise ScenarioError(f"cannot read scenario file {where}: {err}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ScenarioError(f"scenario {where} is not valid JSON: {err}") from None
        try:
            return cls.from_dict(data)
        except ScenarioError as err:
            raise ScenarioError(f"{where}: {err}") from None

    # -- named constructors for the common cases --------------------------------------------------

    @classmethod
    def dry_spell(cls, start: Any, end: Any, rain_scale: float = 0.0, *, region: Any = None,
                  region_crs: Any = None, name: str = "dry spell") -> Scenario:
        """Rain multiplied by ``rain_scale`` (default: no rain at all) from ``start`` to ``end``.

        Examples
        --------
        >>> Scenario.dry_spell("2022-07-01", "2022-07-31").changes[0].op
        'scale'
        """
        return cls((Change("prcp", "scale", rain_scale, start, end, region, region_crs),),
                   name=name)

    @classmethod
    def heat_wave(cls, start: Any, end: Any, delta: float = 5.0, *, region: Any = None,
                  region_crs: Any = None, name: str = "heat wave") -> Scenario:
        """``tmax + delta`` and ``tmin + delta / 2`` (nights warm less), ``start`` to ``end``."""
        return cls((Change("tmax", "offset", delta, start, end, region, region_crs),
                    Change("tmin", "offset", delta / 2, start, end, region, region_crs)),
                   name=name)

    @classmethod
    def warming(cls, delta: float, start: Any = None, end: Any = None, *,
                name: str = "") -> Scenario:
        """Uniform warming: ``tmax`` and ``tmin`` + ``delta`` degC (whole period by default)."""
        return cls((Change("tmax", "offset", delta, start, end),
                    Change("tmin", "offset", delta, start, end)),
                   name=name or f"+{_fmt_num(delta)} degC")

    @classmethod
    def rain_scaled(cls, factor: float, start: Any = None, end: Any = None, *,
                    name: str = "") -> Scenario:
        """Rain multiplied by ``factor`` (whole period by default)."""
        return cls((Change("prcp", "scale", factor, start, end),),
                   name=name or f"rain x{_fmt_num(factor)}")

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ``{"kgvsf_scenario_version": 1, "name": ..., "changes": [...]}``."""
        return {
            VERSION_KEY: SCENARIO_FORMAT_VERSION,
            "name": self.name,
            "changes": [c.to_dict() for c in self.changes],
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Return the JSON text and, if ``path`` is given, write it there atomically.

        The text goes to a temporary file in the same folder that then replaces ``path``
        (:func:`os.replace`), so a crash never leaves a half-written file behind.
        """
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is None:
            return text
        atomic_write(path, text)
        return text

    # -- algebra and display ---------------------------------------------------------------------

    def __and__(self, other: object) -> Scenario:
        """Compose: the changes of ``self`` then those of ``other``; names joined by ``" & "``."""
        if isinstance(other, Change):
            other = Scenario((other,))
        if not isinstance(other, Scenario):
            return NotImplemented
        name = " & ".join(n for n in (self.name, other.name) if n)
        return Scenario(self.changes + other.changes, name=name)

    @property
    def is_identity(self) -> bool:
        """True when applying the scenario leaves every driver value as it was."""
        return all(c.is_identity for c in self.changes)

    @property
    def variables(self) -> tuple[str, ...]:
        """The drivers the scenario changes, in order of first change."""
        return tuple(dict.fromkeys(c.variable for c in self.changes))

    def __repr__(self) -> str:
        body = "; ".join(str(c) for c in self.changes) or "no changes"
        return f"Scenario({self.name!r}: {body})" if self.name else f"Scenario({body})"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        esc = html.escape
        title = f"Scenario <b>{esc(self.name)}</b>" if self.name else "Scenario"
        if not self.changes:
            return f"<div>{title}: no changes (identity)</div>"
        rows = []
        for i, c in enumerate(self.changes, 1):
            units = schema.DRIVER_UNITS[c.variable]
            how = {
                "offset": f"{'-' if c.value < 0 else '+'}{_fmt_num(abs(c.value))} {units}",
                "scale": f"&times;{_fmt_num(c.value)}",
                "set": f"= {_fmt_num(c.value)} {units}",
            }[c.op]
            if c.op != "scale":
                how = esc(how)
            region = esc(c.region_text()) or "everywhere"
            if c.region_crs:
                region += f" <small>({esc(str(c).rsplit(' crs ', 1)[-1])})</small>"
            rows.append(
                f"<tr><td>{i}</td><td><code>{esc(c.variable)}</code></td><td>{how}</td>"
                f"<td>{esc(c.window_text()) or 'whole period'}</td><td>{region}</td></tr>"
            )
        return (
            f"<div>{title}: {len(self.changes)} change(s), applied in order"
            "<table><thead><tr><th>#</th><th>driver</th><th>change</th><th>window</th>"
            f"<th>region</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )

    # -- application -----------------------------------------------------------------------------

    def apply(self, obj: Any) -> xr.Dataset:
        """Return new drivers with the scenario applied; ``obj`` itself is never modified.

        Parameters
        ----------
        obj
            An :class:`xarray.Dataset` whose driver variables have a ``day`` dimension, on
            ``(day,)``, ``(day, y, x)`` or ``(day, y_met, x_met)``; or any object with a
            ``.drivers`` Dataset, such as a :class:`~kgvsf_explore.Cube`.

        Returns
        -------
        xarray.Dataset
            Every driver of :data:`~kgvsf_explore.schema.DRIVERS` found in the input (unchanged
            ones included, sharing memory with the input as xarray selections do), changed in
            order and clipped as described in the module docstring; dtypes and attributes kept,
            the CRS kept as a ``spatial_ref`` coordinate, and ``attrs["kgvsf_scenario"]`` holding
            the scenario's JSON. Dask-backed input gives a lazy result.

        Raises
        ------
        ScenarioError
            When a changed driver is missing, a window matches no day, a region matches no grid
            cell (or the drivers have no spatial dims), or ``region_crs`` is given but the data
            has no CRS.

        Warns
        -----
        ScenarioClipWarning
            With numpy-backed data, when impossible results were clipped.
        """
        ds = _drivers_of(obj)
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
        for i, c in enumerate(self.changes):
            if c.variable not in names:
                raise ScenarioError(
                    f"Scenario.apply: change {i + 1} ({c}) targets {c.variable!r}, which the data "
                    f"does not hold (it has {', '.join(names)}); drop that change or add the "
                    f"driver."
                )
        orig = {v: ds[v] for v in names}
        out = dict(orig)
        crs_cache: list[CRS | None] = []
        for i, c in enumerate(self.changes):
            da = out[c.variable]
            day_mask = _window_mask(c, da, i)
            space_mask = _region_mask(c, da, i, lambda: _data_crs_cached(obj, ds, crs_cache))
            out[c.variable] = _restore(_apply_one(c, da, day_mask, space_mask), da)
        report = _clip(out, orig, set(self.variables))
        if report:
            msg = "; ".join(report)
            label = f" {self.name!r}" if self.name else ""
            warnings.warn(
                f"Scenario{label} produced physically impossible values, clipped: {msg} "
                f"(see the kgvsf_explore.scenario docstring).",
                ScenarioClipWarning,
                stacklevel=2,
            )
        result = xr.Dataset({v: out[v] for v in names})
        if schema.GRID_MAPPING in ds.variables and schema.GRID_MAPPING not in result.variables:
            result = result.assign_coords({schema.GRID_MAPPING: ds[schema.GRID_MAPPING].variable})
        result.attrs = {**ds.attrs, RESULT_ATTR: json.dumps(self.to_dict())}
        return result


# ----------------------------------------------------------------------------------------------
# Application helpers
# ----------------------------------------------------------------------------------------------


def _drivers_of(obj: Any) -> xr.Dataset:
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


def _crs_of_dataset(ds: xr.Dataset) -> CRS | None:
    text = None
    if schema.GRID_MAPPING in ds.variables:
        attrs = ds[schema.GRID_MAPPING].attrs
        text = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    text = text or ds.attrs.get("crs")
    if not text:
        return None
    try:
        return CRS.from_user_input(text)
    except CRSError as err:
        raise ScenarioError(f"Scenario.apply: cannot read the data's CRS ({err}).") from None


def _data_crs_cached(obj: Any, ds: xr.Dataset, cache: list[CRS | None]) -> CRS | None:
    if not cache:
        crs = _crs_of_dataset(ds)
        if crs is None and not isinstance(obj, xr.Dataset):
            own = getattr(obj, "crs", None)
            if own is not None:
                try:
                    crs = CRS.from_user_input(own)
                except CRSError:
                    crs = None
            for attr in ("ds", "dataset"):
                other = getattr(obj, attr, None)
                if crs is None and isinstance(other, xr.Dataset):
                    crs = _crs_of_dataset(other)
        cache.append(crs)
    return cache[0]


def _window_mask(c: Change, da: xr.DataArray, i: int) -> xr.DataArray | None:
    if c.start is None and c.end is None:
        return None
    if schema.DAY_DIM not in da.indexes or not isinstance(
        da.indexes[schema.DAY_DIM], pd.DatetimeIndex
    ):
        raise ScenarioError(
            f"Scenario.apply: change {i + 1} ({c}) has a date window, but {c.variable!r} has no "
            f"datetime64 '{schema.DAY_DIM}' coordinate to compare it with."
        )
    idx = da.indexes[schema.DAY_DIM]
    sel = np.ones(len(idx), dtype=bool)
    if c.start is not None:
        sel &= idx >= pd.Timestamp(c.start)
    if c.end is not None:
        sel &= idx < pd.Timestamp(c.end) + pd.Timedelta(days=1)
    if not sel.any():
        span = f"{idx.min().date()}..{idx.max().date()}" if len(idx) else "no day at all"
        raise ScenarioError(
            f"Scenario.apply: change {i + 1} ({c}) has the window {c.window_text()}, which matches "
            f"no day of the data ({span}); pick dates inside the data's range."
        )
    return xr.DataArray(sel, dims=(schema.DAY_DIM,), coords={schema.DAY_DIM: idx})


def _region_mask(c: Change, da: xr.DataArray, i: int, get_crs: Any) -> xr.DataArray | None:
    if c.region is None:
        return None
    if schema.Y_DIM in da.dims and schema.X_DIM in da.dims:
        ydim, xdim, met = schema.Y_DIM, schema.X_DIM, False
    elif schema.Y_MET_DIM in da.dims and schema.X_MET_DIM in da.dims:
        ydim, xdim, met = schema.Y_MET_DIM, schema.X_MET_DIM, True
    else:
        raise ScenarioError(
            f"Scenario.apply: change {i + 1} ({c}) has a region, but {c.variable!r} is on "
            f"{da.dims}; a region needs spatial drivers on (day, y, x) or (day, y_met, x_met), "
            f"e.g. cube.drivers. Drop the region to change the whole series."
        )
    if ydim not in da.indexes or xdim not in da.indexes:
        raise ScenarioError(
            f"Scenario.apply: {c.variable!r} has no '{ydim}'/'{xdim}' coordinates to place the "
            f"region of change {i + 1} ({c}); assign the cell-centre coordinates first."
        )
    xs = np.asarray(da.indexes[xdim], dtype=float)
    ys = np.asarray(da.indexes[ydim], dtype=float)
    region: Region = c.region
    closed = not isinstance(region, shapely.Geometry)
    if c.region_crs is not None:
        data_crs = get_crs()
        if data_crs is None:
            raise ScenarioError(
                f"Scenario.apply: change {i + 1} ({c}) gives region_crs={c.region_crs!r}, but the "
                f"data has no CRS (no '{schema.GRID_MAPPING}' variable with a 'crs_wkt' attribute "
                f"and no attrs['crs']); add the CRS to the data, or give the region in the data's "
                f"coordinates without region_crs."
            )
        region = _reproject(region, CRS.from_user_input(c.region_crs), data_crs, c, i)
    if isinstance(region, shapely.Geometry):
        xx, yy = np.meshgrid(xs, ys)
        test = shapely.intersects_xy if closed else shapely.contains_xy
        sel = test(region, xx, yy)
    else:
        xmin, ymin, xmax, ymax = region
        sel = ((ys >= ymin) & (ys <= ymax))[:, None] & ((xs >= xmin) & (xs <= xmax))[None, :]
    if not sel.any():
        if met:
            raise ScenarioError(
                f"Scenario.apply: the region of change {i + 1} ({c}) contains no cell centre of "
                f"the coarse met grid ({ydim}, {xdim}) of {c.variable!r}; apply the scenario to "
                f"pixel-grid drivers instead, e.g. scenario.apply(cube.drivers) or "
                f"kgvsf_explore.cube.regrid.drivers_on_pixels(ds)."
            )
        raise ScenarioError(
            f"Scenario.apply: the region of change {i + 1} ({c}) contains no cell centre of the "
            f"data (x {xs.min()}..{xs.max()}, y {ys.min()}..{ys.max()}); check its coordinates "
            f"and region_crs."
        )
    return xr.DataArray(
        sel, dims=(ydim, xdim), coords={ydim: da.indexes[ydim], xdim: da.indexes[xdim]}
    )


def _reproject(region: Region, src: CRS, dst: CRS, c: Change, i: int) -> Region:
    if src == dst:
        return region
    geom = region if isinstance(region, shapely.Geometry) else shapely.box(*region)
    xmin, ymin, xmax, ymax = geom.bounds
    geom = shapely.segmentize(geom, max(xmax - xmin, ymax - ymin) / 64)
    transformer = Transformer.from_crs(src, dst, always_xy=True)

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    out = shapely.transform(geom, fn)
    if not np.isfinite(shapely.get_coordinates(out)).all():
        raise ScenarioError(
            f"Scenario.apply: the region of change {i + 1} ({c}) cannot be reprojected from "
            f"{c.region_crs} to the data's CRS (outside its area of use?); check the region and "
            f"region_crs (x/y order is longitude/latitude for geographic CRSs)."
        )
    return out


def _apply_one(
    c: Change, da: xr.DataArray, day_mask: xr.DataArray | None, space_mask: xr.DataArray | None
) -> xr.DataArray:
    if c.op == "offset":
        new = da + c.value
    elif c.op == "scale":
        new = da * c.value
    else:
        new = xr.where(da.isnull(), da, c.value)
    for mask in (space_mask, day_mask):
        if mask is not None:
            new = xr.where(mask, new, da)
    return new


def _restore(new: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
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


def _clip(out: dict[str, xr.DataArray], orig: dict[str, xr.DataArray], changed: set[str]) -> list:
    """Clip impossible results in place of ``out``; return the numpy-side report lines."""
    report: list[str] = []

    def fix(name: str, cond: xr.DataArray, repl: Any, what: str) -> None:
        n = _count(cond)
        if n is not None and n == 0:
            return
        out[name] = _restore(xr.where(cond, repl, out[name]), orig[name])
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
