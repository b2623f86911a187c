"""Dates, sensors and band names read from Sentinel-2 and Landsat file names.

The vocabulary is data at the top of the file: which band of which sensor becomes which cube
band (:data:`kgvsf_explore.schema.BANDS`), and which file-name patterns carry the date.

Conventions understood
----------------------
* Sentinel-2 products and tiles: ``S2A_MSIL2A_20220701T165851_N0400_..._B04.tif``,
  ``T15TVG_20220701T165849_B04_10m.tif`` (first ``YYYYMMDDTHHMMSS`` is the sensing time).
* Landsat Collection 2: ``LC08_L2SP_026031_20220701_20220706_02_T1_SR_B4.TIF`` (the first date
  is the acquisition date, the second the processing date); Collection 1 surface reflectance
  (ESPA): ``LT05_L1TP_027031_20110715_20160831_01_T1_sr_band3.tif``, ``..._pixel_qa.tif``,
  ``..._fmask.tif``.
* Landsat scene IDs: ``LC80260312022182LGN00_B4.TIF`` (``YYYYDDD``: year and day of year).
* Generic: a lone ``YYYYMMDD``, ``YYYY-MM-DD`` or ``YYYYDDD`` anywhere in the name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from ._errors import IngestError

__all__ = [
    "SENTINEL2_BANDS",
    "LANDSAT_OLI_BANDS",
    "LANDSAT_TM_BANDS",
    "COMMON_NAME_BANDS",
    "MASK_NAMES",
    "date_from_name",
    "date_from_tags",
    "sensor_from_name",
    "band_from_name",
    "cube_band",
]

#: Sentinel-2 MSI band -> cube band. B8A (narrow NIR, 20 m) is not used: the cube's NIR is the
#: 10 m broad band B08. B01, B06, B07, B09 and B10 have no cube counterpart and are skipped.
SENTINEL2_BANDS: dict[str, str] = {
    "B02": "B02", "B03": "B03", "B04": "B04", "B05": "B05", "B08": "B08", "B11": "B11",
    "B12": "B12",
}

#: Landsat 8/9 OLI band -> cube band (B1 coastal aerosol has no cube counterpart; no red edge).
LANDSAT_OLI_BANDS: dict[str, str] = {
    "B2": "B02", "B3": "B03", "B4": "B04", "B5": "B08", "B6": "B11", "B7": "B12",
}

#: Landsat 4/5 TM and 7 ETM+ band -> cube band (B6 is thermal; no red edge).
LANDSAT_TM_BANDS: dict[str, str] = {
    "B1": "B02", "B2": "B03", "B3": "B04", "B4": "B08", "B5": "B11", "B7": "B12",
}

#: STAC/EO common names (and frequent spellings) -> cube band, for any sensor.
COMMON_NAME_BANDS: dict[str, str] = {
    "blue": "B02", "green": "B03", "red": "B04", "rededge": "B05", "rededge1": "B05",
    "nir": "B08", "nir08": "B08", "swir1": "B11", "swir16": "B11", "swir2": "B12",
    "swir22": "B12",
}

#: Names of quality layers in files -> mask kind (:mod:`~kgvsf_explore.ingest.masks`):
#: Sentinel-2 scene classification and cloud probability, Landsat Collection 2 QA_PIXEL,
#: Collection 1 pixel_qa, Fmask class codes; ``'mask'``: a layer whose kind the name does not
#: say (``mask_kind=`` tells it).
MASK_NAMES: dict[str, str] = {
    "scl": "scl", "qa_pixel": "qa_pixel", "pixel_qa": "pixel_qa", "fmask": "fmask",
    "cfmask": "fmask", "cldprb": "cloud_prob", "msk_cldprb": "cloud_prob", "cld": "cloud_prob",
    "cloud_prob": "cloud_prob", "cloudprob": "cloud_prob", "clp": "cloud_prob",
    "mask": "mask", "cloudmask": "mask", "quality": "mask",
}

_SENSORS: tuple[tuple[str, str], ...] = (
    (r"(?:^|[_\W])S2[ABCD](?:_|$)|(?:^|_)T\d{2}[A-Z]{3}_", "sentinel2"),
    (r"(?:^|[_\W])L[COTEM]0?[89](?:_|\d)", "landsat_oli"),
    (r"(?:^|[_\W])L[TEM]0?[4-7](?:_|\d)", "landsat_tm"),
)

_DATE_PATTERNS: tuple[tuple[str, str], ...] = (
    # Sentinel-2 sensing datetime, e.g. 20220701T165851
    (r"(?<!\d)(\d{8})T\d{6}", "%Y%m%d"),
    # Landsat Collection 1/2 product id: LC08_L2SP_PPPRRR_YYYYMMDD_...
    (r"L[COTEM]0\d_L\w{3}_\d{6}_(\d{8})_", "%Y%m%d"),
    # Landsat scene id: LC8 PPP RRR YYYY DDD
    (r"L[COTEM]\d\d{6}(\d{7})", "%Y%j"),
    (r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)", "%Y-%m-%d"),
    (r"(?<!\d)(\d{8})(?!\d)", "%Y%m%d"),
    (r"(?<!\d)(\d{7})(?!\d)", "%Y%j"),
)

_TAG_KEYS = ("DATETIME", "datetime", "ACQUISITION_DATE", "DATE_ACQUIRED", "TIFFTAG_DATETIME",
             "SENSING_TIME", "date")


def _parse(text: str, fmt: str) -> pd.Timestamp | None:
    try:
        ts = pd.to_datetime(text, format=fmt)
    except (ValueError, TypeError):
        return None
    return ts if 1972 <= ts.year <= 2100 else None


def date_from_name(name: str) -> pd.Timestamp | None:
    """Acquisition date (midnight) in a file name, or None when there is none.

    Examples
    --------
    >>> str(date_from_name("LC08_L2SP_026031_20220701_20220706_02_T1_SR_B4.TIF").date())
    '2022-07-01'
    >>> str(date_from_name("LC80260312022182LGN00_B4.TIF").date())
    '2022-07-01'
    """
    for pattern, fmt in _DATE_PATTERNS:
        for m in re.finditer(pattern, name):
            ts = _parse(m.group(1), fmt)
            if ts is not None:
                return ts.normalize()
    return None


def date_from_tags(tags: Mapping[str, str]) -> pd.Timestamp | None:
    """Acquisition date from GeoTIFF tags (``DATETIME``, ``TIFFTAG_DATETIME``...), or None."""
    for key in _TAG_KEYS:
        if key in tags and str(tags[key]).strip():
            text = str(tags[key]).strip()
            # TIFF dates are written 'YYYY:MM:DD HH:MM:SS'
            text = re.sub(r"^(\d{4}):(\d{2}):(\d{2})", r"\1-\2-\3", text)
            try:
                ts = pd.Timestamp(text)
            except ValueError:
                continue
            if ts.tzinfo is not None:
                ts = ts.tz_convert(None)
            return ts.normalize()
    return None


def sensor_from_name(name: str) -> str | None:
    """``'sentinel2'``, ``'landsat_oli'`` (8/9), ``'landsat_tm'`` (4/5/7) or None."""
    for pattern, sensor in _SENSORS:
        if re.search(pattern, name):
            return sensor
    return None


def band_from_name(name: str) -> str | None:
    """The band token of a single-band file name (``'B04'``, ``'B4'``, ``'red'``, ``'scl'``).

    Returns None when the name has no band token (a multi-band file).
    """
    stem = re.sub(r"\.(tif|tiff|jp2|vrt)$", "", name, flags=re.IGNORECASE)
    tokens = re.split(r"[_.\-]", stem)
    last = tokens[-1]
    # Sentinel-2 names end with a resolution: ..._B04_10m
    if re.fullmatch(r"\d+m", last) and len(tokens) > 1:
        last = tokens[-2]
    low = last.lower()
    prev = tokens[-2].lower() if len(tokens) > 1 else ""
    if low == "pixel" and prev == "qa":
        return "qa_pixel"
    if low == "qa" and prev == "pixel":
        return "pixel_qa"
    if low == "mask" and prev == "cloud":
        return "cloudmask"
    m = re.fullmatch(r"band(\d)", low)
    if m and prev == "sr":  # Landsat Collection 1 ESPA: ..._sr_band3.tif
        return "B" + m.group(1)
    if low in MASK_NAMES:
        return MASK_NAMES[low]
    if low in COMMON_NAME_BANDS:
        return low
    if re.fullmatch(r"b(\d{1,2}|8a)", low):
        return "B" + last[1:].upper()
    return None


def cube_band(token: str, sensor: str | None) -> str | None:
    """Cube band of a file's band token for ``sensor``; None when the cube has no such band.

    Raises
    ------
    IngestError
        A bare ``B4``-style token without a known sensor (Landsat 8 B4 is red, Landsat 5 B4 NIR).
    """
    low = token.lower()
    if low in COMMON_NAME_BANDS:
        return COMMON_NAME_BANDS[low]
    up = token.upper()
    if up.startswith("SR_"):
        up = up[3:]
    if re.fullmatch(r"B\d\d|B8A", up):
        return SENTINEL2_BANDS.get(up)
    if re.fullmatch(r"B\d", up):
        if sensor == "landsat_oli":
            return LANDSAT_OLI_BANDS.get(up)
        if sensor == "landsat_tm":
            return LANDSAT_TM_BANDS.get(up)
        if sensor == "sentinel2":
            return SENTINEL2_BANDS.get(f"B0{up[1]}")
        raise IngestError(
            f"band {token!r} is ambiguous without a sensor (Landsat 8/9 B4 is red, Landsat 5/7 "
            "B4 is near-infrared); keep the product name in the file name (LC08_..., LE07_..., "
            "S2A_...) or pass sensor='landsat_oli' / 'landsat_tm' / 'sentinel2' "
            "(kgvsf ingest --sensor ...)"
        )
    return None
