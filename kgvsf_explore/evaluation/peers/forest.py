"""Random forests on each pixel's season of bands and NDVI: crop type and soil moisture.

- :class:`CropForest` classifies a pixel's crop from its year of bands and NDVI interpolated to
  a fixed 10-day grid (1 January to 31 December, 37 dates);
- :class:`SoilMoistureForest` regresses the root-zone soil moisture on day ``t`` from the last
  90 days of bands and NDVI on the same kind of grid (ending at ``t``), the last clear
  observation and its age, the day of year and the weather of the 30 days up to ``t``.

Both learn from the labelled part of a :class:`~kgvsf_explore.tasks.split.FieldYearSplit`
(group-A fields in the finetune years), the labels the model's heads learn from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import schema
from ...cube.cube import Cube
from ...tasks.split import FieldYearSplit
from .drivers import PAST_DAYS, DriverSums
from .history import PixelHistory

__all__ = ["CropForest", "SoilMoistureForest", "crop_of_year"]

#: Dates of the crop classifier's season grid (every 10 days from 1 January).
SEASON_STEPS = 37
#: Dates of the soil-moisture regressor's grid (every 10 days, the last on ``t``).
SM_STEPS = 9


def crop_of_year(ds, year: int) -> np.ndarray:
    """The ``(y, x)`` crop codes of ``year`` (crop maps with a ``year`` dimension are indexed;
    a static map is the same every year)."""
    return np.asarray(schema.crop_map(ds, year).values).astype(np.int64)


def _forest(classifier: bool, seed: int, n_estimators: int):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestClassifier if classifier else RandomForestRegressor
    return cls(n_estimators=n_estimators, min_samples_leaf=2 if classifier else 5,
               max_features="sqrt", n_jobs=-1, random_state=seed)


class CropForest:
    """Random forest crop classifier on the interpolated season of each pixel.

    Parameters
    ----------
    n_estimators
        Trees.
    max_rows
        Training pixels (pixel-years) drawn at most.
    seed
        Random state (row draw and forest).
    """

    name = "random_forest"

    def __init__(self, n_estimators: int = 200, max_rows: int = 30_000, seed: int = 0) -> None:
        self.n_estimators, self.max_rows, self.seed = n_estimators, max_rows, seed
        self.model = None

    @staticmethod
    def features(hist: PixelHistory, year: int, rows: np.ndarray, cols: np.ndarray
                 ) -> np.ndarray:
        """``(n, 37 * 8)`` season grid of ``year`` for pixels ``(rows, cols)``."""
        return np.nan_to_num(hist.season_grid(pd.Timestamp(f"{year}-01-01"), SEASON_STEPS,
                                              rows, cols), nan=-1.0)

    def fit(self, cube: Cube, split: FieldYearSplit, hist: PixelHistory | None = None
            ) -> CropForest:
        """Fit on the finetune part of ``split`` (group-A fields, finetune years)."""
        hist = hist or PixelHistory.from_cube(cube)
        rng = np.random.default_rng(self.seed)
        rr, cc = np.nonzero(split.pixels("finetune"))
        years = split.years("finetune")
        per = max(1, self.max_rows // len(years))
        xs, ys = [], []
        for year in years:
            pick = rng.permutation(len(rr))[:per]
            r, c = rr[pick], cc[pick]
            xs.append(self.features(hist, year, r, c))
            ys.append(crop_of_year(cube.ds, year)[r, c])
        self.model = _forest(True, self.seed, self.n_estimators).fit(np.concatenate(xs),
                                                                     np.concatenate(ys))
        return self

    def predict_map(self, hist: PixelHistory, year: int) -> np.ndarray:
        """``(H, W)`` predicted crop codes of ``year``."""
        if self.model is None:
            raise RuntimeError("fit the forest first")
        h, w = hist.shape
        rr, cc = np.divmod(np.arange(h * w), w)
        out = np.empty(h * w, np.int64)
        for a in range(0, h * w, 20_000):
            out[a:a + 20_000] = self.model.predict(self.features(hist, year, rr[a:a + 20_000],
                                                                 cc[a:a + 20_000]))
        return out.reshape(h, w)


class SoilMoistureForest:
    """Random forest regression of soil moisture on day ``t`` (see the module docstring)."""

    name = "random_forest"

    def __init__(self, n_estimators: int = 100, max_rows: int = 20_000, seed: int = 0) -> None:
        self.n_estimators, self.max_rows, self.seed = n_estimators, max_rows, seed
        self.model = None

    @staticmethod
    def features(hist: PixelHistory, sums: DriverSums, day: int, rows: np.ndarray,
                 cols: np.ndarray) -> np.ndarray:
        """Features of pixels ``(rows, cols)`` on ``day`` (days since 1970)."""
        t = pd.Timestamp("1970-01-01") + pd.Timedelta(days=int(day))
        grid = hist.season_grid(t - pd.Timedelta(days=10 * (SM_STEPS - 1)), SM_STEPS, rows, cols)
        i = int(np.searchsorted(hist.days, day, "right")) - 1
        p = hist.pixels(max(i, 0), rows, cols)
        age = p["last_age"] + (day - hist.days[max(i, 0)])
        past = sums.mean(day - PAST_DAYS + 1, day, rows, cols)
        week = sums.mean(day - 6, day, rows, cols)
        doy = np.full((len(rows), 1), t.day_of_year, "float32")
        x = np.concatenate([grid, p["last"], p["last_ndvi"][:, None], age[:, None], doy, past,
                            week], 1)
        return np.nan_to_num(x, nan=-1.0)

    def fit(self, cube: Cube, split: FieldYearSplit, hist: PixelHistory | None = None,
            sums: DriverSums | None = None) -> SoilMoistureForest:
        """Fit on group-A pixels at image dates of the finetune years."""
        hist = hist or PixelHistory.from_cube(cube)
        sums = sums or DriverSums(cube)
        sm = cube.soil_moisture
        if sm is None:
            raise ValueError("the cube has no soil_moisture to learn from")
        rng = np.random.default_rng(self.seed)
        rr, cc = np.nonzero(split.pixels("finetune"))
        years = set(split.years("finetune"))
        dates = [i for i, t in enumerate(hist.times) if t.year in years]
        per = max(1, self.max_rows // len(dates))
        day_index = {d: j for j, d in enumerate(
            (pd.DatetimeIndex(sm[schema.DAY_DIM].values) - pd.Timestamp("1970-01-01")).days)}
        sm_values = sm.values
        xs, ys = [], []
        for i in dates:
            day = int(hist.days[i])
            if day not in day_index:
                continue
            pick = rng.integers(0, len(rr), per)
            r, c = rr[pick], cc[pick]
            xs.append(self.features(hist, sums, day, r, c))
            ys.append(np.asarray(sm_values[day_index[day], r, c], "float32"))
        x, y = np.concatenate(xs), np.concatenate(ys)
        ok = np.isfinite(y)
        self.model = _forest(False, self.seed, self.n_estimators).fit(x[ok], y[ok])
        return self

    def predict(self, hist: PixelHistory, sums: DriverSums, day: int, rows: np.ndarray,
                cols: np.ndarray) -> np.ndarray:
        """Soil moisture ``(n,)`` on ``day`` (days since 1970)."""
        if self.model is None:
            raise RuntimeError("fit the forest first")
        return self.model.predict(self.features(hist, sums, day, rows, cols)).astype("float32")
