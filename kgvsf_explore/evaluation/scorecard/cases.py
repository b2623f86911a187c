"""The cases every method is scored on: forecast tiles, held-out dates, the test period.

The test period is the validation period of
:func:`~kgvsf_explore.training.data.split_years`: the last calendar year of a multi-year cube,
the last 30 % of a one-year cube. Forecast cases are drawn by
:class:`~kgvsf_explore.cube.sampler.Sampler` (seeded) with their origin ``t`` in that period;
their context may reach back before it, as a user's forecast would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...cube.cube import Cube
from ...cube.sampler import Sample, Sampler
from ...models.config import ModelConfig

__all__ = ["ForecastCase", "forecast_cases", "gap_dates", "test_period"]


def test_period(cube: Cube) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last image date of the held-out period."""
    from ...training.data import split_years

    _, test, _ = split_years(cube)
    return test.times[0], test.times[-1]


@dataclass
class ForecastCase:
    """One forecast case: a tile, an origin ``t`` and a horizon ``k``."""

    sample: Sample
    i: int  # index of t among the cube's image dates

    @property
    def k(self) -> int:
        """Horizon, days."""
        return int(self.sample.k)

    @property
    def target(self) -> pd.Timestamp:
        """Date of ``t + k``."""
        return pd.Timestamp(self.sample.t) + pd.Timedelta(days=self.k)


def forecast_cases(cube: Cube, cfg: ModelConfig, n_cases: int, seed: int = 0
                   ) -> list[ForecastCase]:
    """``n_cases`` seeded cases with ``t`` in the test period (truth read when the cube has it).
    """
    first, _ = test_period(cube)
    sub = cube.sel_time(first - pd.Timedelta(days=120), None)
    sampler = Sampler(sub, tile=cfg.tile, context=cfg.context, k_min=cfg.k_min,
                      k_max=cfg.k_max, seed=seed, n_samples=n_cases, bands=tuple(cfg.bands))
    times = cube.times.values
    out: list[ForecastCase] = []
    rng = np.random.default_rng(seed)
    tries = 0
    while len(out) < n_cases and tries < 40:
        tries += 1
        for s in sampler.sample(n_cases, seed=int(rng.integers(2**31))):
            if pd.Timestamp(s.t) < first:
                continue
            out.append(ForecastCase(s, int(np.searchsorted(times, np.datetime64(s.t, "ns")))))
            if len(out) == n_cases:
                break
    if not out:
        raise ValueError("no forecast case could be drawn in the test period "
                         f"({first.date()} on); the cube may be too short or too cloudy")
    return out


def gap_dates(cube: Cube, n_dates: int, min_clear: float = 0.3, k_max: int = 60) -> list[int]:
    """Indices of up to ``n_dates`` image dates of the test period to hold out, evenly spread,
    each at least ``min_clear`` clear and with an earlier image within ``k_max`` days."""
    first, last = test_period(cube)
    times = cube.times
    clear = np.asarray(cube.valid.mean(("y", "x")).values)
    cand = [j for j in range(1, len(times))
            if first <= times[j] <= last and clear[j] >= min_clear
            and 1 <= (times[j] - times[j - 1]).days <= k_max]
    if len(cand) <= n_dates:
        return cand
    pick = np.linspace(0, len(cand) - 1, n_dates).round().astype(int)
    return [cand[p] for p in sorted(set(pick))]
