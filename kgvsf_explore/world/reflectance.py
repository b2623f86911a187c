"""Surface reflectance by linear spectral mixing, with soil darkening and snow."""

from __future__ import annotations

import numpy as np

from .params import DRY_SOIL, GREEN_VEG, SENESCENT_VEG, SNOW, SNOW_FULL_COVER, SOIL_WET_DARKENING


def mix_reflectance(
    fc_green: np.ndarray,
    fc_brown: np.ndarray,
    wetness: np.ndarray,
    soil_brightness: np.ndarray,
    swe: np.ndarray,
) -> np.ndarray:
    """Reflectance ``(band, pixels)`` of green canopy, brown canopy, soil and snow.

    ``r = fc_g r_veg + fc_b r_sen + (1 - fc_g - fc_b) b r_soil exp(-c w)``, then snow of cover
    ``min(1, SWE / 15 mm)`` over everything but half of the green canopy.
    """
    soil = (
        soil_brightness[None, :]
        * DRY_SOIL[:, None]
        * np.exp(-SOIL_WET_DARKENING[:, None] * wetness[None, :])
    )
    bare = np.clip(1.0 - fc_green - fc_brown, 0.0, 1.0)
    refl = fc_green * GREEN_VEG[:, None] + fc_brown * SENESCENT_VEG[:, None] + bare * soil
    snow = np.clip(swe / SNOW_FULL_COVER, 0.0, 1.0) * (1.0 - 0.5 * fc_green)
    return (1.0 - snow) * refl + snow * SNOW[:, None]
