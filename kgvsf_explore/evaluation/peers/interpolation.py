"""Linear temporal interpolation: the gap-filling peer."""

from __future__ import annotations

import numpy as np

from .history import PixelHistory

__all__ = ["linear_fill"]


def linear_fill(hist: PixelHistory, i: int, rows: np.ndarray, cols: np.ndarray,
                until: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance ``(n, C)`` and NDVI ``(n,)`` at image date index ``i`` interpolated linearly
    in time between each pixel's clear observations before and after it (date ``i`` itself
    left out, and any after date index ``until``); one side only: that side's value; neither:
    NaN."""
    return hist.interpolate(int(hist.days[i]), rows, cols, exclude=i, until=until)
