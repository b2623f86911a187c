"""Small files in the real formats (GeoTIFF stacks, station CSVs), for tests and tutorials.

Written from reflectance arrays (e.g. resampled from the sample cube) with the real file names,
integer scaling, no-data values and quality layers (Sentinel-2 SCL and cloud probability,
Landsat Collection 2 QA_PIXEL bits, Collection 1 Fmask class codes), so the readers meet what a
user has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from affine import Affine

__all__ = [
    "write_tif",
    "write_sentinel2_date",
    "write_landsat_date",
    "write_landsat_c1_date",
    "qa_pixel_from_classes",
    "write_station_csv",
    "write_user_files",
]

S2_BANDS = ("B02", "B03", "B04", "B05", "B08", "B11", "B12")
#: Landsat 8/9 file band of each cube band (no red edge).
OLI_OF = {"B02": "B2", "B03": "B3", "B04": "B4", "B08": "B5", "B11": "B6", "B12": "B7"}
#: Landsat 4/5 TM and 7 ETM+ file band number of each cube band.
TM_OF = {"B02": 1, "B03": 2, "B04": 3, "B08": 4, "B11": 5, "B12": 7}

#: Landsat Collection 1 surface reflectance: int16, scale 1e-4, fill -9999.
C1_NODATA = -9999


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


def _dn_c1(refl: np.ndarray) -> np.ndarray:
    dn = np.round(refl / 1e-4)
    return np.where(np.isfinite(refl), np.clip(dn, -2000, 16000), C1_NODATA).astype(np.int16)


def qa_pixel_from_classes(classes: np.ndarray) -> np.ndarray:
    """Landsat Collection 2 QA_PIXEL bits for surface classes (Fmask codes): 0 clear (bit 6),
    1 water (bit 7), 2 cloud shadow (bit 4), 3 snow (bit 5), 4 cloud (bit 3), 255 fill (bit 0)."""
    bits = {0: 1 << 6, 1: 1 << 7, 2: 1 << 4, 3: 1 << 5, 4: 1 << 3, 255: 1}
    out = np.zeros(classes.shape, np.uint16)
    for cls, b in bits.items():
        out[classes == cls] = b
    return out


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
    cloud_prob: np.ndarray | None = None,
    offset_tag: bool = False,
) -> list[Path]:
    """One Sentinel-2 L2A date as single-band files ``S2A_MSIL2A_<date>T170000_<baseline>_...``.

    Reflectance 0-1 (NaN = no data) is written as uint16 DN with the baseline's offset (-1000
    DN from ``N0400``), no-data 0; ``scl`` holds the scene classification codes (None: no SCL
    file). With ``resolution`` the names end as in an L2A product, ``..._B05_20m.tif``.
    ``cloud_prob`` (0-100 %) is written as ``..._CLDPRB...`` (MSK_CLDPRB). With
    ``offset_tag`` the names do not carry the baseline (``S2A_T15TVG_20220701_L2A_B04.tif``)
    and the offset is only in a ``BOA_ADD_OFFSET`` tag, as in files cut out of a product.
    """
    off = -0.1 if int(baseline[1:]) >= 400 else 0.0
    tags = {"BOA_ADD_OFFSET": str(int(round(off * 1e4)))} if offset_tag else None
    stem = (f"S2A_{tile}_{date:%Y%m%d}_L2A" if offset_tag else
            f"S2A_MSIL2A_{date:%Y%m%d}T170000_{baseline}_R026_{tile}_{date:%Y%m%d}T210000")
    end = f"_{resolution}m.tif" if resolution else ".tif"
    paths = [write_tif(Path(folder) / f"{stem}_{b}{end}", _dn(a, 1e-4, off, 0), crs=crs,
                       transform=transform, nodata=0, tags=tags) for b, a in bands.items()]
    if scl is not None:
        paths.append(write_tif(Path(folder) / f"{stem}_SCL{end}", scl.astype(np.uint8),
                               crs=crs, transform=transform, nodata=0))
    if cloud_prob is not None:
        paths.append(write_tif(Path(folder) / f"{stem}_CLDPRB{end}",
                               cloud_prob.astype(np.uint8), crs=crs, transform=transform,
                               nodata=255))
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


def write_landsat_c1_date(
    folder: str | Path,
    date: pd.Timestamp,
    bands: Mapping[str, np.ndarray],
    fmask: np.ndarray | None,
    *,
    crs: str,
    transform: Affine,
    sensor: str = "LT05",
) -> list[Path]:
    """One Landsat 4/5/7 Collection 1 surface-reflectance date as ESPA delivers it:
    ``LT05_L1TP_027031_<date>_<date+30>_01_T1_sr_band3.tif`` (int16, scale 1e-4, no offset,
    fill -9999) and an ``..._fmask.tif`` of class codes (0 clear, 1 water, 2 shadow, 3 snow,
    4 cloud, 255 fill). ``bands`` are keyed by cube band (B02...).
    """
    done = date + pd.Timedelta(days=30)
    stem = f"{sensor}_L1TP_027031_{date:%Y%m%d}_{done:%Y%m%d}_01_T1"
    paths = [write_tif(Path(folder) / f"{stem}_sr_band{TM_OF[b]}.tif", _dn_c1(a), crs=crs,
                       transform=transform, nodata=C1_NODATA)
             for b, a in bands.items() if b in TM_OF]
    if fmask is not None:
        paths.append(write_tif(Path(folder) / f"{stem}_fmask.tif", fmask.astype(np.uint8),
                               crs=crs, transform=transform, nodata=255))
    return paths


def write_station_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a station record; column headers carry their units, e.g. ``'tmax (K)'``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def write_user_files(
    cube: Any,
    folder: str | Path,
    *,
    sensor: str = "sentinel2",
    start: str | None = None,
    end: str | None = None,
    weather: str = "full",
) -> dict[str, Path]:
    """Write a cube's images and weather as a user would bring them: files, not a cube.

    Parameters
    ----------
    cube
        A :class:`~kgvsf_explore.cube.cube.Cube` (e.g. a simulated world); its bands,
        ``cloud_mask`` and drivers (averaged over the region) are written.
    folder
        Gets ``images/`` (one set of GeoTIFFs per image date) and ``station.csv``.
    sensor
        ``"sentinel2"``: L2A names, 10 m bands at the cube's resolution, B05 B11 B12 and the
        SCL (class 9 = cloud) at twice it, baseline 04.00 offset; ``"landsat"``: Collection 2
        L2 names, no red edge, QA_PIXEL cloud bit, all bands at the cube's resolution;
        ``"landsat_c1"``: Landsat 5 Collection 1 SR (ESPA names, int16 x 1e-4) with Fmask
        files (4 cloud, 0 clear).
    start, end
        Image dates written (default: all); the weather covers the year before ``start`` too,
        so forecasts have their context's drivers.
    weather
        ``"full"``: every driver; ``"minimal"``: only ``date, tmin, tmax, prcp`` in degC and
        mm, as most long station records are.

    Returns
    -------
    dict
        ``{"images": folder/images, "weather": folder/station.csv}``.

    Notes
    -----
    The station CSV is in its own units, as station exports are: temperatures in K, rain in
    m, radiation in MJ m-2 per day, vapour pressure in hPa; two days of tmax and one row are
    missing, so the ingest's gap filling runs.
    """
    from affine import Affine as _Affine

    from .. import schema

    folder = Path(folder)
    images = folder / "images"
    ds = cube.ds
    sel = ds[list(schema.BANDS) + [schema.CLOUD_MASK]].sel(time=slice(start, end)).load()
    crs = cube.crs.to_wkt()
    res = float(sel.x[1] - sel.x[0])
    t10 = _Affine(res, 0, float(sel.x[0]) - res / 2, 0, -res, float(sel.y[0]) + res / 2)
    for date in pd.DatetimeIndex(sel.time.values):
        img = sel.sel(time=date)
        cloud = img[schema.CLOUD_MASK].values.astype(bool)
        if sensor == "sentinel2":
            coarse = img.coarsen(y=2, x=2, boundary="trim").mean()
            scl = np.where(img[schema.CLOUD_MASK].coarsen(y=2, x=2, boundary="trim").max()
                           .values, 9, 4)
            b10 = {b: img[b].values for b in ("B02", "B03", "B04", "B08")}
            b20 = {b: coarse[b].values for b in ("B05", "B11", "B12")}
            write_sentinel2_date(images, date, b10, None, crs=crs, transform=t10, resolution=10)
            write_sentinel2_date(images, date, b20, scl, crs=crs,
                                 transform=t10 * _Affine.scale(2), resolution=20)
        elif sensor == "landsat":
            qa = np.where(cloud, 1 << 3, 1 << 6)  # bit 3 cloud, bit 6 clear
            write_landsat_date(images, date, {b: img[b].values for b in OLI_OF}, qa, crs=crs,
                               transform=t10)
        elif sensor == "landsat_c1":
            fmask = np.where(cloud, 4, 0)
            write_landsat_c1_date(images, date, {b: img[b].values for b in TM_OF}, fmask,
                                  crs=crs, transform=t10)
        else:
            raise ValueError(
                f"sensor must be 'sentinel2', 'landsat' or 'landsat_c1', got {sensor!r}")
    days = pd.DatetimeIndex(sel.time.values)
    first = (days[0] - pd.Timedelta(days=365)).strftime("%Y-%m-%d")
    names = ["prcp", "tmax", "tmin", "srad", "vp", "dayl"]
    met = ds[names]
    spatial = [d for d in met.dims if d != schema.DAY_DIM]
    met = met.mean(spatial).sel(day=slice(first, days[-1])).load()
    station = pd.DataFrame({
        "date": met.day.dt.strftime("%Y-%m-%d").values,
        "tmax (K)": met.tmax.values + 273.15,
        "tmin (K)": met.tmin.values + 273.15,
        "precipitation (m)": met.prcp.values / 1000,
        "radiation (MJ/m2)": met.srad.values * met.dayl.values / 1e6,  # daily total
        "vp (hPa)": met.vp.values / 100,
    })
    if weather == "minimal":
        station = pd.DataFrame({"date": station["date"], "tmin": met.tmin.values,
                                "tmax": met.tmax.values, "prcp": met.prcp.values})
        station.loc[200:201, "tmax"] = np.nan  # a two-day gap
    elif weather == "full":
        station.loc[200:201, "tmax (K)"] = np.nan  # a two-day gap
    else:
        raise ValueError(f"weather must be 'full' or 'minimal', got {weather!r}")
    station = station.drop(index=250)          # a missing day
    weather = write_station_csv(folder / "station.csv", station)
    return {"images": images, "weather": weather}
