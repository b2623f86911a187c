"""Field management of the sample world: crop rotations and irrigation.

Rotations
    A share of the fields of a climate's rotation crops follows a rotation
    (:class:`~kgvsf_explore.world.climates.Rotation`): corn-soybean alternation, wheat-fallow,
    wheat-sorghum-fallow, tomato-corn, wheat-potato. A field's crop of its first year is the one
    :func:`~kgvsf_explore.world.fields.make_fields` drew; the rotation continues from there
    (its phase). The crop of year ``y`` is the crop harvested in ``y`` (winter wheat of ``y`` is
    sown in the autumn before). In the daily loop a field takes up the crop of the coming season
    once its previous crop is harvested: from 2 September (day of year 245) the crop of the next
    year, before it the crop of this year (:func:`season_codes`).

Irrigation
    Irrigated fields are refilled to field capacity whenever the root-zone depletion exceeds
    the readily available water ``RAW = p TAW`` (FAO-56 management-allowed depletion, ``p``
    = :data:`~kgvsf_explore.world.params.DEPLETION_P`) while the crop grows (annual crops from
    sowing to maturity, perennials when warmer than their base temperature), so an irrigated
    crop is never water-stressed; drought reaches it only through heat and the soil surface.

Both are drawn from their own random streams (new children of the world's seed sequence, drawn
only when the feature is on), so a world without them is the world it always was.
"""

from __future__ import annotations

import numpy as np

from .climates import Climate
from .params import CROPS

#: Day of year from which a field takes up the crop of the next year (after its harvest).
SEASON_SWITCH_DOY = 245


def draw_rotations(
    rng: np.random.Generator, first_crop: np.ndarray, climate: Climate, n_years: int
) -> tuple[np.ndarray, list[str]]:
    """Each field's crop code per year and the name of its rotation.

    Parameters
    ----------
    rng
        The management stream.
    first_crop
        Crop code of every field in the first year, ``(fields,)``.
    climate
        Gives the rotations and their shares.
    n_years
        Number of calendar years.

    Returns
    -------
    codes, names
        ``(fields, n_years)`` int codes and one rotation name per field (``"none"``: the same
        crop every year).
    """
    n = len(first_crop)
    u = rng.random((n, max(1, len(climate.rotations))))
    codes = np.repeat(np.asarray(first_crop, dtype=np.int64)[:, None], n_years, axis=1)
    names = ["none"] * n
    for i, c in enumerate(first_crop):
        for r, rot in enumerate(climate.rotations):
            if int(c) in rot.crops and u[i, r] < rot.share:
                phase = rot.crops.index(int(c))
                codes[i] = [rot.crops[(phase + k) % len(rot.crops)] for k in range(n_years)]
                names[i] = rot.name
                break
    return codes, names


def draw_irrigation(
    rng: np.random.Generator, first_crop: np.ndarray, climate: Climate
) -> np.ndarray:
    """Which fields are irrigated: each with the climate's irrigated share of its first crop."""
    u = rng.random(len(first_crop))
    share = np.array([climate.irrigated_share.get(int(c), 0.0) for c in first_crop])
    return u < share


def season_codes(
    crop_by_year: np.ndarray, first_year: int, year: int, doy: int
) -> np.ndarray:
    """The crop code each pixel should carry on a day: the next year's crop from
    :data:`SEASON_SWITCH_DOY` on, this year's before (clipped to the simulated years)."""
    k = year - first_year + (1 if doy >= SEASON_SWITCH_DOY else 0)
    return crop_by_year[int(np.clip(k, 0, len(crop_by_year) - 1))]


def irrigation_due(
    irrigated: np.ndarray, depletion: np.ndarray, raw: np.ndarray, growing: np.ndarray
) -> np.ndarray:
    """Pixels to refill to field capacity today (irrigated, growing, depletion above RAW)."""
    return irrigated & growing & (depletion > raw)


def growing_mask(code: np.ndarray, in_season: np.ndarray, days_mature: np.ndarray,
                 tmean: np.ndarray) -> np.ndarray:
    """Annual crops between sowing and maturity; perennials warmer than their base."""
    order = sorted(CROPS)
    perennial = np.array([CROPS[c].perennial for c in order])[code]
    tbase = np.array([CROPS[c].tbase for c in order])[code]
    return np.where(perennial, tmean > tbase, in_season & (days_mature < 0))
