"""Per-pixel features of the tree forecaster (never soil moisture, truth bands or labels).

For a pixel, an origin date index ``i`` (day ``t``) and a horizon ``k``: the last clear bands and
NDVI and their age, the clear observation before that and its age, the day of year of ``t`` and
of ``t + k``, ``k``, and the driver summaries of :meth:`DriverSums.summary` (means over
``(t, t + k]`` and over the 30 days up to ``t``, rain totals of both). A what-if gives the
scenario's drivers to :class:`DriverSums`, exactly as the model gets them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import schema
from .drivers import DriverSums
from .history import PixelHistory

__all__ = ["FEATURE_NAMES", "forecast_features"]

_B = list(schema.BANDS)
_D = list(schema.DRIVERS)
#: Column names of :func:`forecast_features`.
FEATURE_NAMES: tuple[str, ...] = (
    *[f"last_{b}" for b in _B], "last_ndvi", "last_age",
    *[f"prev_{b}" for b in _B], "prev_ndvi", "prev_age",
    "doy_t", "doy_target", "k",
    *[f"future_{d}" for d in _D], *[f"past_{d}" for d in _D], "future_rain", "past_rain",
)


def forecast_features(hist: PixelHistory, sums: DriverSums, i: int, k: np.ndarray | int,
                      rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, dict]:
    """Features ``(n, len(FEATURE_NAMES))`` of pixels ``(rows, cols)`` forecast ``k`` days
    after image date index ``i``, and the pixels' history (for residual targets)."""
    p = hist.pixels(i, rows, cols)
    day = int(hist.days[i])
    n = len(rows)
    k = np.broadcast_to(np.asarray(k), (n,))
    t = pd.Timestamp(hist.times[i])
    doy_t = np.full(n, t.day_of_year, "float32")
    doy_target = ((t.day_of_year - 1 + k) % 365 + 1).astype("float32")
    cols_ = [p["last"], p["last_ndvi"][:, None], p["last_age"][:, None],
             p["prev"], p["prev_ndvi"][:, None], p["prev_age"][:, None],
             doy_t[:, None], doy_target[:, None], k[:, None].astype("float32"),
             sums.summary(day, k, rows, cols)]
    return np.concatenate(cols_, 1).astype("float32"), p
