"""A folder of GeoTIFF/JP2 images, one date each, into the cube's ``(time, y, x)`` bands.

Each file is one date: single-band files name their band (``..._B04.tif``, ``..._SR_B4.TIF``,
``..._SCL_20m.tif``, ``..._QA_PIXEL.TIF``); multi-band files name theirs in the GDAL band
descriptions (``B04``, ``red``, ``SR_B4``, ``SCL``...) or by ``band_order=``. Files of the same
date are merged (several tiles: the first valid value wins). Every layer is warped onto one
:class:`~kgvsf_explore.ingest.grid.Grid` (bilinear for reflectance, nearest for masks).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ._errors import IngestError
from .grid import Footprint, Grid, target_grid
from .masks import masks_from
from .names import (
    MASK_NAMES,
    band_from_name,
    cube_band,
    date_from_name,
    date_from_tags,
    sensor_from_name,
)
from .scaling import reflectance_scaling, to_reflectance

__all__ = ["ImageFile", "scan_images", "read_images", "crs_variable", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")

#: Bands the ingest can derive when the sensor lacks them: the red edge B05 (705 nm) by linear
#: interpolation in wavelength between red B04 (665 nm) and NIR B08 (842 nm).
DERIVABLE = {"B05": ("B04", "B08")}


@dataclass
class ImageFile:
    """One file: its date, sensor and which of its bands (1-based) hold which layer."""

    path: Path
    date: pd.Timestamp
    sensor: str | None
    layers: dict[str, int] = field(default_factory=dict)  # cube band or 'scl'/'qa_pixel' -> idx
    tags: dict[str, str] = field(default_factory=dict)  # metadata beside the file's (STAC)
    scale_offset: tuple[float, float] | None = None  # e.g. STAC raster:bands, wins over rules


def _layer_of(token: str, sensor: str | None) -> str | None:
    """Cube band, ``'scl'`` or ``'qa_pixel'`` of a band token; None when the cube has no use."""
    low = token.lower()
    if low in MASK_NAMES:
        return MASK_NAMES[low]
    if low == "qa_pixel":
        return "qa_pixel"
    return cube_band(token, sensor)


def _describe(path: Path, sensor: str | None, band_order: Sequence[str] | None) -> ImageFile:
    import rasterio

    name = path.name
    with rasterio.open(path) as src:
        tags = src.tags()
        date = date_from_name(name) or date_from_tags(tags)
        if date is None:
            raise IngestError(
                f"no date in the file name {name!r} nor in its tags; put the acquisition date "
                "in the name (YYYYMMDD, YYYY-MM-DD or YYYYDDD, e.g. "
                "S2A_MSIL2A_20220701T165851_..._B04.tif or LC08_L2SP_026031_20220701_..."
                "_SR_B4.TIF) or set a DATETIME tag"
            )
        sens = sensor or sensor_from_name(name) or tags.get("SENSOR")
        item = ImageFile(path, date, sens)
        if src.count == 1 and band_order is None:
            token = band_from_name(name) or (src.descriptions[0] or None)
            if token is None:
                raise IngestError(
                    f"cannot tell which band {name!r} holds: end the file name with the band "
                    "(..._B04.tif, ..._SR_B4.TIF, ..._red.tif, ..._SCL.tif) or set its GDAL "
                    "band description"
                )
            layer = _layer_of(token, sens)
            if layer:
                item.layers[layer] = 1
            return item
        tokens = list(band_order) if band_order is not None else list(src.descriptions)
        if len(tokens) != src.count or not all(tokens):
            raise IngestError(
                f"{name!r} has {src.count} bands but "
                f"{'band_order names ' + str(len(tokens)) if band_order else 'no band names'}; "
                "name them in the GDAL band descriptions or pass band_order=['B02', 'B03', ...] "
                "(kgvsf ingest --band-order B02,B03,...), one name per band"
            )
        for i, token in enumerate(tokens, start=1):
            layer = _layer_of(str(token), sens)
            if layer and layer not in item.layers:
                item.layers[layer] = i
    return item


def scan_images(
    folder: str | Path,
    *,
    sensor: str | None = None,
    band_order: Sequence[str] | None = None,
) -> list[ImageFile]:
    """List the image files of ``folder`` with their dates and layers (reads headers only).

    Raises
    ------
    IngestError
        The folder is missing or empty, a file has no date, or its bands cannot be named.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise IngestError(f"image folder {folder} does not exist; pass a folder of GeoTIFFs")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise IngestError(
            f"no images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)} files); put one "
            "GeoTIFF per date and band (or one multi-band GeoTIFF per date) there"
        )
    files = [_describe(p, sensor, band_order) for p in paths]
    used = [f for f in files if f.layers]
    if not used:
        raise IngestError(
            f"none of the {len(files)} files in {folder} holds a cube band "
            f"({', '.join(schema.BANDS)}, Landsat SR_B1..SR_B7 or blue/green/red/nir/swir1/swir2)"
        )
    return used


def _footprint(path: Path) -> Footprint:
    import rasterio
    from pyproj import CRS

    with rasterio.open(path) as src:
        if src.crs is None:
            raise IngestError(
                f"{path.name} has no CRS; write one (e.g. gdal_edit.py -a_srs EPSG:32615) "
                "before ingesting"
            )
        return Footprint(path.name, CRS.from_user_input(src.crs.to_wkt()), tuple(src.bounds),
                         float(abs(src.transform.a)), src.transform)


def _warp(path: Path, index: int, grid: Grid, *, mask: bool, **scaling) -> np.ndarray:
    import rasterio
    from rasterio.warp import Resampling, reproject

    with rasterio.open(path) as src:
        raw = src.read(index)
        if mask:
            fill = 1 if scaling.get("kind") == "qa_pixel" else 0
            src_nd = src.nodata if src.nodata is not None else fill
            out = np.full((grid.height, grid.width), fill, dtype=raw.dtype)
            reproject(raw, out, src_transform=src.transform, src_crs=src.crs,
                      src_nodata=src_nd, dst_transform=grid.transform, dst_crs=grid.crs.to_wkt(),
                      dst_nodata=fill, resampling=Resampling.nearest)
            return out
        data = to_reflectance(raw, scaling["scale"], scaling["offset"], src.nodata)
        out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
        # on the target grid already (same CRS, pixel size and pixel corners): copy pixels
        t = src.transform
        same = (src.crs is not None and src.crs.to_wkt() == grid.crs.to_wkt()
                and abs(t.a - grid.res) < 1e-9 * grid.res and abs(-t.e - grid.res) < 1e-9 * grid.res
                and abs(((t.c - grid.transform.c) / grid.res + 0.5) % 1 - 0.5) < 1e-6
                and abs(((t.f - grid.transform.f) / grid.res + 0.5) % 1 - 0.5) < 1e-6)
        reproject(data, out, src_transform=src.transform, src_crs=src.crs, src_nodata=np.nan,
                  dst_transform=grid.transform, dst_crs=grid.crs.to_wkt(), dst_nodata=np.nan,
                  resampling=Resampling.nearest if same else Resampling.bilinear)
        return out


def crs_variable(grid: Grid) -> xr.DataArray:
    """The CF ``spatial_ref`` grid-mapping variable of ``grid`` (rioxarray/GDAL convention)."""
    attrs = grid.crs.to_cf()
    attrs["crs_wkt"] = grid.crs.to_wkt()
    attrs["spatial_ref"] = attrs["crs_wkt"]
    attrs["GeoTransform"] = " ".join(str(v) for v in grid.transform.to_gdal())
    return xr.DataArray(np.int32(0), attrs=attrs)


def read_images(
    source: str | Path | list[ImageFile],
    *,
    crs: str | None = None,
    resolution: float | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    bbox_crs: str | None = None,
    sensor: str | None = None,
    band_order: Sequence[str] | None = None,
    scale: float | None = None,
    offset: float | None = None,
    missing_bands: str = "interpolate",
) -> xr.Dataset:
    """Read a folder of images into ``(time, y, x)`` bands, ``cloud_mask`` and ``spatial_ref``.

    Parameters
    ----------
    source
        A folder (searched recursively) or the result of :func:`scan_images`.
    crs, resolution, bbox, bbox_crs
        The target grid (see :func:`~kgvsf_explore.ingest.grid.target_grid`); by default the
        files' common CRS, their finest resolution and the intersection of their footprints.
    sensor
        ``'sentinel2'``, ``'landsat_oli'`` or ``'landsat_tm'`` when the file names do not say.
    band_order
        Band names of multi-band files without GDAL band descriptions.
    scale, offset
        Override the reflectance scaling of :mod:`~kgvsf_explore.ingest.scaling`.
    missing_bands
        ``'interpolate'`` (default): a missing red edge ``B05`` is interpolated in wavelength
        between ``B04`` and ``B08`` and flagged; any other missing band is an error.
        ``'nan'``: missing bands are stored all-NaN and listed in ``attrs['kgvsf_missing_bands']``
        (such a cube does not pass validation and the shipped model sees no valid pixel in it).

    Returns
    -------
    xarray.Dataset
        Bands float32 0-1 with NaN where cloudy or no data, ``cloud_mask`` bool, provenance in
        ``attrs`` (``kgvsf_sources``, ``kgvsf_scaling``, ``kgvsf_missing_bands``...).
    """
    files = scan_images(source, sensor=sensor, band_order=band_order) if not isinstance(
        source, list) else source
    grid = target_grid([_footprint(f.path) for f in files], crs=crs, resolution=resolution,
                       bbox=bbox, bbox_crs=bbox_crs)
    dates = sorted({f.date for f in files})
    shape = (len(dates), grid.height, grid.width)
    bands: dict[str, np.ndarray] = {}
    cloud = np.zeros(shape, dtype=bool)
    nodata = np.zeros(shape, dtype=bool)
    has_mask = np.zeros(len(dates), dtype=bool)
    scalings: dict[str, set[str]] = {}
    for f in files:
        t = dates.index(f.date)
        for layer, idx in f.layers.items():
            if layer in ("scl", "qa_pixel"):
                c, nd = masks_from(layer, _warp(f.path, idx, grid, mask=True, kind=layer))
                cloud[t] |= c
                nodata[t] |= nd & ~c
                has_mask[t] = True
                continue
            import rasterio

            with rasterio.open(f.path) as src:
                fs, fo = f.scale_offset or (src.scales[idx - 1], src.offsets[idx - 1])
                sc, off, why = reflectance_scaling(
                    sensor=f.sensor, name=f.path.name, tags={**src.tags(), **f.tags},
                    date=f.date, dtype=np.dtype(src.dtypes[idx - 1]), file_scale=fs,
                    file_offset=fo, scale=scale, offset=offset)
                if f.scale_offset is not None and scale is None and offset is None:
                    why = "STAC raster:bands"
            scalings.setdefault(f"x{sc:g} {off:+g} ({why})", set()).add(layer)
            arr = _warp(f.path, idx, grid, mask=False, scale=sc, offset=off)
            cur = bands.setdefault(layer, np.full(shape, np.nan, dtype=np.float32))
            cur[t] = np.where(np.isnan(cur[t]), arr, cur[t])
    if not any(np.isfinite(b).any() for b in bands.values()):
        raise IngestError(
            f"the images hold no valid pixel inside the cube's area {grid.bounds}; check the bbox "
            "and the files' no-data values"
        )
    attrs: dict[str, str] = {}
    found = [b for b in schema.BANDS if b in bands]
    missing = [b for b in schema.BANDS if b not in bands]
    derived = []
    if missing and missing_bands == "interpolate":
        for b in list(missing):
            lo, hi = DERIVABLE.get(b, (None, None))
            if lo in bands and hi in bands:
                wl = schema.BAND_WAVELENGTH_NM
                w = (wl[b] - wl[lo]) / (wl[hi] - wl[lo])
                bands[b] = (1 - w) * bands[lo] + w * bands[hi]
                derived.append(b)
                missing.remove(b)
        if missing:
            raise IngestError(
                f"the images lack band(s) {missing} (found {found}); the KG-VSF model needs "
                f"every cube band {list(schema.BANDS)}. Add the files of those bands, or pass "
                "missing_bands='nan' (kgvsf ingest --missing-bands nan) to store them empty and "
                "adapt a model to the bands you have (see docs/ingest.md)"
            )
    elif missing and missing_bands == "nan":
        for b in missing:
            bands[b] = np.full(shape, np.nan, dtype=np.float32)
    elif missing:
        raise IngestError(f"missing_bands must be 'interpolate' or 'nan', got {missing_bands!r}")
    hide = cloud | nodata
    time = pd.DatetimeIndex(dates)
    coords = {schema.TIME_DIM: time, schema.Y_DIM: grid.y, schema.X_DIM: grid.x}
    dims = (schema.TIME_DIM, schema.Y_DIM, schema.X_DIM)
    ds = xr.Dataset(coords=coords)
    for b in schema.BANDS:
        v = np.where(hide, np.nan, bands[b]).astype(np.float32)
        a = {"long_name": f"surface reflectance {b}", "units": "1",
             "grid_mapping": schema.GRID_MAPPING}
        if b in derived:
            a["kgvsf_derived"] = ("interpolated in wavelength between B04 and B08: the sensor "
                                  "has no red-edge band")
        if b in missing:
            a["kgvsf_missing"] = "the images have no such band; all NaN"
        ds[b] = xr.DataArray(v, dims=dims, attrs=a)
    ds[schema.CLOUD_MASK] = xr.DataArray(cloud, dims=dims, attrs={
        "long_name": "cloud or cloud shadow hides the surface",
        "grid_mapping": schema.GRID_MAPPING})
    ds[schema.GRID_MAPPING] = crs_variable(grid)
    names = sorted(f.path.name for f in files)
    attrs["kgvsf_sources"] = json.dumps(names if len(names) <= 20 else [*names[:20], "..."])
    attrs["kgvsf_n_files"] = len(names)
    attrs["kgvsf_sensors"] = json.dumps(sorted({f.sensor or "unknown" for f in files}))
    attrs["kgvsf_scaling"] = json.dumps({k: sorted(v) for k, v in scalings.items()})
    attrs["kgvsf_bands_observed"] = json.dumps(found)
    attrs["kgvsf_bands_derived"] = json.dumps(derived)
    attrs["kgvsf_missing_bands"] = json.dumps(missing if missing_bands == "nan" else [])
    no_mask = [str(d.date()) for d, m in zip(dates, has_mask) if not m]
    attrs["kgvsf_dates_without_cloud_layer"] = json.dumps(no_mask)
    ds.attrs.update(attrs)
    return ds
