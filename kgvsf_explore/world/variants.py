"""Random weather what-ifs for training: the same world under other plausible weather.

Pretraining data from a few worlds holds few strong weather contrasts (one drought year per world
at best). The simulator can add them: each variant re-runs a world under a random scenario of
growing-season dry spells, heat waves and wet spells. Every objective sees the same variants, so
the comparison between objectives stays fair; the test worlds of the evaluation are never
variants of training worlds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..scenario import Scenario

if TYPE_CHECKING:
    import xarray as xr


def random_weather_scenario(rng: np.random.Generator, years: tuple[int, ...]) -> Scenario:
    """Two to four random growing-season weather changes in random ``years``."""
    texts = []
    for _ in range(int(rng.integers(2, 5))):
        year = int(rng.choice(years))
        start = pd.Timestamp(f"{year}-04-15") + pd.Timedelta(days=int(rng.integers(0, 120)))
        end = start + pd.Timedelta(days=int(rng.integers(15, 61)))
        window = f"from {start.date()} to {end.date()}"
        kind = rng.choice(["dry", "heat", "wet"], p=[0.45, 0.35, 0.2])
        if kind == "dry":
            texts.append(f"prcp x{rng.uniform(0.0, 0.3):.2f} {window}")
        elif kind == "heat":
            dt = rng.uniform(1.0, 5.0)
            texts += [f"tmax +{dt:.1f} {window}", f"tmin +{dt:.1f} {window}"]
        else:
            texts.append(f"prcp x{rng.uniform(1.5, 3.0):.2f} {window}")
    return Scenario.parse(*texts, name="random-weather")


def weather_differs(a: xr.Dataset, b: xr.Dataset, drivers: Sequence[str]) -> np.ndarray:
    """``(days,)`` bool: whether any of ``drivers`` differs anywhere between datasets ``a`` and
    ``b`` (a world and a weather variant of it, same days) on each day; NaN equals NaN."""
    from .. import schema

    differs = np.zeros(a.sizes[schema.DAY_DIM], bool)
    for v in drivers:
        x, y = np.asarray(a[v].values), np.asarray(b[v].values)
        other = tuple(i for i, d in enumerate(a[v].dims) if d != schema.DAY_DIM)
        differs |= np.any((x != y) & ~(np.isnan(x) & np.isnan(y)), axis=other)
    return differs
