"""Degree-day crop growth with water and heat stress, per pixel and day.

Annual crops (corn, soybean, winter wheat) are sown in a crop-specific day-of-year window, on the
field's own date once the 5-day mean temperature allows (or on the window's last day). After
sowing, thermal time accumulates as ``GDD = max(0, min(Tmean, 30) - Tbase)``; the potential
green leaf area follows a logistic curve in thermal time, and each day's increment is scaled by the
water stress ``Ks`` and a heat factor ``h = clip(1 - (Tmax - 35) / 10, 0, 1)``, so stress lowers
the canopy for good. From ``gdd_senesce`` the green canopy turns brown in proportion to the
thermal time left to ``gdd_mature``; water stress (Ks < 0.5) browns it earlier. Harvest follows
maturity after a field-specific delay and leaves a residue that decays. Warmer weather therefore
means faster development: earlier green-up, peak and maturity.

Perennials (grassland, the sparse vegetation of non-crop land) grow logistically when warm
(``Tmean > Tbase``) and wet, brown under drought (Ks < 0.4) and frost, and regrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import CROPS, EXTINCTION_K, HEAT_ONSET, HEAT_ZERO


def _logistic(gdd: np.ndarray, lai_max: np.ndarray, half: np.ndarray, slope: np.ndarray):
    return lai_max / (1.0 + np.exp(-slope * (gdd - half)))


@dataclass
class CropState:
    """Canopy state of every pixel and the per-pixel crop constants."""

    code: np.ndarray
    sow_target: np.ndarray  # day of year from which this field may sow
    harvest_delay: np.ndarray  # days from maturity to harvest
    lai_green: np.ndarray
    lai_brown: np.ndarray
    gdd: np.ndarray
    in_season: np.ndarray
    days_mature: np.ndarray  # -1 before maturity

    @classmethod
    def initial(
        cls, code: np.ndarray, sow_frac: np.ndarray, harvest_frac: np.ndarray
    ) -> CropState:
        """Bare annual fields and green-ish perennials at the start of the spin-up."""
        n = code.shape
        sow = np.zeros(n)
        delay = np.zeros(n)
        perennial = np.zeros(n, dtype=bool)
        for c, p in CROPS.items():
            m = code == c
            sow[m] = p.sow_doy[0] + sow_frac[m] * (p.sow_doy[1] - p.sow_doy[0])
            delay[m] = np.round(
                p.harvest_delay[0] + harvest_frac[m] * (p.harvest_delay[1] - p.harvest_delay[0])
            )
            perennial[m] = p.perennial
        return cls(
            code=code,
            sow_target=sow,
            harvest_delay=delay,
            lai_green=np.where(perennial, 1.0, 0.0),
            lai_brown=np.where(perennial, 0.5, 0.3),
            gdd=np.zeros(n),
            in_season=np.zeros(n, dtype=bool),
            days_mature=np.full(n, -1.0),
        )

    def recode(
        self, mask: np.ndarray, code: np.ndarray, sow_frac: np.ndarray, harvest_frac: np.ndarray
    ) -> None:
        """Give the pixels of ``mask`` a new crop (rotation): its sowing date, harvest delay and
        parameters; its season starts afresh (residue stays on the ground)."""
        new = CropState.initial(np.where(mask, code, self.code), sow_frac, harvest_frac)
        self.code = new.code
        self.sow_target = np.where(mask, new.sow_target, self.sow_target)
        self.harvest_delay = np.where(mask, new.harvest_delay, self.harvest_delay)
        self.gdd = np.where(mask, 0.0, self.gdd)
        self.in_season = self.in_season & ~mask
        self.days_mature = np.where(mask, -1.0, self.days_mature)
        self.__post_init__()

    def _param(self, name: str) -> np.ndarray:
        values = np.array([getattr(CROPS[c], name) for c in sorted(CROPS)], dtype=float)
        return values[self.code]

    def __post_init__(self) -> None:
        self.p = {
            name: self._param(name)
            for name in ("tbase", "lai_max", "sow_tmean", "gdd_half", "gdd_slope",
                         "gdd_senesce", "gdd_mature", "residue_lai", "growth_rate")
        }
        self.perennial = self._param("perennial").astype(bool)
        self.sow_end = np.array([CROPS[c].sow_doy[1] for c in sorted(CROPS)], float)[self.code]

    @property
    def fc_green(self) -> np.ndarray:
        """Green fractional cover, 1 - exp(-k LAI_green)."""
        return 1.0 - np.exp(-EXTINCTION_K * self.lai_green)

    @property
    def fc_brown(self) -> np.ndarray:
        """Senescent/residue cover seen beside the green cover."""
        total = 1.0 - np.exp(-EXTINCTION_K * (self.lai_green + self.lai_brown))
        return total - self.fc_green

    def step(
        self,
        doy: int,
        tmean: np.ndarray,
        tmean5: np.ndarray,
        tmax: np.ndarray,
        tmin: np.ndarray,
        ks: np.ndarray,
    ) -> None:
        """Advance one day in place."""
        p = self.p
        heat = np.clip(1.0 - (tmax - HEAT_ONSET) / (HEAT_ZERO - HEAT_ONSET), 0.0, 1.0)
        annual = ~self.perennial

        # Sowing of annual crops.
        sow = (
            annual & ~self.in_season & (doy >= self.sow_target) & (doy <= self.sow_end)
            & ((tmean5 >= p["sow_tmean"]) | (doy >= self.sow_end))
        )
        self.in_season = self.in_season | sow
        self.gdd = np.where(sow, 0.0, self.gdd)
        self.lai_green = np.where(sow, 0.0, self.lai_green)
        self.days_mature = np.where(sow, -1.0, self.days_mature)

        # Annual crops in season: thermal time, logistic canopy, senescence, maturity, harvest.
        # A killing frost (Tmin < -2 degC) ends the season of warm-season crops (Tbase >= 10).
        grow = annual & self.in_season
        frost = grow & (p["tbase"] >= 10.0) & (tmin < -2.0) & (self.gdd > 0.0)
        self.gdd = np.where(frost, np.maximum(self.gdd, p["gdd_mature"]), self.gdd)
        dgdd = np.where(grow, np.maximum(np.minimum(tmean, 30.0) - p["tbase"], 0.0), 0.0)
        g0, g1 = self.gdd, self.gdd + dgdd
        pot = _logistic(g1, p["lai_max"], p["gdd_half"], p["gdd_slope"]) - _logistic(
            g0, p["lai_max"], p["gdd_half"], p["gdd_slope"]
        )
        vegetative = grow & (g1 < p["gdd_senesce"])
        lai = self.lai_green + np.where(vegetative, np.maximum(pot, 0.0) * ks * heat, 0.0)
        left = np.maximum(p["gdd_mature"] - g0, 1.0)
        senesce_frac = np.where(grow & (g1 >= p["gdd_senesce"]), np.clip(dgdd / left, 0, 1), 0.0)
        drought_frac = np.where(grow, 0.05 * np.clip((0.5 - ks) / 0.5, 0.0, 1.0), 0.0)
        loss = lai * np.clip(senesce_frac + drought_frac, 0.0, 1.0)
        mature = grow & (g1 >= p["gdd_mature"])
        loss = np.where(mature, lai, loss)
        self.gdd = g1
        self.days_mature = np.where(
            mature, np.maximum(self.days_mature, -1.0) + 1.0, self.days_mature
        )
        harvest = mature & (self.days_mature >= self.harvest_delay)
        self.lai_green = lai - loss
        self.lai_brown = self.lai_brown + loss
        self.lai_brown = np.where(
            harvest, np.minimum(self.lai_brown, p["residue_lai"]), self.lai_brown
        )
        self.in_season = self.in_season & ~harvest

        # Perennials: logistic regrowth when warm and wet, browning under drought and frost.
        per = self.perennial
        warm = np.clip((tmean - p["tbase"]) / 10.0, 0.0, 1.0)
        crowd = 1.0 - (self.lai_green + 0.3 * self.lai_brown) / p["lai_max"]
        growth = p["growth_rate"] * self.lai_green * np.maximum(crowd, 0.0) * warm * ks * heat
        brown = self.lai_green * (
            0.01 + 0.06 * np.clip((0.4 - ks) / 0.4, 0.0, 1.0) + 0.05 * (tmin < -2.0)
        )
        self.lai_green = np.where(
            per, np.maximum(self.lai_green + growth - brown, 0.25), self.lai_green
        )
        self.lai_brown = np.where(per, self.lai_brown + brown, self.lai_brown)

        # Residue and dead leaves decompose.
        self.lai_brown = self.lai_brown * np.where(grow & ~harvest, 1.0, 0.99)
