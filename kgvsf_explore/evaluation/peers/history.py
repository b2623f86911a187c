"""Each pixel's clear-observation history, vectorised: what every peer reads.

For image dates ``t_0 < ... < t_{T-1}`` and a validity mask ``(T, H, W)``, :class:`PixelHistory`
keeps, for every date index ``i`` and pixel, the index of the last clear observation on or
before ``t_i`` (``last``), of the one before that (``prev``, via ``before``) and of the first on
or after ``t_i`` (``next``). Persistence, linear interpolation, the season grids of the
classifiers and the tree forecaster's features are all gathers from these index arrays, so no
peer loops over pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ... import schema
from ...cube.cube import Cube

__all__ = ["PixelHistory", "ndvi"]


def ndvi(refl: np.ndarray, bands: tuple[str, ...], axis: int = -1) -> np.ndarray:
    """NDVI ``(B08 - B04) / (B08 + B04)`` of reflectance with the bands on ``axis``."""
    nir = np.take(refl, bands.index("B08"), axis=axis)
    red = np.take(refl, bands.index("B04"), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((nir - red) / np.maximum(nir + red, 1e-6)).astype("float32")


@dataclass
class PixelHistory:
    """Clear observations of every pixel of a cube, indexed for fast gathers.

    Attributes
    ----------
    refl
        ``(T, C, H, W)`` float32 observed reflectance in :data:`~kgvsf_explore.schema.BANDS`
        order, NaN where not valid and in bands the cube never observed.
    valid
        ``(T, H, W)`` bool: clear (not cloudy, every observed band finite).
    times
        Image dates.
    bands
        Band names of ``refl`` (always :data:`~kgvsf_explore.schema.BANDS`).
    """

    refl: np.ndarray
    valid: np.ndarray
    times: pd.DatetimeIndex
    bands: tuple[str, ...] = schema.BANDS

    def __post_init__(self) -> None:
        n = len(self.times)
        ar = np.arange(n, dtype=np.int32)[:, None, None]
        idx = np.where(self.valid, ar, -1).astype(np.int32)
        #: ``(T, H, W)`` last clear index on or before each date (-1: none)
        self.last = np.maximum.accumulate(idx, axis=0)
        #: ``(T, H, W)`` last clear index strictly before each date (-1: none)
        self.before = np.concatenate([np.full((1, *idx.shape[1:]), -1, np.int32),
                                      self.last[:-1]])
        fwd = np.where(self.valid, ar, n).astype(np.int32)
        #: ``(T, H, W)`` first clear index on or after each date (T: none)
        self.next = np.minimum.accumulate(fwd[::-1], axis=0)[::-1]
        #: ``(T, H, W)`` first clear index strictly after each date (T: none)
        self.after = np.concatenate([self.next[1:],
                                     np.full((1, *idx.shape[1:]), n, np.int32)])
        self.days = (self.times.normalize() - pd.Timestamp("1970-01-01")).days.to_numpy()
        self.ndvi = ndvi(self.refl, self.bands, axis=1)

    @classmethod
    def from_cube(cls, cube: Cube) -> PixelHistory:
        """Read a cube's bands and validity into memory (bands it lacks are all NaN)."""
        ds = cube.ds
        valid = np.asarray(cube.valid.values, bool)
        shape = (len(cube.times), ds.sizes[schema.Y_DIM], ds.sizes[schema.X_DIM])
        observed = set(cube.observed_bands)
        refl = np.stack([np.asarray(ds[b].values, "float32") if b in observed
                         else np.full(shape, np.nan, "float32") for b in schema.BANDS], axis=1)
        refl = np.where(valid[:, None], refl, np.float32(np.nan))
        return cls(refl, valid, cube.times)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the pixel grid."""
        return self.valid.shape[1], self.valid.shape[2]

    def gather(self, where: np.ndarray, rows: np.ndarray, cols: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Reflectance ``(n, C)`` and NDVI ``(n,)`` at date indices ``where`` (-1 or T: NaN)."""
        ok = (where >= 0) & (where < len(self.times))
        w = np.clip(where, 0, len(self.times) - 1)
        refl = self.refl[w, :, rows, cols]
        nd = self.ndvi[w, rows, cols]
        refl = np.where(ok[:, None], refl, np.float32(np.nan))
        nd = np.where(ok, nd, np.float32(np.nan))
        return refl.astype("float32"), nd.astype("float32")

    def age(self, where: np.ndarray, day: np.ndarray | int) -> np.ndarray:
        """Days from the observation at ``where`` to ``day`` (days since 1970; NaN if none)."""
        ok = (where >= 0) & (where < len(self.times))
        d = self.days[np.clip(where, 0, len(self.times) - 1)]
        return np.where(ok, np.asarray(day) - d, np.nan).astype("float32")

    def pixels(self, i: int, rows: np.ndarray, cols: np.ndarray) -> dict[str, np.ndarray]:
        """The last and the previous clear observation of pixels ``(rows, cols)`` as of date
        index ``i`` (``last``/``last_ndvi``/``last_age``, ``prev``/``prev_ndvi``/``prev_age``;
        ages in days before ``t_i``)."""
        day = int(self.days[i])
        l1 = self.last[i, rows, cols]
        l2 = np.where(l1 >= 0, self.before[np.clip(l1, 0, None), rows, cols], -1)
        last, last_nd = self.gather(l1, rows, cols)
        prev, prev_nd = self.gather(l2, rows, cols)
        return {"last": last, "last_ndvi": last_nd, "last_age": self.age(l1, day),
                "prev": prev, "prev_ndvi": prev_nd, "prev_age": self.age(l2, day)}

    def interpolate(self, day: int, rows: np.ndarray, cols: np.ndarray, *,
                    exclude: int | None = None, until: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Linear interpolation in time of reflectance ``(n, C)`` and NDVI ``(n,)`` at ``day``
        (days since 1970) between each pixel's clear observations before and after it.

        ``exclude`` (a date index) is left out, as when that date is the one being filled;
        observations after date index ``until`` are not used. Where only one side exists its
        value is used; where neither, NaN.
        """
        n = len(self.times)
        if exclude is not None:
            lo = self.before[exclude, rows, cols]
            hi = self.after[exclude, rows, cols]
        else:
            i = int(np.searchsorted(self.days, day, "right")) - 1  # last date <= day
            j = int(np.searchsorted(self.days, day, "left"))  # first date >= day
            lo = self.last[i, rows, cols] if i >= 0 else np.full(len(rows), -1, np.int32)
            hi = self.next[j, rows, cols] if j < n else np.full(len(rows), n, np.int32)
        if until is not None:
            hi = np.where(hi > until, n, hi)
        a, a_nd = self.gather(lo, rows, cols)
        b, b_nd = self.gather(hi, rows, cols)
        da = self.age(lo, day)
        db = -self.age(hi, day)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(np.isfinite(da) & np.isfinite(db), da / np.maximum(da + db, 1e-9), np.nan)
        w = np.where(np.isnan(da), 1.0, np.where(np.isnan(db), 0.0, w)).astype("float32")
        refl = np.where(np.isnan(a), b, np.where(np.isnan(b), a, a + w[:, None] * (b - a)))
        nd = np.where(np.isnan(a_nd), b_nd, np.where(np.isnan(b_nd), a_nd,
                                                   a_nd + w * (b_nd - a_nd)))
        return refl.astype("float32"), nd.astype("float32")

    def season_grid(self, start: pd.Timestamp, steps: int, rows: np.ndarray,
                    cols: np.ndarray, every: int = 10) -> np.ndarray:
        """Bands and NDVI interpolated to ``steps`` dates ``every`` days apart from ``start``:
        ``(n, steps * (C + 1))``, date-major (all of date 0, then date 1, ...)."""
        d0 = int((pd.Timestamp(start).normalize() - pd.Timestamp("1970-01-01")).days)
        out = []
        for s in range(steps):
            refl, nd = self.interpolate(d0 + every * s, rows, cols)
            out.append(np.concatenate([refl, nd[:, None]], 1))
        return np.concatenate(out, 1)
