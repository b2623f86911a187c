"""The :class:`Scenario`: an immutable, ordered set of changes to the daily weather drivers."""

from __future__ import annotations

import html
import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._atomic import atomic_write
from ..errors import ScenarioClipWarning, ScenarioError
from . import display
from ._normalise import as_date, fmt_num
from .apply import apply_scenario
from .change import Change
from .grammar import GRAMMAR, parse_changes
from .jsonform import (
    MAX_FILE_BYTES,
    AnyChange,
    check_json_text,
    format_version,
    scenario_from_dict,
)
from .replace import SeriesReplacement, YearReplacement
from .series import read_series, redate
from .vocabulary import CHANGEABLE_DRIVERS, VERSION_KEY

_KINDS = (Change, YearReplacement, SeriesReplacement)


@dataclass(frozen=True)
class Scenario:
    """An immutable, ordered set of changes to the daily weather drivers.

    Parameters
    ----------
    changes
        The changes, applied in order: :class:`Change` (offset, scale, set),
        :class:`YearReplacement` (another year's weather) and :class:`SeriesReplacement` (a
        user's series). A list is turned into a tuple; strings are read with the text grammar
        (:meth:`parse`).
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

    changes: tuple[AnyChange, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        changes = self.changes
        if isinstance(changes, (*_KINDS, str)):
            changes = (changes,)
        if not isinstance(changes, Iterable):
            raise ScenarioError(
                f"Scenario.changes: expected a sequence of Change objects, got {changes!r}."
            )
        out: list[AnyChange] = []
        for i, c in enumerate(changes):
            if isinstance(c, str):
                out += parse_changes(c)
                continue
            if not isinstance(c, _KINDS):
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

        ``"<variable> from year YYYY"`` (or ``"all from year YYYY"``, or a comma-separated list
        of variables) stands for one :class:`YearReplacement` per variable.

        Examples
        --------
        >>> Scenario.parse("tmax +3", "prcp x0.5; prcp =0 from 2022-07-01 to 2022-07-31")
        Scenario(tmax +3.0; prcp x0.5; prcp =0.0 [2022-07-01..2022-07-31])
        >>> len(Scenario.parse("all from year 2021 from 2022-07-01 to 2022-07-31").changes)
        6
        """
        changes: list[AnyChange] = []
        for text in texts:
            if not isinstance(text, str):
                raise ScenarioError(f"Scenario.parse: expected strings, got {text!r}; {GRAMMAR}.")
            for part in re.split(r"[;\n]", text):
                if part.strip():
                    changes += parse_changes(part)
        return cls(tuple(changes), name=name)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Build a scenario from its JSON form, of any version up to the newest.

        Raises
        ------
        ScenarioError
            On unknown keys, a missing or newer ``kgvsf_scenario_version``, a change the
            file's version does not know, or a bad change.
        """
        changes, name = scenario_from_dict(data)
        return cls(changes, name=name)

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
                size = Path(path).stat().st_size
            except (OSError, TypeError, ValueError) as err:
                raise ScenarioError(f"cannot read scenario file {where}: {err}") from None
            if size > MAX_FILE_BYTES:
                raise ScenarioError(
                    f"scenario file {where} has {size:,} bytes, more than the "
                    f"{MAX_FILE_BYTES:,} a scenario may have; is it a scenario file?")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise ScenarioError(f"cannot read scenario file {where}: {err}") from None
        check_json_text(text, where)
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
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
                   name=name or f"+{fmt_num(delta)} degC")

    @classmethod
    def rain_scaled(cls, factor: float, start: Any = None, end: Any = None, *,
                    name: str = "") -> Scenario:
        """Rain multiplied by ``factor`` (whole period by default)."""
        return cls((Change("prcp", "scale", factor, start, end),),
                   name=name or f"rain x{fmt_num(factor)}")

    @classmethod
    def weather_of_year(cls, year: int, start: Any = None, end: Any = None,
                        variables: str | Iterable[str] | None = None, *, region: Any = None,
                        region_crs: Any = None, name: str = "") -> Scenario:
        """Each day from ``start`` to ``end`` gets the weather of the same calendar day of ``year``.

        The values come from the data the scenario is applied to (as left by the changes before
        these ones), so that data must cover the days of ``year`` needed, else
        :meth:`apply` raises a :class:`~kgvsf_explore.errors.ScenarioError` naming the data's
        range and ``year``. A 29 February with no counterpart in ``year`` takes 28 February.

        Parameters
        ----------
        year
            The year whose weather to use.
        start, end
            Inclusive window of days to replace; None leaves a side open.
        variables
            A driver name or names; None takes every driver but ``dayl`` (which is never
            changed).
        region, region_crs
            Replace only inside this region (see :class:`Change`).
        name
            Defaults to ``"weather of <year>"``.

        Examples
        --------
        >>> Scenario.weather_of_year(2021, "2022-07-01", "2022-08-31")
        Scenario('weather of 2021': all from year 2021 [2022-07-01..2022-08-31])
        >>> Scenario.weather_of_year(2012, "2022-07-01", "2022-07-31", variables="prcp")
        Scenario('weather of 2012': prcp from year 2012 [2022-07-01..2022-07-31])
        """
        names = _variables(variables, "Scenario.weather_of_year")
        return cls(
            tuple(YearReplacement(v, year, start, end, region, region_crs) for v in names),
            name=name or f"weather of {year}",
        )

    @classmethod
    def from_series(cls, data: Any, variables: str | Iterable[str] | None = None, *,
                    name: str = "", start: Any = None, end: Any = None, region: Any = None,
                    region_crs: Any = None, year: int | None = None) -> Scenario:
        """Replace drivers by a user's own daily series, e.g. a weather station's record.

        On each day of the data that the series covers (inside the optional window), the driver
        takes the series' value on every grid cell (of the region, if one is given). Days the
        series does not cover keep the data's values, and so does a missing value (NaN) in the
        series. The series is stored in the scenario (and its JSON file), one
        :class:`SeriesReplacement` per driver.

        Parameters
        ----------
        data
            A :class:`pandas.DataFrame` indexed by date (or with a ``date``/``day``/``time``
            column) with one column per driver, a named :class:`pandas.Series`, an
            :class:`xarray.Dataset` or named :class:`xarray.DataArray` on a ``day`` (or
            ``time``) dimension, or the path of a CSV file with a ``date``/``day``/``time``
            column and driver columns. Values in schema units
            (:data:`~kgvsf_explore.schema.DRIVER_UNITS`: mm/day, degC, W/m2, Pa, kg/m2).
        variables
            The drivers to take; None takes every driver column (a ``dayl`` column and columns
            without any value are skipped; other columns are refused).
        name
            Defaults to the CSV file's stem, else ``""``.
        start, end
            Inclusive window (in the dates after ``year`` re-dated them); series days outside
            it are dropped.
        region, region_crs
            Replace only inside this region (see :class:`Change`).
        year
            Put another year's record onto ``year`` first, by month and day
            (:func:`~kgvsf_explore.scenario.series.redate`: its first year becomes ``year``,
            29 February is dropped for a non-leap year), e.g. a station's 2012 drought
            summer onto a 2022 cube.

        Raises
        ------
        ScenarioError
            On unknown drivers, duplicated or unreadable dates, values outside
            :data:`~kgvsf_explore.schema.DRIVER_RANGES` (or that look like Kelvin,
            precipitation in metres or vapour pressure in kPa), or a series without a day in
            the window. :meth:`apply` raises when the series covers none of the data's days.

        Examples
        --------
        >>> import pandas as pd
        >>> station = pd.DataFrame(
        ...     {"prcp": [0.0, 12.5, None], "tmax": [31.0, 24.5, 27.0]},
        ...     index=pd.date_range("2022-07-01", periods=3),
        ... )
        >>> Scenario.from_series(station, name="station")
        Scenario('station': prcp from series 2022-07-01..2022-07-02 (2 days); tmax from series 2022-07-01..2022-07-03 (3 days))
        """  # noqa: E501
        where = "Scenario.from_series"
        window = (as_date(start, f"{where}: start"), as_date(end, f"{where}: end"))
        changes = []
        for variable, series in read_series(data, variables).items():
            if year is not None:
                series = redate(series, year)
            days = series.index
            keep = np.ones(len(days), dtype=bool)
            if window[0] is not None:
                keep &= days >= pd.Timestamp(window[0])
            if window[1] is not None:
                keep &= days <= pd.Timestamp(window[1])
            if not keep.any():
                raise ScenarioError(
                    f"{where}: the {variable} series ({days.min().date()}..{days.max().date()}) "
                    f"has no day in the window {window[0] or ''}..{window[1] or ''}."
                )
            try:
                changes.append(SeriesReplacement(
                    variable, tuple(days[keep]), tuple(series.to_numpy()[keep].tolist()),
                    start, end, region, region_crs,
                ))
            except ScenarioError as err:
                raise ScenarioError(f"{where}: column {variable!r}: {err}") from None
        if not name and isinstance(data, (str, os.PathLike)):
            name = Path(data).stem
        return cls(tuple(changes), name=name)

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: ``{"kgvsf_scenario_version": N, "name": ..., "changes": [...]}``.

        ``N`` is the lowest format version that holds every change: 1 for offsets, scales and
        sets only, 2 with replacements.
        """
        return {
            VERSION_KEY: format_version(self.changes),
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
        if isinstance(other, _KINDS):
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
        body = "; ".join(display.changes_text(self.changes)) or "no changes"
        return f"Scenario({self.name!r}: {body})" if self.name else f"Scenario({body})"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        title = f"Scenario <b>{html.escape(self.name)}</b>" if self.name else "Scenario"
        return display.changes_html(self.changes, title)

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
            order and clipped as described in the package docstring; dtypes and attributes kept,
            the CRS kept as a ``spatial_ref`` coordinate, and ``attrs["kgvsf_scenario"]`` holding
            the scenario's JSON. Dask-backed input gives a lazy result.

        Raises
        ------
        ScenarioError
            When a changed driver is missing, a window matches no day, a region matches no grid
            cell (or the drivers have no spatial dims), ``region_crs`` is given but the data
            has no CRS, the data lacks the days of a :class:`YearReplacement`'s year, or a
            :class:`SeriesReplacement` covers none of the data's days.

        Warns
        -----
        ScenarioClipWarning
            With numpy-backed data, when impossible results were clipped.
        """
        result, report = apply_scenario(self, obj)
        if report:
            msg = "; ".join(report)
            label = f" {self.name!r}" if self.name else ""
            warnings.warn(
                f"Scenario{label} produced physically impossible values, clipped: {msg} "
                f"(see the kgvsf_explore.scenario docstring).",
                ScenarioClipWarning,
                stacklevel=2,
            )
        return result


def _variables(variables: str | Iterable[str] | None, where: str) -> tuple[str, ...]:
    """Driver names from None (every changeable driver), one name or several."""
    if variables is None:
        return CHANGEABLE_DRIVERS
    names = (variables,) if isinstance(variables, str) else tuple(variables)
    if not names:
        raise ScenarioError(f"{where}: variables is empty; give driver names or None for all.")
    if len(set(names)) != len(names):
        raise ScenarioError(f"{where}: variables names a driver twice: {list(names)}.")
    return names
