"""Small files in the real formats (GeoTIFF stacks, station CSVs), for tests and tutorials.

Written from reflectance arrays (e.g. resampled from the sample cube) with the real file names,
integer scaling, no-data values and SCL / QA_PIXEL codes, so the readers meet what a user has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from affine import Affine

__all__ = ["write_tif", "write_sentinel2_date", "write_landsat_date", "write_station_csv"]

S2_BANDS = ("B02", "B03", "B04", "B05", "B08", "B11", "B12")
#: Landsat 8/9 file band of each cube band (no red edge).
OLI_OF = {"B02": "B2", "B03": "B3", "B04": "B4", "B08": "B5", "B11": "B6", "B12": "B7"}


def write_tif(
    path: str | Path,
    data: np.ndarray,
    *,
    crs: str,
    transform: Affine,
    nodata: float | None = None,
    descriptions: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Write ``data`` (``(h, w)`` or ``(bands, h, w)``) as a GeoTIFF."""
    import rasterio

    arr = data[None] if data.ndim == 2 else data
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[1], width=arr.shape[2],
                       count=arr.shape[0], dtype=arr.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(arr)
        for i, d in enumerate(descriptions or (), start=1):
            dst.set_band_description(i, d)
        if tags:
            dst.update_tags(**tags)
    return path


def _dn(refl: np.ndarray, scale: float, offset: float, nodata: int) -> np.ndarray:
    dn = np.round((refl - offset) / scale)
    dn = np.where(np.isfinite(refl), np.clip(dn, 1, 65535), nodata)
    return dn.astype(np.uint16)


def write_sentinel2_date(
    folder: str | Path,
    date: pd.Timestamp,
    bands: Mapping[str, np.ndarray],
    scl: np.ndarray | None,
    *,
    crs: str,
    transform: Affine,
    tile: str = "T15TVG",
    baseline: str = "N0400",
    resolution: int | None = None,
) -> list[Path]:
    """One Sentinel-2 L2A date as single-band files ``S2A_MSIL2A_<date>T170000_<baseline>_...``.

    Reflectance 0-1 (NaN = no data) is written as uint16 DN with the baseline's offset (-1000
    DN from ``N0400``), no-data 0; ``scl`` holds the scene classification codes (None: no SCL
    file). With ``resolution`` the names end as in an L2A product, ``..._B05_20m.tif``.
    """
    off = -0.1 if int(baseline[1:]) >= 400 else 0.0
    stem = f"S2A_MSIL2A_{date:%Y%m%d}T170000_{baseline}_R026_{tile}_{date:%Y%m%d}T210000"
    end = f"_{resolution}m.tif" if resolution else ".tif"
    paths = [write_tif(Path(folder) / f"{stem}_{b}{end}", _dn(a, 1e-4, off, 0), crs=crs,
                       transform=transform, nodata=0) for b, a in bands.items()]
    if scl is not None:
        paths.append(write_tif(Path(folder) / f"{stem}_SCL{end}", scl.astype(np.uint8),
                               crs=crs, transform=transform, nodata=0))
    return paths


def write_landsat_date(
    folder: str | Path,
    date: pd.Timestamp,
    bands: Mapping[str, np.ndarray],
    qa: np.ndarray,
    *,
    crs: str,
    transform: Affine,
    sensor: str = "LC08",
) -> list[Path]:
    """One Landsat Collection 2 L2 date: ``LC08_L2SP_026031_<date>_<date+5>_02_T1_SR_B4.TIF``.

    ``bands`` are keyed by cube band (B02...); written with scale 2.75e-5, offset -0.2, no-data 0.
    """
    done = date + pd.Timedelta(days=5)
    stem = f"{sensor}_L2SP_026031_{date:%Y%m%d}_{done:%Y%m%d}_02_T1"
    paths = [write_tif(Path(folder) / f"{stem}_SR_{OLI_OF[b]}.TIF", _dn(a, 2.75e-5, -0.2, 0),
                       crs=crs, transform=transform, nodata=0)
             for b, a in bands.items() if b in OLI_OF]
    paths.append(write_tif(Path(folder) / f"{stem}_QA_PIXEL.TIF", qa.astype(np.uint16), crs=crs,
                           transform=transform, nodata=1))
    return paths


def write_station_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a station record; column headers carry their units, e.g. ``'tmax (K)'``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
