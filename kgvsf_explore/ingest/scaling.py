"""Digital numbers to 0-1 surface reflectance: which product a file is, and its scale/offset.

==========================================  =======  =======  ==================================
product                                     scale    offset   recognised by
==========================================  =======  =======  ==================================
Sentinel-2 L2A, baseline < 04.00            1e-4     0        ``_N0300_``-style baseline in the
                                                              name or tags
Sentinel-2 L2A, baseline >= 04.00           1e-4     -0.1     ``_N0400_`` or later,
                                                              ``BOA_ADD_OFFSET`` tag, or (no
                                                              baseline known) dates >= 2022-01-25
Landsat Collection 2 Level-2 SR             2.75e-5  -0.2     ``_L2SP_``/``_L2SR_`` or collection
                                                              ``_02_`` in the product id, tag
                                                              ``COLLECTION_NUMBER=2``, or uint16
                                                              data when the name does not say
Landsat Collection 1 SR (ESPA)              1e-4     0        collection ``_01_`` in the product
                                                              id, ``_sr_band`` names, tag
                                                              ``COLLECTION_NUMBER=1``, or int16
                                                              data when the name does not say
other integer files                         1e-4     0        unless the file has scale/offset
float files                                 1        0        assumed already 0-1
==========================================  =======  =======  ==================================

A file's own ``scale``/``offset`` (GDAL metadata) wins over the table; explicit ``scale=`` and
``offset=`` arguments (one number, or per cube band: ``{'B04': 1e-4}``; ``kgvsf ingest --scale
1e-4`` or ``--scale B04=1e-4``) win over both; a scale without an offset means offset 0, an
offset alone keeps the rule's scale. The decision is kept per band in
``attrs['kgvsf_scaling']`` and printed by ``kgvsf ingest``; a wrong one is caught by the
plausibility gate (:mod:`~kgvsf_explore.ingest.gate`), which names the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import schema
from ._errors import IngestError

__all__ = ["S2_OFFSET_SINCE", "PRODUCTS", "Product", "landsat_collection", "detect_product",
           "reflectance_scaling", "to_reflectance", "parse_per_band", "per_band", "for_band"]

#: First sensing date of Sentinel-2 processing baseline 04.00 (the -1000 DN offset).
S2_OFFSET_SINCE = pd.Timestamp("2022-01-25")


@dataclass(frozen=True)
class Product:
    """A reflectance product and its rule ``reflectance = DN * scale + offset``."""

    name: str
    scale: float
    offset: float


#: The products the rules know, by key.
PRODUCTS: dict[str, Product] = {
    "landsat_c2_l2": Product("Landsat Collection 2 Level-2 SR", 2.75e-5, -0.2),
    "landsat_c1_sr": Product("Landsat Collection 1 SR", 1e-4, 0.0),
    "sentinel2_l2a_n0400": Product("Sentinel-2 L2A, baseline >= 04.00", 1e-4, -0.1),
    "sentinel2_l2a": Product("Sentinel-2 L2A, baseline < 04.00", 1e-4, 0.0),
}

ScaleArg = float | Mapping[str, float] | None


def _s2_baseline(name: str, tags: Mapping[str, str]) -> int | None:
    m = re.search(r"_N(\d{4})_", name)
    if m:
        return int(m.group(1))
    text = tags.get("PROCESSING_BASELINE") or tags.get("processing_baseline")
    if text:
        try:
            return int(round(float(text) * 100))
        except ValueError:
            return None
    return None


def landsat_collection(name: str, tags: Mapping[str, str]) -> tuple[int | None, str]:
    """``(collection, why)`` of a Landsat file from its name or tags; ``(None, '')`` if unknown."""
    m = re.search(r"L[COTEM]0\d_(L\w{3})_\d{6}_\d{8}_\d{8}_(\d{2})_", name)
    if m:
        level, coll = m.group(1).upper(), int(m.group(2))
        if level.startswith("L2"):
            return 2, f"{level} in the name"
        return coll, f"collection {coll:02d} in the name"
    if re.search(r"_sr_band\d", name, flags=re.IGNORECASE) and "SR_B" not in name:
        return 1, "ESPA _sr_band name"
    text = tags.get("COLLECTION_NUMBER") or tags.get("collection_number")
    if text and str(text).strip().isdigit():
        return int(str(text).strip()), "COLLECTION_NUMBER tag"
    return None, ""


def detect_product(
    *, sensor: str | None, name: str, tags: Mapping[str, str], date: pd.Timestamp,
    dtype: np.dtype,
) -> tuple[Product | None, str]:
    """The product of a reflectance file and why; ``(None, why)`` when no rule applies."""
    if sensor and sensor.startswith("landsat"):
        coll, why = landsat_collection(name, tags)
        if coll is None:
            if np.dtype(dtype) == np.int16:
                coll, why = 1, "collection not in the name; int16 data as Collection 1 SR"
            else:
                coll, why = 2, f"collection not in the name; {np.dtype(dtype)} data as " \
                               "Collection 2"
        key = "landsat_c2_l2" if coll >= 2 else "landsat_c1_sr"
        return PRODUCTS[key], why
    if sensor == "sentinel2":
        if "BOA_ADD_OFFSET" in tags:
            off = float(tags["BOA_ADD_OFFSET"]) * 1e-4
            key = "sentinel2_l2a_n0400" if off != 0 else "sentinel2_l2a"
            return Product(PRODUCTS[key].name, 1e-4, off), "BOA_ADD_OFFSET tag"
        base = _s2_baseline(name, tags)
        if base is not None:
            key = "sentinel2_l2a_n0400" if base >= 400 else "sentinel2_l2a"
            return PRODUCTS[key], f"processing baseline {base / 100:05.2f}"
        key = "sentinel2_l2a_n0400" if date >= S2_OFFSET_SINCE else "sentinel2_l2a"
        return PRODUCTS[key], "no baseline known: from the date (>= 2022-01-25: 04.00+)"
    return None, ""


def reflectance_scaling(
    *,
    sensor: str | None,
    name: str,
    tags: Mapping[str, str],
    date: pd.Timestamp,
    dtype: np.dtype,
    file_scale: float = 1.0,
    file_offset: float = 0.0,
    scale: float | None = None,
    offset: float | None = None,
) -> tuple[float, float, str]:
    """``(scale, offset, why)`` turning a file's values into reflectance: ``v * scale + offset``.

    See the module docstring for the rules; ``why`` names the product and what told it.
    """
    if scale is not None:
        return scale, 0.0 if offset is None else offset, "explicit"
    sc, off, why = _rule(sensor, name, tags, date, dtype, file_scale, file_offset)
    if offset is not None:
        return sc, offset, f"explicit offset, scale of {why}"
    return sc, off, why


def _rule(sensor: str | None, name: str, tags: Mapping[str, str], date: pd.Timestamp,
          dtype: np.dtype, file_scale: float, file_offset: float) -> tuple[float, float, str]:
    if file_scale != 1.0 or file_offset != 0.0:
        return file_scale, file_offset, "file metadata"
    if np.issubdtype(dtype, np.floating):
        return 1.0, 0.0, "float data, taken as reflectance"
    product, why = detect_product(sensor=sensor, name=name, tags=tags, date=date, dtype=dtype)
    if product is not None:
        return product.scale, product.offset, f"{product.name}: {why}"
    return 1e-4, 0.0, "integer data of an unknown product, x 1e-4"


def parse_per_band(text: str | None, what: str = "--scale") -> float | dict[str, float] | None:
    """``'1e-4'`` -> ``1e-4``; ``'B04=1e-4,B08=2e-4'`` -> ``{'B04': 1e-4, 'B08': 2e-4}``.

    Raises
    ------
    IngestError
        Not a number, or a band that is not a cube band.
    """
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        if "=" not in text:
            return float(text)
        out: dict[str, float] = {}
        for part in text.split(","):
            band, value = (s.strip() for s in part.split("=", 1))
            out[band.upper()] = float(value)
    except ValueError:
        raise IngestError(
            f"{what} {text!r}: give one number for every band (e.g. {what} 1e-4) or "
            f"band=number pairs (e.g. {what} B04=1e-4,B08=1e-4)"
        ) from None
    return per_band(out, what)


def per_band(value: ScaleArg, what: str = "scale") -> ScaleArg:
    """Check a per-band mapping names only cube bands (upper-cased); numbers pass through."""
    if value is None or not isinstance(value, Mapping):
        return None if value is None else float(value)
    out = {str(k).upper(): float(v) for k, v in value.items()}
    bad = [k for k in out if k not in schema.BANDS]
    if bad:
        raise IngestError(
            f"{what}: {bad} are not cube bands; key the values by cube band "
            f"({', '.join(schema.BANDS)}), e.g. {{'B04': 1e-4}}"
        )
    return out


def for_band(value: ScaleArg, band: str) -> float | None:
    """The scale or offset of ``band`` from a number or per-band mapping (None: not given)."""
    if value is None or not isinstance(value, Mapping):
        return value
    return value.get(band)


def to_reflectance(
    values: np.ndarray, scale: float, offset: float, nodata: float | None
) -> np.ndarray:
    """Apply ``values * scale + offset`` as float32 with ``nodata`` (and non-finite) as NaN.

    Integer data without a declared no-data value use 0 (the fill value of Sentinel-2 L2A and
    Landsat Collection 2).
    """
    v = np.asarray(values)
    if nodata is None and np.issubdtype(v.dtype, np.integer):
        nodata = 0
    bad = ~np.isfinite(v) if np.issubdtype(v.dtype, np.floating) else np.zeros(v.shape, bool)
    if nodata is not None and np.isfinite(nodata):
        bad |= v == nodata
    out = v.astype(np.float32) * np.float32(scale) + np.float32(offset)
    out[bad] = np.nan
    return out
