"""The dashboard's weather controls as data, and the :class:`Scenario` they describe.

Every change is limited to the forecast period ``t+1 .. t+K``: the model's context keeps the
observed weather (the decision of :mod:`kgvsf_explore.inference.region`), and the simulator's
true answer is run with the very same scenario, so both see the same weather.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..scenario import Change, Scenario

#: Significant digits kept of the controls' numbers (a slider's step is 0.05 at the finest).
SIGNIFICANT_DIGITS = 6


def clean(value: float) -> float:
    """``value`` rounded to :data:`SIGNIFICANT_DIGITS` significant digits.

    >>> clean(4.000000000000002), clean(0.15000000000000002), clean(-0.0)
    (4.0, 0.15, 0.0)
    """
    return float(f"{float(value):.{SIGNIFICANT_DIGITS}g}") + 0.0


def _day(value: Any) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


@dataclass(frozen=True)
class WeatherControls:
    """Values of the driver controls.

    Attributes
    ----------
    temp_offset
        Added to ``tmax`` and ``tmin`` (degC).
    rain_scale
        Multiplies ``prcp``.
    srad_scale
        Multiplies ``srad``.
    drought
        ``(first, last)`` day with no rain at all, or None.
    year
        Replace the forecast period's weather by the same calendar days of this year, or None.
        Applied first, so the other controls act on that year's weather.

    Examples
    --------
    >>> c = WeatherControls(temp_offset=3.0, rain_scale=0.5)
    >>> print(c.scenario("2022-07-01", 60).variables)
    ('tmax', 'tmin', 'prcp')
    >>> c.period("2022-07-01", 60)
    ('2022-07-02', '2022-08-30')
    >>> WeatherControls().scenario("2022-07-01", 60) is None
    True
    >>> WeatherControls(temp_offset=4.000000000000002).temp_offset  # a slider's float noise
    4.0
    """

    temp_offset: float = 0.0
    rain_scale: float = 1.0
    srad_scale: float = 1.0
    drought: tuple[Any, Any] | None = None
    year: int | None = None

    def __post_init__(self) -> None:
        # browsers send slider values with float noise (4.000000000000002): keep
        # SIGNIFICANT_DIGITS digits so the scenario, its text and its caches see clean numbers
        for name in ("temp_offset", "rain_scale", "srad_scale"):
            object.__setattr__(self, name, clean(getattr(self, name)))

    def period(self, t: Any, k_max: int) -> tuple[str, str]:
        """The forecast period ``t+1 .. t+k_max`` as ISO dates."""
        t = _day(t)
        return ((t + pd.Timedelta(days=1)).date().isoformat(),
                (t + pd.Timedelta(days=k_max)).date().isoformat())

    def drought_window(self, t: Any, k_max: int) -> tuple[str, str] | None:
        """The drought window clipped to the forecast period (None when they do not meet)."""
        if self.drought is None:
            return None
        a, b = (_day(v) for v in self.drought)
        lo, hi = (pd.Timestamp(v) for v in self.period(t, k_max))
        a, b = max(a, lo), min(b, hi)
        if a > b:
            return None
        return a.date().isoformat(), b.date().isoformat()

    def notes(self, t: Any, k_max: int) -> list[str]:
        """Explanations for controls that cannot act (shown beside the maps)."""
        out = []
        if self.drought is not None and self.drought_window(t, k_max) is None:
            a, b = (_day(v).date() for v in self.drought)
            lo, hi = self.period(t, k_max)
            out.append(f"the drought window {a}..{b} lies outside the forecast period {lo}..{hi}"
                       " (the context keeps the observed weather), so it changes nothing")
        return out

    def scenario(self, t: Any, k_max: int) -> Scenario | None:
        """The scenario of these controls for a forecast from ``t`` (None: observed weather)."""
        a, b = self.period(t, k_max)
        parts: list[Scenario] = []
        if self.year is not None:
            parts.append(Scenario.weather_of_year(int(self.year), a, b))
        if self.temp_offset:
            parts.append(Scenario.warming(float(self.temp_offset), a, b,
                                            name=f"{self.temp_offset:+g} degC"))
        if self.rain_scale != 1.0:
            parts.append(Scenario.rain_scaled(float(self.rain_scale), a, b))
        if self.srad_scale != 1.0:
            parts.append(Scenario((Change("srad", "scale", float(self.srad_scale), a, b),),
                                  name=f"radiation x{self.srad_scale:g}"))
        window = self.drought_window(t, k_max)
        if window is not None:
            parts.append(Scenario.dry_spell(*window, name=f"drought {window[0]}..{window[1]}"))
        if not parts:
            return None
        out = parts[0]
        for p in parts[1:]:
            out = out & p
        return out


def as_date(value: Any) -> dt.date:
    """A ``datetime.date`` from a date, timestamp, numpy datetime or ISO string."""
    return pd.Timestamp(value).date()
