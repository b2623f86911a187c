"""Real data in: a user's Sentinel-2/Landsat images, weather and field polygons -> a cube.

The one-call entry points are :func:`build_cube` (lazy, dask-backed) and :func:`ingest` (written as
zarr), also ``kgvsf ingest`` on the command line; each step is usable alone:

* :func:`read_images` - a folder of GeoTIFFs into bands, ``cloud_mask`` and ``surface_flag``
  (:mod:`.names`, :mod:`.scaling` for the product and its scale/offset, :mod:`.masks` for the
  quality layers, :mod:`.grid`);
* :func:`check_reflectance` - the plausibility gate run before anything is written
  (:mod:`.gate`);
* :func:`read_station_csv`, :func:`read_gridded`, :func:`daily_drivers` - weather in cube units,
  missing srad and vp estimated with a warning (:mod:`.units`, :mod:`.estimate`,
  :mod:`.regrid`);
* :func:`rasterise_fields` - polygons into ``field_id`` and ``crop_type``;
* :mod:`.stac` - a local STAC ItemCollection instead of a folder;
* :func:`missing_bands`, :func:`require_bands` - the band guard for the model;
* :func:`finetune` - the shipped weights adapted to a cube (``kgvsf finetune``).

See ``docs/ingest.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> submodule (loaded on first use, so ``kgvsf --help`` stays fast).
_LAZY = {
    "IngestError": "._errors",
    "IngestWarning": "._errors",
    "check_reflectance": ".gate",
    "build_cube": ".build",
    "ingest": ".build",
    "rasterise_fields": ".fields",
    "read_images": ".images",
    "scan_images": ".images",
    "daily_drivers": ".weather",
    "read_gridded": ".weather",
    "read_station_csv": ".weather",
    "missing_bands": ".bands",
    "require_bands": ".bands",
    "finetune": ".finetune",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
