"""Gradient-boosted trees forecasting each band and NDVI at ``t + k`` per pixel.

One scikit-learn :class:`~sklearn.ensemble.HistGradientBoostingRegressor` per band and one for
NDVI, each learning the change from the pixel's last clear observation (persistence is what the
trees correct), on :func:`~.features.forecast_features`. Training rows are drawn from cubes (the
worlds the model's weights were trained on, or the training part of a user's cube): for random
pixels and origin dates, a later image date within ``k_max`` days where the pixel is clear is
the target. The rows are cached as ``.npz`` (no pickle); fitting is seeded.

Fitting and prediction run scikit-learn's OpenMP loops on one thread: measured on 2 busy
cores, two OpenMP threads made a fit 10-35x slower (spin-waiting threads on shared cores), and
one thread is as fast as two on an idle machine for these sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ... import schema
from ...cube.cube import Cube
from .drivers import DriverSums
from .features import FEATURE_NAMES, forecast_features
from .history import PixelHistory

__all__ = ["TreeForecaster", "forecast_rows"]


def forecast_rows(cubes: Sequence[Cube], *, pixels_per_date: int = 64, k_max: int = 60,
                  seed: int = 0, period: tuple[str, str] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Training rows ``(X, Y)`` of the tree forecaster from ``cubes``.

    ``Y`` is ``(n, C + 1)``: each band's and NDVI's change from the last clear observation to
    the (observed, clear) target. ``period`` restricts the origin and target dates.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for cube in cubes:
        hist = PixelHistory.from_cube(cube)
        sums = DriverSums(cube)
        h, w = hist.shape
        times = hist.times
        lo, hi = 0, len(times)
        if period is not None:
            lo = int(np.searchsorted(times.values, np.datetime64(pd.Timestamp(period[0]))))
            hi = int(np.searchsorted(times.values, np.datetime64(pd.Timestamp(period[1])),
                                     "right"))
        for i in range(lo, hi):
            far = int(np.searchsorted(hist.days, hist.days[i] + k_max, "right"))
            far = min(far, hi)
            if far <= i + 1:
                continue
            rows = rng.integers(0, h, 3 * pixels_per_date)
            cols = rng.integers(0, w, 3 * pixels_per_date)
            q = rng.integers(i + 1, far, 3 * pixels_per_date)
            ok = hist.valid[q, rows, cols] & (hist.last[i, rows, cols] >= 0)
            rows, cols, q = rows[ok][:pixels_per_date], cols[ok][:pixels_per_date], \
                q[ok][:pixels_per_date]
            if not len(rows):
                continue
            k = (hist.days[q] - hist.days[i]).astype(np.int64)
            x, p = forecast_features(hist, sums, i, k, rows, cols)
            refl, nd = hist.gather(q, rows, cols)
            y = np.concatenate([refl - p["last"], (nd - p["last_ndvi"])[:, None]], 1)
            xs.append(x)
            ys.append(y)
    if not xs:
        raise ValueError("no training rows: the cubes have no clear image pairs within "
                         f"{k_max} days")
    return np.concatenate(xs), np.concatenate(ys).astype("float32")


class TreeForecaster:
    """Per-pixel gradient-boosted trees: bands and NDVI at ``t + k``.

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes
        :class:`~sklearn.ensemble.HistGradientBoostingRegressor` settings.
    seed
        Random state of every regressor.
    """

    name = "trees"

    def __init__(self, max_iter: int = 200, learning_rate: float = 0.1,
                 max_leaf_nodes: int = 31, seed: int = 0) -> None:
        self.params = {"max_iter": max_iter, "learning_rate": learning_rate,
                       "max_leaf_nodes": max_leaf_nodes, "random_state": seed,
                       "early_stopping": False}
        self.models: list = []
        #: Rows the trees were fitted on.
        self.n_rows = 0

    def fit(self, x: np.ndarray, y: np.ndarray) -> TreeForecaster:
        """Fit one regressor per column of ``y`` (bands, then NDVI); rows with a NaN target
        (a band the cubes never observed) are left out of that column's fit."""
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        if x.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"expected {len(FEATURE_NAMES)} feature columns, got {x.shape[1]}")
        self.models = []
        self.n_rows = int(len(x))
        for j in range(y.shape[1]):
            ok = np.isfinite(y[:, j])
            if ok.sum() < 50:
                self.models.append(None)  # a band no training cube observed
                continue
            m = HistGradientBoostingRegressor(**self.params)
            with threadpool_limits(limits=1, user_api="openmp"):
                self.models.append(m.fit(x[ok], y[ok, j]))
        return self

    def predict(self, hist: PixelHistory, sums: DriverSums, i: int, k: np.ndarray | int,
                rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reflectance ``(n, C)`` and NDVI ``(n,)`` at ``t_i + k`` (NaN where the pixel was
        never seen clear, and for bands no training cube observed)."""
        if not self.models:
            raise RuntimeError("fit the trees first")
        from threadpoolctl import threadpool_limits

        x, p = forecast_features(hist, sums, i, k, rows, cols)
        out = np.full((len(rows), len(self.models)), np.nan, "float32")
        with threadpool_limits(limits=1, user_api="openmp"):
            for j, m in enumerate(self.models):
                if m is not None:
                    out[:, j] = m.predict(x)
        base = np.concatenate([p["last"], p["last_ndvi"][:, None]], 1)
        pred = base + out
        return pred[:, : len(schema.BANDS)], pred[:, len(schema.BANDS)]
