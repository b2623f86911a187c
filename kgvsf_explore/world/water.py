"""Snow and root-zone soil water balance (FAO-56 bucket, Allen et al. 1998), one day at a time.

Per pixel and day::

    snow:     P falls as snow when Tmean < 0; melt = min(SWE, 2.5 max(Tmean, 0))
    input:    W = rain + melt;  runoff Q = 0.3 max(W - 30, 0)
    ET0:      Hargreaves-Samani radiation form, ET0 = 0.0135 (Tmean + 17.8) Rs  [mm/day],
              Rs = srad * dayl / 1e6 * 0.408 (MJ/m2 -> mm of evaporation); x0.3 under snow
    ETa:      Ks Kc ET0, Kc = 0.35 + 0.8 fc_green,
              Ks = clip((TAW - Dr) / ((1 - p) TAW), 0, 1), p = 0.5, TAW = 1000 (FC - WP) Zr
    drainage: D = d_soil (SW - SW_fc) above field capacity; runoff above saturation
    state:    SW(t+1) = SW(t) + W - Q - ETa - D;  theta = SW / (1000 Zr)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import DEPLETION_P, KC_MAX, KC_MIN, MELT_FACTOR


def snow_step(
    swe: np.ndarray, prcp: np.ndarray, tmean: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Advance the snowpack one day; return ``(new_swe, liquid water reaching the soil)``."""
    cold = tmean < 0.0
    snowfall = np.where(cold, prcp, 0.0)
    rain = prcp - snowfall
    melt = np.minimum(swe + snowfall, MELT_FACTOR * np.maximum(tmean, 0.0))
    return swe + snowfall - melt, rain + melt


def snowpack(prcp: np.ndarray, tmax: np.ndarray, tmin: np.ndarray) -> np.ndarray:
    """Daily snow water equivalent (kg/m2) over a ``(days, ...)`` series, starting snow-free."""
    swe = np.zeros(prcp.shape[1:])
    out = np.empty_like(prcp, dtype=np.float64)
    for t in range(prcp.shape[0]):
        swe, _ = snow_step(swe, prcp[t], 0.5 * (tmax[t] + tmin[t]))
        out[t] = swe
    return out


def reference_et(tmean: np.ndarray, srad: np.ndarray, dayl: np.ndarray) -> np.ndarray:
    """Reference evapotranspiration ET0 in mm/day (Hargreaves-Samani radiation form)."""
    rs_mm = srad * dayl * 1e-6 * 0.408
    return np.maximum(0.0135 * (tmean + 17.8) * rs_mm, 0.0)


@dataclass
class SoilWater:
    """Root-zone water state of every pixel, with its soil constants (arrays over pixels)."""

    theta_fc: np.ndarray
    theta_wp: np.ndarray
    theta_sat: np.ndarray
    drainage: np.ndarray
    root_depth: np.ndarray  # m
    sw: np.ndarray  # mm of water in the root zone

    @property
    def taw(self) -> np.ndarray:
        """Total available water, mm."""
        return 1000.0 * (self.theta_fc - self.theta_wp) * self.root_depth

    @property
    def theta(self) -> np.ndarray:
        """Volumetric root-zone soil moisture, m3/m3."""
        return self.sw / (1000.0 * self.root_depth)

    def stress(self) -> np.ndarray:
        """FAO-56 water stress coefficient Ks in [0, 1] (1: no stress)."""
        depletion = 1000.0 * self.theta_fc * self.root_depth - self.sw
        taw = self.taw
        return np.clip((taw - depletion) / ((1.0 - DEPLETION_P) * taw), 0.0, 1.0)

    def wetness(self) -> np.ndarray:
        """Relative wetness (theta - WP) / (SAT - WP) in [0, 1]."""
        return np.clip(
            (self.theta - self.theta_wp) / (self.theta_sat - self.theta_wp), 0.0, 1.0
        )

    def irrigate(self, candidates: np.ndarray) -> np.ndarray:
        """Refill to field capacity the ``candidates`` whose depletion exceeds RAW = p TAW
        (FAO-56 management-allowed depletion); return the irrigation depth (mm)."""
        fc = 1000.0 * self.theta_fc * self.root_depth
        due = candidates & (fc - self.sw > DEPLETION_P * self.taw)
        amount = np.where(due, fc - self.sw, 0.0)
        self.sw = self.sw + amount
        return amount

    def step(self, water_in: np.ndarray, et0: np.ndarray, fc_green: np.ndarray) -> np.ndarray:
        """Advance one day in place; return actual evapotranspiration ETa (mm)."""
        runoff = 0.3 * np.maximum(water_in - 30.0, 0.0)
        self.sw = self.sw + water_in - runoff
        kc = KC_MIN + (KC_MAX - KC_MIN) * fc_green
        eta = self.stress() * kc * et0
        self.sw = self.sw - eta
        scale = 1000.0 * self.root_depth
        above_fc = np.maximum(self.sw - self.theta_fc * scale, 0.0)
        self.sw = self.sw - self.drainage * above_fc
        self.sw = np.minimum(self.sw, self.theta_sat * scale)
        self.sw = np.maximum(self.sw, 0.5 * self.theta_wp * scale)
        return eta
