"""The cube schema: names, dimensions, units and legends every part of kgvsf_explore relies on.

This module is the input contract, written as data (in the spirit of Presto's ``S2_BANDS``): the
simulator writes it, the loader validates it, the model reads it. A user's own data (Sentinel-2 L2A
bands, Daymet or ERA5-Land weather) follows the same names and units to plug in.

Dimensions
----------
``time``
    Image (acquisition) dates of the response variables, ``datetime64``, strictly increasing.
``day``
    The daily axis of the drivers and of ``soil_moisture``, ``datetime64`` at midnight, no gaps.
``y``, ``x``
    Pixel centres in a projected CRS (metres); ``y`` decreasing (north-up) as in rasters.
``y_met``, ``x_met``
    Optional native grid of the weather drivers, in the same CRS as ``y``/``x`` (e.g. a Daymet
    1 km grid). Drivers may also be given on ``(day, y, x)`` or as one series ``(day,)``;
    :attr:`kgvsf_explore.Cube.drivers` always returns them on ``(day, y, x)``, lazily.
"""

from __future__ import annotations

#: Sentinel-2-like surface reflectance bands (unitless, 0-1), in spectral order.
BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B08", "B11", "B12")

#: Band centre wavelengths in nm (Sentinel-2A MSI), for plots and docs.
BAND_WAVELENGTH_NM: dict[str, int] = {
    "B02": 490, "B03": 560, "B04": 665, "B05": 705, "B08": 842, "B11": 1610, "B12": 2190,
}

#: Common names of the bands, and their Landsat 8/9 OLI counterparts where one exists.
BAND_COMMON_NAME: dict[str, str] = {
    "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B08": "nir",
    "B11": "swir16", "B12": "swir22",
}

#: Daily weather drivers, named and measured as Daymet names and measures them.
DRIVERS: tuple[str, ...] = ("prcp", "tmax", "tmin", "srad", "vp", "dayl", "swe")

#: Units of the drivers (Daymet v4 conventions). ``srad`` is the mean incident shortwave flux
#: over the daylight period, so the daily total in MJ/m2 is ``srad * dayl / 1e6``.
DRIVER_UNITS: dict[str, str] = {
    "prcp": "mm/day",
    "tmax": "degC",
    "tmin": "degC",
    "srad": "W/m2",
    "vp": "Pa",
    "dayl": "s",
    "swe": "kg/m2",
}

#: Long names of the drivers (CF-style ``long_name`` attributes).
DRIVER_LONG_NAMES: dict[str, str] = {
    "prcp": "daily total precipitation",
    "tmax": "daily maximum 2 m air temperature",
    "tmin": "daily minimum 2 m air temperature",
    "srad": "incident shortwave radiation flux density, daylight mean",
    "vp": "water vapour pressure, daily mean",
    "dayl": "day length",
    "swe": "snow water equivalent",
}

#: Plausible physical ranges of the drivers, used by validation to catch wrong units
#: (Kelvin for degC, metres for mm, J/m2 for W/m2, kPa for Pa, hours for seconds).
DRIVER_RANGES: dict[str, tuple[float, float]] = {
    "prcp": (0.0, 1000.0),
    "tmax": (-80.0, 65.0),
    "tmin": (-90.0, 50.0),
    "srad": (0.0, 1400.0),
    "vp": (0.0, 8000.0),
    "dayl": (0.0, 86400.0),
    "swe": (0.0, 10000.0),
}

#: Root-zone volumetric soil moisture, daily, on ``(day, y, x)``.
SOIL_MOISTURE = "soil_moisture"
SOIL_MOISTURE_UNITS = "m3/m3"

#: Per image date and pixel: True where a cloud hides the surface (bands are NaN there).
CLOUD_MASK = "cloud_mask"

#: Optional, per image date and pixel: what the product's quality layer said of the pixel, as
#: Fmask class codes (an ingested cube has it; older cubes and simulated worlds do not). Cloud
#: and shadow also set ``cloud_mask``; shadow, snow, cloud and no data are NaN in the bands.
SURFACE_FLAG = "surface_flag"

#: Classes of ``surface_flag`` (code -> name), stored as CF ``flag_values``/``flag_meanings``.
SURFACE_CLASSES: dict[int, str] = {
    0: "clear",
    1: "water",
    2: "cloud_shadow",
    3: "snow",
    4: "cloud",
    254: "unclassified",
    255: "no_data",
}

#: Static layers on ``(y, x)``; each carries its legend as CF ``flag_values``/``flag_meanings``.
#: ``crop_type`` may also be ``(year, y, x)`` (see :data:`YEAR_DIM`).
CROP_TYPE = "crop_type"
FIELD_ID = "field_id"
SOIL_TYPE = "soil_type"

#: Crop classes of the sample world (code -> name). Code 0 is everything that is not a crop field.
CROP_CLASSES: dict[int, str] = {
    0: "non_crop",
    1: "corn",
    2: "soybean",
    3: "winter_wheat",
    4: "grassland",
}

#: Soil classes of the sample world (code -> name), with FAO-56 style water limits below.
SOIL_CLASSES: dict[int, str] = {0: "sand", 1: "loam", 2: "clay"}

#: Suffix of the simulator's cloud-free, noise-free reflectance beside each band (``B04_true``).
TRUTH_SUFFIX = "_true"

#: Name of the CF grid-mapping variable that carries the CRS (rioxarray/GDAL convention).
GRID_MAPPING = "spatial_ref"

#: Dimension names.
TIME_DIM = "time"
DAY_DIM = "day"
Y_DIM, X_DIM = "y", "x"
Y_MET_DIM, X_MET_DIM = "y_met", "x_met"
#: Calendar year of a ``crop_type`` that changes between years (crop rotations): ``crop_type``
#: is ``(y, x)`` (the same crop every year) or ``(year, y, x)``; :func:`crop_map` reads both.
YEAR_DIM = "year"


def crop_map(obj, year: int | None = None):
    """The ``(y, x)`` crop map of one calendar year from a dataset or its ``crop_type``.

    A ``(y, x)`` layer (every cube made before rotations existed) is the map of every year and
    is returned as it is; a ``(year, y, x)`` layer gives the map of ``year`` (default: its
    last year).

    Raises
    ------
    KeyError
        If ``year`` is not one of the layer's years (the message lists them).
    """
    da = obj[CROP_TYPE] if CROP_TYPE in getattr(obj, "data_vars", {}) else obj
    if YEAR_DIM not in da.dims:
        return da
    years = [int(v) for v in da[YEAR_DIM].values]
    pick = years[-1] if year is None else int(year)
    if pick not in years:
        raise KeyError(f"crop_type has no map for {pick}; its years are {years}")
    return da.sel({YEAR_DIM: pick}, drop=True)


def truth_name(band: str) -> str:
    """Name of the cloud-free truth variable of ``band`` (``"B04"`` -> ``"B04_true"``)."""
    return f"{band}{TRUTH_SUFFIX}"


def legend_attrs(classes: dict[int, str], description: str) -> dict[str, object]:
    """CF ``flag_values``/``flag_meanings`` attributes for a categorical layer."""
    codes = sorted(classes)
    return {
        "flag_values": codes,
        "flag_meanings": " ".join(classes[c] for c in codes),
        "long_name": description,
    }


def legend_from_attrs(attrs: dict) -> dict[int, str]:
    """Inverse of :func:`legend_attrs`: ``{code: name}`` from a variable's attributes."""
    values = attrs.get("flag_values")
    meanings = attrs.get("flag_meanings")
    if values is None or meanings is None:
        return {}
    names = meanings.split() if isinstance(meanings, str) else list(meanings)
    return {int(v): str(n) for v, n in zip(list(values), names)}
