"""Persistence: each pixel's last clear observation, whatever its age."""

from __future__ import annotations

import numpy as np

from .history import PixelHistory

__all__ = ["persistence"]


def persistence(hist: PixelHistory, i: int, rows: np.ndarray, cols: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance ``(n, C)`` and NDVI ``(n,)`` of the last clear observation of each pixel on
    or before image date index ``i`` (NaN for a pixel never seen clear)."""
    p = hist.pixels(i, rows, cols)
    return p["last"], p["last_ndvi"]
