"""How the satellite sees the sample world: revisit dates, clouds and sensor noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage, stats

from .params import NOISE_ABS, NOISE_REL
from .random_fields import gaussian_field_2d


def revisit_dates(
    rng: np.random.Generator, start: pd.Timestamp, end: pd.Timestamp, every: int = 5,
    extra: float = 0.15,
) -> pd.DatetimeIndex:
    """Acquisitions every ``every`` days from a random phase, plus occasional ones from an
    overlapping orbit 2-3 days later (probability ``extra`` per cycle), as Sentinel-2 has."""
    base = pd.date_range(start + pd.Timedelta(days=int(rng.integers(every))), end,
                         freq=f"{every}D")
    lag = rng.integers(2, 4, size=len(base))
    keep = rng.random(len(base)) < extra
    more = base[keep] + pd.to_timedelta(lag[keep], unit="D")
    return base.append(more[more <= end]).sort_values().unique()


class CloudModel:
    """Spatially coherent clouds, more likely on rainy days.

    For each image date a cloud cover fraction is drawn from a Beta distribution (mean 0.22 on
    dry days, 0.72 on days with more than 1 mm of rain over the scene) by inverse CDF of a stored
    uniform, and a smooth random field (correlation ~300 m) is thresholded to that fraction. The
    random draws do not depend on the weather, so a what-if scenario with less rain keeps the same
    cloud shapes but fewer and smaller clouds.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        n_dates: int,
        shape: tuple[int, int],
        wet_beta: tuple[float, float] = (2.0, 0.8),
        dry_beta: tuple[float, float] = (0.45, 1.6),
        buffer_px: int = 0,
    ):
        self.u = rng.random(n_dates)
        self.fields = gaussian_field_2d(rng, n_dates, shape, length_px=12.0).astype(np.float32)
        self.wet_beta, self.dry_beta, self.buffer_px = wet_beta, dry_beta, int(buffer_px)

    def mask(self, i: int, scene_prcp: float) -> np.ndarray:
        """Boolean cloud mask of image ``i`` given the scene-mean rain of that day.

        The Beta parameters of the cover fraction are the climate's (defaults: the corn belt);
        ``buffer_px`` dilates the mask, as a cloud screening algorithm buffers its clouds
        (Landsat's Fmask).
        """
        a, b = self.wet_beta if scene_prcp > 1.0 else self.dry_beta
        cover = stats.beta.ppf(self.u[i], a, b)
        if cover < 0.02:
            return np.zeros(self.fields.shape[1:], dtype=bool)
        out = self.fields[i] < stats.norm.ppf(min(cover, 0.999))
        if self.buffer_px > 0:
            out = ndimage.binary_dilation(out, iterations=self.buffer_px)
        return out


def add_noise(
    rng: np.random.Generator, truth: np.ndarray, noise_abs: float = NOISE_ABS,
    noise_rel: float = NOISE_REL,
) -> np.ndarray:
    """Sensor noise: Gaussian with standard deviation ``noise_abs + noise_rel * r`` (defaults:
    Sentinel-2's ``NOISE_ABS + NOISE_REL * r``)."""
    noise = rng.standard_normal(truth.shape, dtype=np.float32)
    return np.clip(truth + noise * (noise_abs + noise_rel * truth), 0.0, 1.0, dtype=np.float32)
