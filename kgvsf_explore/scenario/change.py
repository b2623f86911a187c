"""One change to one driver: offset, scale or set, optionally in a date window and a region.

:class:`Scoped` holds what every kind of change shares (variable check, window, region, their
text and JSON forms); :class:`Change` is the arithmetic kind. The replacements by other weather
live in :mod:`kgvsf_explore.scenario.replace`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import schema
from ..errors import ScenarioError
from . import display
from ._normalise import as_date, as_number, fmt_num
from .regions import (
    Region,
    as_crs_string,
    as_region,
    crs_text,
    region_from_dict,
    region_text,
    region_to_dict,
)
from .vocabulary import CHANGEABLE_DRIVERS, DAYL_REASON, OPS, REPLACEMENT_OPS

_OP_SYMBOL = {"offset": "+", "scale": "x", "set": "="}
_CHANGE_KEYS = ("variable", "op", "value", "start", "end", "region")


class Scoped:
    """Mixin of every kind of change: a driver ``variable``, a window and a region.

    Subclasses are frozen dataclasses with the fields ``variable``, ``start``, ``end``,
    ``region`` and ``region_crs``; their ``__post_init__`` calls :meth:`_check_variable` and
    :meth:`_normalise_scope`.
    """

    variable: str
    start: str | None
    end: str | None
    region: Region | None
    region_crs: str | None

    #: Shown after the ``dayl`` refusal: what to do instead.
    _DAYL_HINT = "change 'srad' for cloudier or sunnier days"

    @property
    def _label(self) -> str:
        return type(self).__name__

    def _check_variable(self) -> None:
        if self.variable == "dayl":
            raise ScenarioError(f"{self._label}.variable: {DAYL_REASON}; {self._DAYL_HINT}.")
        if self.variable not in CHANGEABLE_DRIVERS:
            raise ScenarioError(
                f"{self._label}.variable: unknown driver {self.variable!r}; use one of "
                f"{', '.join(CHANGEABLE_DRIVERS)}."
            )

    def _normalise_scope(self) -> None:
        put, label = object.__setattr__, self._label
        start, end = as_date(self.start, f"{label}.start"), as_date(self.end, f"{label}.end")
        if start is not None and end is not None and end < start:
            raise ScenarioError(
                f"{label}.end: the window ends ({end}) before it starts ({start}); swap start and "
                f"end."
            )
        put(self, "start", start)
        put(self, "end", end)
        if self.region is not None:
            put(self, "region", as_region(self.region, f"{label}.region"))
        if self.region_crs is not None:
            if self.region is None:
                raise ScenarioError(
                    f"{label}.region_crs: given without a region; give region= too or drop "
                    f"region_crs."
                )
            put(self, "region_crs", as_crs_string(self.region_crs, f"{label}.region_crs"))

    def window_text(self) -> str:
        """The window as ``"start..end"`` (open sides empty), or ``""`` for the whole period."""
        if self.start is None and self.end is None:
            return ""
        return f"{self.start or ''}..{self.end or ''}"

    def region_text(self, full: bool = False) -> str:
        """The region as ``"bbox(...)"`` or WKT (shortened unless ``full``), ``""`` if none."""
        return region_text(self.region, full)

    def scope_text(self) -> str:
        """The text-grammar tail: ``" [start..end] in bbox(...) crs EPSG:XXXX"``, or ``""``."""
        out = ""
        window = self.window_text()
        if window:
            out += f" [{window}]"
        if self.region is not None:
            out += f" in {self.region_text()}"
        if self.region_crs is not None:
            out += f" crs {crs_text(self.region_crs)}"
        return out

    def scope_dict(self) -> dict[str, Any]:
        """The JSON keys ``start``, ``end`` and ``region``."""
        return {
            "start": self.start,
            "end": self.end,
            "region": region_to_dict(self.region, self.region_crs),
        }

    def _repr_html_(self) -> str:
        return display.changes_html((self,), title=self._label, count=False)


def fields_from_dict(
    data: Any, where: str, keys: tuple[str, ...], required: tuple[str, ...]
) -> dict[str, Any]:
    """Keyword arguments of a change class from its JSON object (``op`` and ``region`` turned
    into ``region``/``region_crs``); rejects unknown and missing keys."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}: expected an object with keys {keys}, got {data!r}.")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {unknown}; allowed keys are {', '.join(keys)}."
        )
    missing = [k for k in required if k not in data]
    if missing:
        raise ScenarioError(f"{where}: missing key(s) {missing}; every change needs them.")
    region, region_crs = region_from_dict(data.get("region"), where)
    kwargs = {k: data.get(k) for k in keys if k not in ("op", "region")}
    return {**kwargs, "region": region, "region_crs": region_crs}


@dataclass(frozen=True)
class Change(Scoped):
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

    See Also
    --------
    YearReplacement, SeriesReplacement : replace a driver by other weather.

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
        self._check_variable()
        if self.op not in OPS:
            more = ""
            if self.op in REPLACEMENT_OPS:
                more = (
                    " (to replace a driver by other weather use Scenario.weather_of_year or "
                    "Scenario.from_series)"
                )
            raise ScenarioError(
                f"Change.op: unknown operation {self.op!r}; use one of {', '.join(OPS)}{more}."
            )
        value = as_number(self.value, "Change.value")
        object.__setattr__(self, "value", value)
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
        self._normalise_scope()

    # -- text form -------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Change:
        """Read one change from the text grammar, e.g. ``"tmax +3 from 2022-07-01 to 2022-07-31"``.

        Grammar: ``<variable> +N | -N | xN | =N`` followed, in any order, by an optional window
        ``from <date> to <date>`` (either side alone works) or ``[<date>..<date>]``, and an
        optional region ``in bbox(xmin, ymin, xmax, ymax)`` with an optional ``crs <CRS>``.
        Replacements (``"prcp from year 2021"``) are read by :meth:`Scenario.parse`.

        Examples
        --------
        >>> Change.parse("tmin =-5 [2022-01-01..2022-01-31]")
        Change(variable='tmin', op='set', value=-5.0, start='2022-01-01', end='2022-01-31', region=None, region_crs=None)
        """  # noqa: E501
        from .grammar import parse_change

        return parse_change(text)

    def __str__(self) -> str:
        if self.op == "offset":
            out = f"{self.variable} {'-' if self.value < 0 else '+'}{fmt_num(abs(self.value))}"
        else:
            out = f"{self.variable} {_OP_SYMBOL[self.op]}{fmt_num(self.value)}"
        return out + self.scope_text()

    @property
    def is_identity(self) -> bool:
        """True when the change leaves every value as it was (``+0`` or ``x1``)."""
        return (self.op == "offset" and self.value == 0) or (self.op == "scale" and self.value == 1)

    # -- dict form -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form of the change (see ``docs/scenarios.md``)."""
        return {"variable": self.variable, "op": self.op, "value": self.value,
                **self.scope_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "change") -> Change:
        """Inverse of :meth:`to_dict`; rejects unknown keys."""
        kwargs = fields_from_dict(data, where, _CHANGE_KEYS, ("variable", "op", "value"))
        try:
            return cls(op=data["op"], **kwargs)
        except ScenarioError as err:
            raise ScenarioError(f"{where}: {err}") from None
