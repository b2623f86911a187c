"""Which cube bands a dataset really observed: the guard the forecaster can call.

The model treats a pixel with any non-finite band as not observed
(:mod:`kgvsf_explore.inference.tiles`), so a band missing from the whole cube blanks every pixel.
"""

from __future__ import annotations

import json

import xarray as xr

from .. import schema
from ._errors import IngestError

__all__ = ["missing_bands", "require_bands"]


def missing_bands(ds: xr.Dataset) -> list[str]:
    """Cube bands absent from ``ds`` or listed as missing by the ingest (all NaN)."""
    listed = json.loads(ds.attrs.get("kgvsf_missing_bands", "[]") or "[]")
    return [b for b in schema.BANDS if b not in ds.variables or b in listed]


def require_bands(ds: xr.Dataset) -> None:
    """Raise a clear error when ``ds`` lacks bands the shipped model needs.

    Raises
    ------
    IngestError
        Naming the missing bands and what to do.
    """
    missing = missing_bands(ds)
    if missing:
        raise IngestError(
            f"the cube has no observation of band(s) {missing}: the KG-VSF model treats a pixel "
            "with any missing band as unobserved, so it would see no pixel at all. Re-ingest "
            "with those bands, or let the ingest derive the red edge B05 from B04 and B08 "
            "(missing_bands='interpolate', the default); a model adapted to fewer bands needs "
            "a band-subset finetune (see docs/ingest.md)"
        )
