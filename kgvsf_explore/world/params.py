"""Parameters of the sample world: crops, soils and spectra, written as data.

Values follow the references in ``shared/world-physics.md`` (FAO-56 for soils and ET, the degree-day
logic of SUCROS/WOFOST/AquaCrop for crops, typical Sentinel-2 surface reflectance for spectra),
simplified to keep the causal chain weather -> soil water -> crop growth -> reflectance right in
sign, timing and rough magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..schema import BANDS


@dataclass(frozen=True)
class CropParams:
    """Degree-day crop model parameters of one land-cover class.

    Thermal times (``gdd_*``) are in degC.day above ``tbase`` since sowing. Perennial classes
    (grassland, non-crop) have no sowing or harvest and grow whenever it is warm and wet enough.
    """

    name: str
    tbase: float
    lai_max: float
    perennial: bool = False
    sow_doy: tuple[int, int] = (0, 0)  # window of sowing day-of-year (inclusive)
    sow_tmean: float = -99.0  # 5-day mean temperature needed to sow
    gdd_half: float = 0.0  # thermal time at half of lai_max (logistic canopy growth)
    gdd_slope: float = 0.0  # steepness of the logistic, 1/(degC.day)
    gdd_senesce: float = 0.0  # senescence starts
    gdd_mature: float = 0.0  # physiological maturity (green canopy gone)
    harvest_delay: tuple[int, int] = (0, 0)  # days from maturity to harvest (field-specific)
    residue_lai: float = 0.0  # brown cover left after harvest
    root_depth: float = 0.6  # root-zone depth in m (water balance)
    growth_rate: float = 0.0  # perennials: relative daily LAI growth when unstressed


#: Crop classes keyed by the codes of :data:`kgvsf_explore.schema.CROP_CLASSES`.
CROPS: dict[int, CropParams] = {
    0: CropParams("non_crop", tbase=5.0, lai_max=0.8, perennial=True, growth_rate=0.08,
                  root_depth=0.4),
    1: CropParams("corn", tbase=10.0, lai_max=5.5, sow_doy=(110, 140), sow_tmean=10.0,
                  gdd_half=580.0, gdd_slope=0.008, gdd_senesce=1000.0, gdd_mature=1450.0,
                  harvest_delay=(10, 35), residue_lai=0.6, root_depth=0.8),
    2: CropParams("soybean", tbase=10.0, lai_max=4.5, sow_doy=(125, 155), sow_tmean=12.0,
                  gdd_half=560.0, gdd_slope=0.009, gdd_senesce=950.0, gdd_mature=1300.0,
                  harvest_delay=(5, 25), residue_lai=0.25, root_depth=0.7),
    3: CropParams("winter_wheat", tbase=0.0, lai_max=4.5, sow_doy=(262, 285), sow_tmean=-99.0,
                  gdd_half=800.0, gdd_slope=0.0055, gdd_senesce=1450.0, gdd_mature=1950.0,
                  harvest_delay=(3, 15), residue_lai=0.45, root_depth=0.8),
    4: CropParams("grassland", tbase=5.0, lai_max=3.5, perennial=True, growth_rate=0.12,
                  root_depth=0.5),
    # Classes of the other climates (``kgvsf_explore.world.climates``); the corn-belt world
    # uses codes 0-4 only. Thermal times after FAO-56 Table 11 stage lengths and common
    # degree-day requirements (sorghum ~1400, processing tomato ~1250, rice ~1500, potato
    # ~1100 degC.d above its base); see docs/world.md.
    5: CropParams("sorghum", tbase=10.0, lai_max=4.5, sow_doy=(140, 165), sow_tmean=16.0,
                  gdd_half=600.0, gdd_slope=0.008, gdd_senesce=1050.0, gdd_mature=1450.0,
                  harvest_delay=(10, 30), residue_lai=0.6, root_depth=1.0),
    6: CropParams("fallow", tbase=5.0, lai_max=0.05, sow_doy=(0, 0), residue_lai=0.3,
                  root_depth=0.8),
    7: CropParams("tomato", tbase=10.0, lai_max=3.5, sow_doy=(75, 120), sow_tmean=12.0,
                  gdd_half=520.0, gdd_slope=0.009, gdd_senesce=900.0, gdd_mature=1250.0,
                  harvest_delay=(3, 15), residue_lai=0.3, root_depth=0.7),
    8: CropParams("rice", tbase=10.0, lai_max=5.5, sow_doy=(110, 140), sow_tmean=14.0,
                  gdd_half=650.0, gdd_slope=0.008, gdd_senesce=1100.0, gdd_mature=1500.0,
                  harvest_delay=(10, 30), residue_lai=0.6, root_depth=0.5),
    9: CropParams("alfalfa", tbase=5.0, lai_max=4.0, perennial=True, growth_rate=0.15,
                  root_depth=1.2),
    10: CropParams("orchard", tbase=7.0, lai_max=3.0, perennial=True, growth_rate=0.06,
                   root_depth=1.2),
    11: CropParams("potato", tbase=7.0, lai_max=4.0, sow_doy=(95, 125), sow_tmean=8.0,
                   gdd_half=380.0, gdd_slope=0.011, gdd_senesce=700.0, gdd_mature=1000.0,
                   harvest_delay=(5, 20), residue_lai=0.2, root_depth=0.5),
}

#: Names of every crop class of every climate (code -> name); codes 0-4 are
#: :data:`kgvsf_explore.schema.CROP_CLASSES`, the classes of the corn-belt world.
WORLD_CROP_CLASSES: dict[int, str] = {code: p.name for code, p in CROPS.items()}


@dataclass(frozen=True)
class SoilParams:
    """FAO-56 style soil water limits and drainage of one soil class."""

    name: str
    theta_fc: float  # field capacity, m3/m3
    theta_wp: float  # wilting point, m3/m3
    theta_sat: float  # saturation, m3/m3
    drainage: float  # share of the water above field capacity that drains per day
    brightness: float  # multiplies the dry-soil spectrum


#: Soil classes keyed by the codes of :data:`kgvsf_explore.schema.SOIL_CLASSES`.
SOILS: dict[int, SoilParams] = {
    0: SoilParams("sand", 0.12, 0.05, 0.38, drainage=0.7, brightness=1.25),
    1: SoilParams("loam", 0.27, 0.12, 0.43, drainage=0.4, brightness=1.0),
    2: SoilParams("clay", 0.36, 0.22, 0.48, drainage=0.2, brightness=0.85),
}

#: FAO-56 depletion fraction p: water stress starts when depletion exceeds p * TAW.
DEPLETION_P = 0.5

#: Light extinction coefficient k of fc = 1 - exp(-k LAI).
EXTINCTION_K = 0.5

#: Crop coefficients of bare (wet) soil and of a full green canopy:
#: Kc = KC_MIN + (KC_MAX - KC_MIN) fc.
KC_MIN, KC_MAX = 0.35, 1.15

#: Tmax above which heat slows canopy growth (linearly to zero at HEAT_ZERO).
HEAT_ONSET, HEAT_ZERO = 35.0, 45.0

#: Degree-day snow melt factor, mm / (degC day), and snow cover depth scale (mm of SWE).
MELT_FACTOR, SNOW_FULL_COVER = 2.5, 15.0


def _spectrum(*values: float) -> np.ndarray:
    assert len(values) == len(BANDS)
    return np.asarray(values, dtype=np.float64)


#: Endmember spectra in BANDS order (Sentinel-2 surface reflectance).
GREEN_VEG = _spectrum(0.03, 0.06, 0.03, 0.10, 0.45, 0.20, 0.10)
SENESCENT_VEG = _spectrum(0.06, 0.09, 0.12, 0.17, 0.28, 0.34, 0.26)
DRY_SOIL = _spectrum(0.10, 0.14, 0.18, 0.21, 0.26, 0.33, 0.28)
SNOW = _spectrum(0.85, 0.85, 0.83, 0.80, 0.75, 0.10, 0.08)
#: Exponential darkening of soil with surface wetness w in [0, 1]: r = r_dry exp(-c w) (Lobell &
#: Asner 2002: strongest in the SWIR).
SOIL_WET_DARKENING = _spectrum(0.30, 0.30, 0.32, 0.33, 0.35, 0.55, 0.60)
#: Sensor noise: additive plus multiplicative standard deviation.
NOISE_ABS, NOISE_REL = 0.002, 0.01
