"""Climates of the sample world: where a world lies, its weather, clouds, crops and management.

Each :class:`Climate` is data with its sources (see ``docs/world.md`` for the tables):

- the place (latitude/longitude of a reference station, its UTM zone and the world's corner),
  so day length and extraterrestrial radiation follow (FAO-56 eq. 21-25, 34);
- WGEN-style weather parameters (:class:`~kgvsf_explore.world.weather.WeatherClimate`: seasonal
  wet-day transition probabilities, wet-day rain amounts, temperature cycles; Richardson 1981,
  Richardson & Wright 1984) fitted by hand to the 1991-2020 normals of the reference station;
- a cloud climate (Beta distributions of the cloud cover on dry and rainy days);
- a CDL-like crop mix (USDA NASS Cropland Data Layer shares of the region; Eurostat/CBS crop
  statistics for the maritime world) with FAO-56 (Allen et al. 1998, Tables 11-12) growth
  stages behind the crop parameters of :data:`kgvsf_explore.world.params.CROPS`;
- rotations and irrigated shares, used when a world turns management on;
- the ranges a world of the climate must fall in (annual rain, summer tmax, growing-season NDVI
  peak), checked by ``tests/test_world_climates.py``.

``corn-belt`` is the world as it always was: the shipped sample is regenerated bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import KGVSFError
from .weather import WeatherClimate


@dataclass(frozen=True)
class Rotation:
    """A crop sequence a share of the fields follows, one crop (code) per calendar year."""

    name: str
    crops: tuple[int, ...]
    share: float  # probability that a field of one of these crops follows this rotation


@dataclass(frozen=True)
class ClimateRanges:
    """What a world of the climate shows on any seed (means over its pixels and years)."""

    annual_rain_mm: tuple[float, float]
    summer_tmax_c: tuple[float, float]  # mean daily maximum of the three warmest months
    ndvi_peak: tuple[float, float]  # growing-season peak of the crop fields' mean true NDVI
    # All three are for a year of kind "normal" (drought and wet years depart from them).


@dataclass(frozen=True)
class Climate:
    """One climate of the sample world; see the module docstring."""

    name: str
    description: str
    place: str
    lat_lon: tuple[float, float]
    crs: str
    x0: float
    y0: float
    weather: WeatherClimate
    crop_shares: dict[int, float]
    ranges: ClimateRanges
    sources: tuple[str, ...]
    cloud_dry_beta: tuple[float, float] = (0.45, 1.6)
    cloud_wet_beta: tuple[float, float] = (2.0, 0.8)
    rotations: tuple[Rotation, ...] = ()
    irrigated_share: dict[int, float] = field(default_factory=dict)
    rotation_default: bool = False
    irrigation_default: bool = False


_WGEN = "Richardson (1981) WRR 17:182; Richardson & Wright (1984) USDA ARS-8 (WGEN)"
_FAO = "Allen et al. (1998) FAO Irrigation and Drainage Paper 56, Tables 11-12 and 22"

#: The climates of ``kgvsf make-sample --climate``.
CLIMATES: dict[str, Climate] = {
    "corn-belt": Climate(
        name="corn-belt",
        description="humid continental central Iowa: corn, soybean, some wheat and grass",
        place="Ames, Iowa (USA)",
        lat_lon=(42.0, -93.65),
        crs="EPSG:32615",
        x0=446_000.0,
        y0=4_650_000.0,
        weather=WeatherClimate(),
        crop_shares={0: 0.08, 1: 0.36, 2: 0.30, 3: 0.12, 4: 0.14},
        ranges=ClimateRanges((550.0, 1050.0), (25.5, 31.0), (0.60, 0.85)),
        sources=(_WGEN, "NOAA NCEI 1991-2020 normals, Ames 8 WSW (IA)",
                 "USDA NASS Cropland Data Layer, Story County IA", _FAO),
        rotations=(Rotation("corn-soybean", (1, 2), 0.8),),
        irrigated_share={1: 0.3, 2: 0.3},
    ),
    "great-plains": Climate(
        name="great-plains",
        description="semi-arid western Kansas: winter wheat-fallow, sorghum, irrigated corn, "
                    "rangeland",
        place="Garden City, Kansas (USA)",
        lat_lon=(37.97, -100.87),
        crs="EPSG:32614",
        x0=335_000.0,
        y0=4_205_000.0,
        weather=WeatherClimate(
            p_wd_mean=0.13, p_wd_amp=0.08, p_ww_mean=0.36, p_ww_amp=0.10,
            rain_mean=6.5, rain_amp=4.0, rain_shape=0.7,
            tmax_mean=20.0, tmax_amp=14.0, tmin_mean=4.5, tmin_amp=13.0,
            t_resid_sd=4.5, t_resid_sd_amp=1.2, wet_tmax_shift=-4.0, wet_tmin_shift=1.0,
            year_swing=1.15,
        ),
        crop_shares={0: 0.06, 1: 0.15, 3: 0.30, 4: 0.16, 5: 0.15, 6: 0.18},
        ranges=ClimateRanges((300.0, 650.0), (29.5, 35.0), (0.35, 0.65)),
        sources=(_WGEN, "NOAA NCEI 1991-2020 normals, Garden City Regional Airport (KS)",
                 "USDA NASS Cropland Data Layer, Finney County KS", _FAO,
                 "Kansas State University Extension: wheat-fallow and wheat-sorghum-fallow"),
        cloud_dry_beta=(0.35, 2.2),
        cloud_wet_beta=(2.0, 0.9),
        rotations=(Rotation("wheat-fallow", (3, 6), 0.6),
                   Rotation("wheat-sorghum-fallow", (3, 5, 6), 1.0)),
        irrigated_share={1: 0.9, 5: 0.2, 3: 0.1},
        rotation_default=True,
        irrigation_default=True,
    ),
    "mediterranean": Climate(
        name="mediterranean",
        description="Central Valley of California: wet mild winters, dry hot summers; "
                    "irrigated tomato, rice, alfalfa and orchards, annual grassland",
        place="Davis, California (USA)",
        lat_lon=(38.6, -121.8),
        crs="EPSG:32610",
        x0=604_000.0,
        y0=4_274_000.0,
        weather=WeatherClimate(
            p_wd_mean=0.10, p_wd_amp=-0.09, p_ww_mean=0.45, p_ww_amp=-0.13,
            rain_mean=6.5, rain_amp=-2.5, rain_shape=0.75,
            tmax_mean=23.5, tmax_amp=10.5, tmin_mean=8.0, tmin_amp=6.0,
            t_resid_sd=2.8, t_resid_sd_amp=0.6, wet_tmax_shift=-2.0, wet_tmin_shift=1.5,
        ),
        crop_shares={0: 0.06, 1: 0.08, 4: 0.12, 7: 0.20, 8: 0.16, 9: 0.18, 10: 0.20},
        ranges=ClimateRanges((280.0, 700.0), (30.5, 36.0), (0.60, 0.85)),
        sources=(_WGEN, "NOAA NCEI 1991-2020 normals, Davis 2 WSW Experimental Farm (CA)",
                 "USDA NASS Cropland Data Layer, Yolo County CA", _FAO,
                 "UC Davis Cooperative Extension cost and return studies (tomato-corn "
                 "rotation)"),
        cloud_dry_beta=(0.25, 2.5),
        cloud_wet_beta=(2.0, 0.8),
        rotations=(Rotation("tomato-corn", (7, 1), 0.6),),
        irrigated_share={1: 1.0, 7: 1.0, 8: 1.0, 9: 1.0, 10: 1.0},
        rotation_default=True,
        irrigation_default=True,
    ),
    "maritime": Climate(
        name="maritime",
        description="cool temperate oceanic Netherlands: rain all year; winter wheat, "
                    "potato, grassland",
        place="Lelystad, Flevoland (Netherlands)",
        lat_lon=(52.55, 5.6),
        crs="EPSG:32631",
        x0=676_000.0,
        y0=5_826_000.0,
        weather=WeatherClimate(
            p_wd_mean=0.36, p_wd_amp=0.0, p_ww_mean=0.62, p_ww_amp=-0.04,
            rain_mean=4.6, rain_amp=0.8, rain_shape=0.8,
            tmax_mean=14.8, tmax_amp=8.5, tmin_mean=6.0, tmin_amp=6.3,
            t_resid_sd=2.5, t_resid_sd_amp=0.8, wet_tmax_shift=-1.5, wet_tmin_shift=1.0,
        ),
        crop_shares={0: 0.08, 3: 0.36, 4: 0.30, 11: 0.26},
        ranges=ClimateRanges((600.0, 1100.0), (19.5, 25.0), (0.50, 0.80)),
        sources=(_WGEN, "KNMI 1991-2020 climate normals, Lelystad",
                 "CBS (Statistics Netherlands) arable crop areas, Flevoland", _FAO),
        cloud_dry_beta=(0.9, 1.2),
        cloud_wet_beta=(2.5, 0.6),
        rotations=(Rotation("wheat-potato", (3, 11), 0.8),),
        irrigated_share={11: 0.3},
        rotation_default=True,
        irrigation_default=False,
    ),
}

#: The climate of the shipped sample (and of every world made before climates existed).
DEFAULT_CLIMATE = "corn-belt"


class UnknownClimateError(KGVSFError, ValueError):
    """A climate name that is not in :data:`CLIMATES`."""


def get_climate(name: str) -> Climate:
    """The :class:`Climate` called ``name``.

    Raises
    ------
    UnknownClimateError
        If there is no such climate; the message lists the known ones.
    """
    try:
        return CLIMATES[name]
    except KeyError:
        raise UnknownClimateError(
            f"unknown climate {name!r}; choose one of {sorted(CLIMATES)} (--climate)"
        ) from None
