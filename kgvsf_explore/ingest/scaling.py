"""Digital numbers to 0-1 surface reflectance: scale, offset and no-data per sensor.

==================================  ===========  =========  ==================================
product                             scale        offset     when
==================================  ===========  =========  ==================================
Sentinel-2 L2A, baseline < 04.00    1e-4         0
Sentinel-2 L2A, baseline >= 04.00   1e-4         -0.1       ``_N0400_`` or later in the name,
                                                            ``BOA_ADD_OFFSET`` tag, or (no
                                                            baseline known) dates >= 2022-01-25
Landsat Collection 2 Level-2 SR     2.75e-5      -0.2       any Landsat file
other integer files                 1e-4         0          unless the file has scale/offset
float files                         1            0          assumed already 0-1
==================================  ===========  =========  ==================================

A file's own ``scale``/``offset`` (GDAL metadata) wins over the table; explicit ``scale=`` and
``offset=`` arguments win over both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["S2_OFFSET_SINCE", "reflectance_scaling", "to_reflectance"]

#: First sensing date of Sentinel-2 processing baseline 04.00 (the -1000 DN offset).
S2_OFFSET_SINCE = pd.Timestamp("2022-01-25")


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

    See the module docstring for the rules; ``why`` is a short provenance text for attrs.
    """
    if scale is not None or offset is not None:
        return (1.0 if scale is None else scale, 0.0 if offset is None else offset, "explicit")
    if file_scale != 1.0 or file_offset != 0.0:
        return file_scale, file_offset, "file metadata"
    if np.issubdtype(dtype, np.floating):
        return 1.0, 0.0, "float data, taken as reflectance"
    if sensor and sensor.startswith("landsat"):
        return 2.75e-5, -0.2, "Landsat Collection 2 Level-2"
    if sensor == "sentinel2":
        if "BOA_ADD_OFFSET" in tags:
            return 1e-4, float(tags["BOA_ADD_OFFSET"]) * 1e-4, "Sentinel-2, BOA_ADD_OFFSET tag"
        base = _s2_baseline(name, tags)
        if base is not None:
            off = -0.1 if base >= 400 else 0.0
            return 1e-4, off, f"Sentinel-2 processing baseline {base / 100:.2f}"
        off = -0.1 if date >= S2_OFFSET_SINCE else 0.0
        return 1e-4, off, "Sentinel-2, baseline from the date (>= 2022-01-25: 04.00+)"
    return 1e-4, 0.0, "integer data, x 1e-4"


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
