"""Day-of-year climatology: each pixel's mean clear observation near the target's day of year
in the other years of the cube."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .history import PixelHistory

__all__ = ["WINDOW_DAYS", "climatology"]

#: Half-width of the day-of-year window, days.
WINDOW_DAYS = 10


def climatology(hist: PixelHistory, target: pd.Timestamp, rows: np.ndarray, cols: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance ``(n, C)`` and NDVI ``(n,)``: the mean of each pixel's clear observations
    within +-:data:`WINDOW_DAYS` days of ``target``'s day of year, in every year but
    ``target``'s (NaN where there is none, e.g. a one-year cube)."""
    target = pd.Timestamp(target)
    doys = hist.times.day_of_year.to_numpy()
    near = np.abs((doys - target.day_of_year + 182) % 365 - 182) <= WINDOW_DAYS
    sel = np.flatnonzero(near & (hist.times.year.to_numpy() != target.year))
    n = len(rows)
    if not len(sel):
        return (np.full((n, hist.refl.shape[1]), np.nan, "float32"),
                np.full(n, np.nan, "float32"))
    refl = hist.refl[sel][:, :, rows, cols]  # (m, C, n)
    nd = hist.ndvi[sel][:, rows, cols]  # (m, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(refl, 0).T.astype("float32"), np.nanmean(nd, 0).astype("float32")
