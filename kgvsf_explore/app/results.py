"""What the dashboard shows, as plain data: forecasts, a pixel's trajectory, the true answer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class Forecasts:
    """What the model says for the current region, date, horizon and weather."""

    t: pd.Timestamp
    horizon: int
    x: np.ndarray
    y: np.ndarray
    baseline: np.ndarray  # (band, y, x) reflectance under the observed weather
    scenario: np.ndarray  # (band, y, x) under the controls' weather (== baseline if none)
    ndvi_baseline: np.ndarray
    ndvi_scenario: np.ndarray
    scenario_text: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: ``(y, x)``: True where the scenario's NDVI lies inside the observed-weather forecast's
    #: interval (the change is within the forecast's uncertainty); None without intervals.
    inside: np.ndarray | None = None
    #: Level of that interval (0.8: between its 10 % and 90 % quantiles).
    interval_level: float | None = None

    @property
    def target(self) -> pd.Timestamp:
        """The forecast date ``t + horizon``."""
        return self.t + pd.Timedelta(days=self.horizon)

    @property
    def difference(self) -> np.ndarray:
        """Scenario minus baseline NDVI ``(y, x)``."""
        return self.ndvi_scenario - self.ndvi_baseline


@dataclass
class Trajectory:
    """One pixel's forecast NDVI for every horizon, its observations and its drivers."""

    x: float
    y: float
    row: int
    col: int
    t: pd.Timestamp
    days: pd.DatetimeIndex  # t+1 .. t+K
    ndvi: dict[str, np.ndarray]
    observed: pd.Series
    driver_days: pd.DatetimeIndex
    prcp: dict[str, np.ndarray]
    tmax: dict[str, np.ndarray]


@dataclass
class TrueAnswer:
    """The simulator's answer for the region: true NDVI under both weathers, every day.

    ``ndvi_observed`` and ``ndvi_scenario`` are ``(day, y, x)`` over ``days`` (``t+1 .. t+K``),
    cloud- and noise-free; ``difference`` is their difference at ``target`` (``t + k``).
    """

    target: pd.Timestamp
    days: pd.DatetimeIndex
    x: np.ndarray
    y: np.ndarray
    ndvi_observed: np.ndarray
    ndvi_scenario: np.ndarray
    seconds: float

    @property
    def difference(self) -> np.ndarray:
        """True scenario minus observed-weather NDVI ``(y, x)`` at :attr:`target`."""
        i = self.days.get_loc(self.target)
        return self.ndvi_scenario[i] - self.ndvi_observed[i]

    def at(self, x: float, y: float) -> dict[str, pd.Series]:
        """The true NDVI series of the pixel nearest ``(x, y)`` under both weathers."""
        c, r = int(np.abs(self.x - x).argmin()), int(np.abs(self.y - y).argmin())
        return {"observed": pd.Series(self.ndvi_observed[:, r, c], index=self.days),
                "scenario": pd.Series(self.ndvi_scenario[:, r, c], index=self.days)}
