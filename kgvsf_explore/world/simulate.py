"""The daily loop of the sample world: drivers -> snow and soil water -> canopy -> reflectance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from .. import schema
from ..cube.regrid import drivers_on_pixels
from .crops import CropState
from .management import growing_mask, season_codes
from .params import CROPS, SOILS
from .reflectance import mix_reflectance
from .water import SoilWater, reference_et, snow_step


@dataclass
class SimulationOutput:
    """What the loop records: daily soil moisture and the surface on image dates."""

    soil_moisture: np.ndarray  # (output days, pixels) m3/m3
    reflectance: np.ndarray  # (image dates, band, pixels), cloud- and noise-free
    scene_prcp: np.ndarray  # (image dates,) scene-mean rain on the image date, mm
    lai_green: np.ndarray  # (image dates, pixels)


def run_processes(
    drivers: xr.Dataset,
    rasters: dict[str, np.ndarray],
    image_dates: pd.DatetimeIndex,
    output_days: pd.DatetimeIndex,
    block_days: int = 64,
    progress: bool = False,
    first_year: int | None = None,
) -> SimulationOutput:
    """Run snow, water balance and crop growth over every day of ``drivers``.

    Parameters
    ----------
    drivers
        Drivers in memory as stored in a cube (on ``(day, y_met, x_met)``, ``(day, y, x)`` or
        ``(day,)``), covering the spin-up and the output period. They are brought onto the pixel
        grid ``block_days`` at a time by :func:`~kgvsf_explore.cube.regrid.drivers_on_pixels`,
        the same function :attr:`kgvsf_explore.Cube.drivers` uses, so the simulator and a model
        read identical pixel drivers.
    rasters
        Static layers from :func:`kgvsf_explore.world.fields.make_fields`.
    image_dates
        Dates on which the surface reflectance is recorded.
    output_days
        Days whose soil moisture is recorded (the cube's ``day`` axis).

    Notes
    -----
    Management (:mod:`kgvsf_explore.world.management`) is on when ``rasters`` holds it:
    ``crop_by_year`` (``(years, y, x)`` crop codes of a rotation, the first year being
    ``first_year``) and/or ``irrigated`` (``(y, x)`` bool). Without them the loop is the one
    the shipped sample was made with.
    """
    days = pd.DatetimeIndex(drivers[schema.DAY_DIM].values)
    crop = rasters["crop_type"].ravel().astype(np.int64)
    soil = rasters["soil_type"].ravel().astype(np.int64)
    npx = crop.size

    def soil_param(name: str) -> np.ndarray:
        return np.array([getattr(SOILS[s], name) for s in sorted(SOILS)])[soil]

    root = np.array([CROPS[c].root_depth for c in sorted(CROPS)])[crop]
    root = root * rasters["root_factor"].ravel()
    water = SoilWater(
        theta_fc=soil_param("theta_fc"),
        theta_wp=soil_param("theta_wp"),
        theta_sat=soil_param("theta_sat"),
        drainage=soil_param("drainage"),
        root_depth=root,
        sw=soil_param("theta_fc") * 1000.0 * root,
    )
    brightness = soil_param("brightness")
    crops = CropState.initial(
        crop, rasters["sow_frac"].ravel(), rasters["harvest_frac"].ravel()
    )
    swe = np.zeros(npx)
    recent_t = np.zeros((5, npx))
    by_year = rasters.get("crop_by_year")
    if by_year is not None:
        by_year = by_year.reshape(len(by_year), npx).astype(np.int64)
        first = int(first_year if first_year is not None else output_days[0].year)
        root_factor = rasters["root_factor"].ravel()
        root_of = np.array([CROPS[c].root_depth for c in sorted(CROPS)])
        sow_frac, harvest_frac = rasters["sow_frac"].ravel(), rasters["harvest_frac"].ravel()
    irrigated = rasters.get("irrigated")
    if irrigated is not None:
        irrigated = irrigated.ravel().astype(bool)

    out_index = {d: i for i, d in enumerate(output_days)}
    img_index = {d: i for i, d in enumerate(image_dates)}
    sm = np.empty((len(output_days), npx), dtype=np.float32)
    refl = np.empty((len(image_dates), len(schema.BANDS), npx), dtype=np.float32)
    lai = np.empty((len(image_dates), npx), dtype=np.float32)
    scene_prcp = np.zeros(len(image_dates))
    names = ("prcp", "tmax", "tmin", "srad", "dayl")

    starts = range(0, len(days), block_days)
    for b0 in tqdm(starts, desc="simulating", unit="block", disable=not progress):
        block = drivers_on_pixels(
            drivers.isel({schema.DAY_DIM: slice(b0, b0 + block_days)}), names
        )
        arr = {n: block[n].values.reshape(-1, npx).astype(np.float64) for n in names}
        for j in range(arr["prcp"].shape[0]):
            t = b0 + j
            day = days[t]
            prcp, tmax, tmin = arr["prcp"][j], arr["tmax"][j], arr["tmin"][j]
            tmean = 0.5 * (tmax + tmin)
            recent_t[t % 5] = tmean
            tmean5 = recent_t.mean(axis=0) if t >= 4 else tmean
            swe, water_in = snow_step(swe, prcp, tmean)
            et0 = reference_et(tmean, arr["srad"][j], arr["dayl"][j])
            et0 = np.where(swe > 0.0, 0.3 * et0, et0)
            if by_year is not None:
                target = season_codes(by_year, first, day.year, day.day_of_year)
                change = (target != crops.code) & ~crops.in_season
                if change.any():
                    theta = water.theta
                    crops.recode(change, target, sow_frac, harvest_frac)
                    water.root_depth = np.where(
                        change, root_of[crops.code] * root_factor, water.root_depth)
                    water.sw = theta * 1000.0 * water.root_depth
            if irrigated is not None:
                water.irrigate(irrigated & growing_mask(
                    crops.code, crops.in_season, crops.days_mature, tmean))
            ks = water.stress()
            crops.step(day.day_of_year, tmean, tmean5, tmax, tmin, ks)
            water.step(water_in, et0, crops.fc_green)
            if day in out_index:
                sm[out_index[day]] = water.theta
            if day in img_index:
                i = img_index[day]
                wet = np.maximum(water.wetness(), np.clip(prcp / 10.0, 0.0, 1.0))
                refl[i] = mix_reflectance(
                    crops.fc_green, crops.fc_brown, wet, brightness, swe
                )
                lai[i] = crops.lai_green
                scene_prcp[i] = prcp.mean()
    return SimulationOutput(sm, refl, scene_prcp, lai)
