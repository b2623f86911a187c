"""A stochastic daily weather generator (WGEN-like, Richardson 1981; Wilks 1999).

Runs on the coarse native grid of the drivers (the cube's ``y_met``/``x_met``):

- wet/dry days from a first-order Markov chain with seasonal p(wet|dry) < p(wet|wet), so spells
  persist; the uniforms that drive it are spatially correlated Gaussian processes;
- rain on wet days from a gamma distribution with a seasonal mean (inverse CDF of a spatially
  correlated uniform);
- tmax/tmin from seasonal means, cooler/darker on wet days, with AR(1) residuals (lag-1
  correlation 0.7) correlated between the two and in space;
- srad from the FAO-56 clear-sky radiation (0.75 Ra) times a clearness that is low on wet days,
  as the daylight-mean flux in W/m2 (Daymet's convention);
- vp as saturation vapour pressure at a dew point a little below tmin (FAO-56 eq. 11);
- dayl from latitude and day of year (FAO-56 eq. 25, 34);
- each year is ``"normal"``, ``"drought"`` (fewer wet days, less rain, warmer) or ``"wet"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .random_fields import correlated_normals
from .solar import day_length_s, extraterrestrial_radiation, saturation_vapour_pressure_pa

#: A year's weather by its kind: (p_wet_dry x, rain amount x, tmax +, tmin +).
YEAR_KINDS: dict[str, tuple[float, float, float, float]] = {
    "normal": (1.0, 1.0, 0.0, 0.0),
    "drought": (0.5, 0.7, 2.0, 0.8),
    "wet": (1.4, 1.25, -0.8, 0.2),
}


@dataclass(frozen=True)
class WeatherClimate:
    """Seasonal climate of the generator (defaults: a central-Iowa-like continental climate)."""

    latitude: float = 42.0
    p_wd_mean: float = 0.22
    p_wd_amp: float = 0.07
    p_ww_mean: float = 0.47
    p_ww_amp: float = 0.10
    rain_mean: float = 6.5  # mean wet-day rain, mm
    rain_amp: float = 3.5
    rain_shape: float = 0.75
    tmax_mean: float = 14.5
    tmax_amp: float = 15.5
    tmin_mean: float = 2.5
    tmin_amp: float = 13.5
    t_resid_sd: float = 3.5
    t_resid_sd_amp: float = 1.0  # larger in winter
    ar1: float = 0.7
    wet_tmax_shift: float = -2.5
    wet_tmin_shift: float = 1.0
    spatial_length_m: float = 1500.0
    year_swing: float = 1.0  # scales the year kinds' departures from normal (1: as listed)


def _season(doy: np.ndarray, peak_doy: float = 200.0) -> np.ndarray:
    return np.sin(2 * np.pi * (doy - (peak_doy - 91.25)) / 365.0)


def generate_weather(
    rng: np.random.Generator,
    days: pd.DatetimeIndex,
    cell_xy: np.ndarray,
    year_kind: dict[int, str],
    climate: WeatherClimate | None = None,
) -> dict[str, np.ndarray]:
    """Daily drivers on the cells of a coarse grid.

    Parameters
    ----------
    rng
        The weather's own random stream.
    days
        Consecutive days to simulate.
    cell_xy
        ``(cells, 2)`` projected coordinates of the grid cells, metres.
    year_kind
        Kind of each calendar year (keys of :data:`YEAR_KINDS`).
    climate
        Seasonal climate parameters.

    Returns
    -------
    dict
        ``prcp``, ``tmax``, ``tmin``, ``srad``, ``vp``, ``dayl`` as ``(days, cells)`` float64.
    """
    c = climate or WeatherClimate()
    n_days, n_cells = len(days), len(cell_xy)
    doy = days.day_of_year.to_numpy().astype(float)
    season = _season(doy)
    kinds = np.array([YEAR_KINDS[year_kind.get(y, "normal")] for y in days.year])
    if c.year_swing != 1.0:  # larger interannual swings (semi-arid climates)
        kinds = kinds - np.array([1.0, 1.0, 0.0, 0.0])
        kinds = c.year_swing * kinds + np.array([1.0, 1.0, 0.0, 0.0])
    p_wd = np.clip((c.p_wd_mean + c.p_wd_amp * season) * kinds[:, 0], 0.02, 0.9)
    p_ww = np.clip(c.p_ww_mean + c.p_ww_amp * season, 0.05, 0.95)
    rain_mean = (c.rain_mean + c.rain_amp * season) * kinds[:, 1]

    def field(n: int) -> np.ndarray:
        return correlated_normals(rng, cell_xy, c.spatial_length_m, n)

    # One smooth year-anomaly per year shifts temperatures a little beyond the year kind.
    z_occ = stats.norm.cdf(field(n_days))
    z_amt = stats.norm.cdf(field(n_days))
    eps_tx = field(n_days)
    eps_tn = 0.6 * eps_tx + 0.8 * field(n_days)
    eps_cl = field(n_days)

    wet = np.zeros((n_days, n_cells), dtype=bool)
    prev = np.zeros(n_cells, dtype=bool)
    for t in range(n_days):
        prev = z_occ[t] < np.where(prev, p_ww[t], p_wd[t])
        wet[t] = prev
    scale = rain_mean[:, None] / c.rain_shape
    amount = stats.gamma.ppf(np.clip(z_amt, 1e-6, 1 - 1e-6), c.rain_shape) * scale
    prcp = np.where(wet, np.maximum(amount, 0.1), 0.0)

    resid_sd = (c.t_resid_sd - c.t_resid_sd_amp * season)[:, None]
    innov = np.sqrt(1 - c.ar1**2)
    r_tx = np.empty((n_days, n_cells))
    r_tn = np.empty((n_days, n_cells))
    r_cl = np.empty((n_days, n_cells))
    r_tx[0], r_tn[0], r_cl[0] = eps_tx[0], eps_tn[0], eps_cl[0]
    for t in range(1, n_days):
        r_tx[t] = c.ar1 * r_tx[t - 1] + innov * eps_tx[t]
        r_tn[t] = c.ar1 * r_tn[t - 1] + innov * eps_tn[t]
        r_cl[t] = 0.5 * r_cl[t - 1] + np.sqrt(0.75) * eps_cl[t]
    tmax = (c.tmax_mean + c.tmax_amp * season + kinds[:, 2])[:, None] + resid_sd * r_tx
    tmin = (c.tmin_mean + c.tmin_amp * season + kinds[:, 3])[:, None] + resid_sd * r_tn
    tmax = tmax + np.where(wet, c.wet_tmax_shift, 0.0)
    tmin = tmin + np.where(wet, c.wet_tmin_shift, 0.0)
    tmin = np.minimum(tmin, tmax - 1.0)

    dayl = np.broadcast_to(day_length_s(c.latitude, doy)[:, None], (n_days, n_cells))
    ra = extraterrestrial_radiation(c.latitude, doy)[:, None]
    clear = np.where(wet, 0.45 + 0.1 * r_cl, 0.85 + 0.08 * r_cl)
    rs = 0.75 * ra * np.clip(clear, 0.15, 1.0)  # MJ m-2 day-1
    srad = rs * 1e6 / dayl

    dew_depression = np.where(wet, 0.5, 2.0 + 0.8 * np.abs(r_cl)) + 1.5 * (kinds[:, 2:3] > 0)
    vp = saturation_vapour_pressure_pa(tmin - dew_depression)
    return {
        "prcp": prcp,
        "tmax": tmax,
        "tmin": tmin,
        "srad": srad,
        "vp": vp,
        "dayl": np.array(dayl),
    }
