"""A local STAC ItemCollection (JSON) of image assets into the cube's bands.

A small reader of its own (plain JSON, no pystac needed): each item is one date
(``properties.datetime``), each asset one layer, named by its key or its ``eo:bands`` name /
common name (``B04``, ``red``, ``nir08``, ``scl``, ``qa_pixel``...). The sensor comes from
``properties.platform`` (``sentinel-2a``, ``landsat-8``...); ``raster:bands`` scale and offset
win over the file-name rules (no-data comes from the files); ``s2:processing_baseline``
selects the Sentinel-2 offset. Asset ``href`` values are local paths, relative to the JSON
file or absolute.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ._errors import IngestError
from .images import ImageFile, read_images
from .names import COMMON_NAME_BANDS, MASK_NAMES

__all__ = ["scan_items", "read_items"]

_PLATFORMS = {"sentinel-2": "sentinel2", "landsat-8": "landsat_oli", "landsat-9": "landsat_oli",
              "landsat-4": "landsat_tm", "landsat-5": "landsat_tm", "landsat-7": "landsat_tm"}


def _sensor(platform: str | None) -> str | None:
    p = (platform or "").lower()
    for key, sensor in _PLATFORMS.items():
        if p.startswith(key):
            return sensor
    return None


def _layer(key: str, asset: dict[str, Any], sensor: str | None) -> str | None:
    from .names import cube_band

    names = [key]
    for b in asset.get("eo:bands", []):
        names += [b.get("name", ""), b.get("common_name", "")]
    for name in names:
        low = str(name).lower()
        if MASK_NAMES.get(low, "mask") != "mask":  # a generic 'mask' asset: kind unknown
            return MASK_NAMES[low]
        if low in COMMON_NAME_BANDS:
            return COMMON_NAME_BANDS[low]
    for name in names:
        try:
            band = cube_band(str(name), sensor)
        except IngestError:
            continue
        if band:
            return band
    return None


def scan_items(path: str | Path) -> list[ImageFile]:
    """The image layers of an ItemCollection JSON, one :class:`ImageFile` per asset."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise IngestError(f"STAC ItemCollection {path} does not exist")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise IngestError(f"{path.name} is not valid JSON ({exc})") from None
    items = doc.get("features", [doc] if doc.get("type") == "Feature" else [])
    if not items:
        raise IngestError(f"{path.name} holds no STAC item (expected a FeatureCollection)")
    files: list[ImageFile] = []
    for item in items:
        props = item.get("properties", {})
        when = props.get("datetime") or props.get("start_datetime")
        if not when:
            raise IngestError(f"item {item.get('id')!r} has no properties.datetime")
        date = pd.Timestamp(when)
        date = date.tz_convert(None) if date.tzinfo is not None else date
        sensor = _sensor(props.get("platform"))
        tags = {}
        if "s2:processing_baseline" in props:
            tags["PROCESSING_BASELINE"] = str(props["s2:processing_baseline"])
        for key, asset in item.get("assets", {}).items():
            layer = _layer(key, asset, sensor)
            if layer is None:
                continue
            href = Path(asset["href"].removeprefix("file://"))
            href = href if href.is_absolute() else path.parent / href
            if not href.is_file():
                raise IngestError(
                    f"asset {key!r} of item {item.get('id')!r} is not a local file ({href}); "
                    "download the assets first (e.g. with stac-asset or odc-stac) and point the "
                    "hrefs at them"
                )
            rb = (asset.get("raster:bands") or [{}])[0]
            so = None
            if "scale" in rb or "offset" in rb:
                so = (float(rb.get("scale", 1.0)), float(rb.get("offset", 0.0)))
            files.append(ImageFile(href, date.normalize(), sensor, {layer: 1}, tags, so))
    if not files:
        raise IngestError(f"no asset of {path.name} maps to a cube band or a cloud layer")
    return files


def read_items(path: str | Path, **kwargs: Any):
    """:func:`~kgvsf_explore.ingest.images.read_images` on the assets of an ItemCollection."""
    return read_images(scan_items(path), **kwargs)
