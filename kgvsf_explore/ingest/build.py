"""Images + weather (+ fields) -> one validated cube, written atomically.

The image bands stay lazy (dask, one date by :data:`~.images.TILE` pixels a chunk) until
:func:`ingest` writes them: dask then reads, warps and writes one chunk at a time, so memory
does not grow with the number of dates. The store is written beside ``out`` under a hidden
name and renamed into place once complete: a failure leaves no half-written cube.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from .._atomic import replace_dir
from ._errors import IngestError
from .estimate import KRS_INTERIOR
from .fields import rasterise_fields
from .gate import check_reflectance
from .grid import Grid
from .images import read_images
from .regrid import to_met_grid
from .weather import MAX_GAP_DAYS, daily_drivers, read_gridded, read_station_csv

__all__ = ["build_cube", "ingest", "grid_of"]

#: Placeholder soil class of an ingested cube (the model does not read soil_type).
UNKNOWN_SOIL = 1  # loam


def grid_of(ds: xr.Dataset) -> Grid:
    """The :class:`~kgvsf_explore.ingest.grid.Grid` of an image dataset."""
    from affine import Affine
    from pyproj import CRS

    x, y = ds[schema.X_DIM].values, ds[schema.Y_DIM].values
    res = float(x[1] - x[0]) if x.size > 1 else float(y[0] - y[1])
    crs = CRS.from_wkt(ds[schema.GRID_MAPPING].attrs["crs_wkt"])
    return Grid(crs, Affine(res, 0.0, x[0] - res / 2, 0.0, -res, y[0] + res / 2),
                y.size, x.size)


def _weather(path: Path, grid: Grid, units: Mapping[str, str] | None, max_gap: int,
             times: pd.DatetimeIndex, **how: Any) -> xr.Dataset:
    if not path.exists():
        raise IngestError(f"weather file {path} does not exist")
    if path.suffix.lower() in (".csv", ".txt"):
        raw = read_station_csv(path, units=units)
        _, lat = grid.centre_lonlat()
        drivers = daily_drivers(raw, lat=lat, max_gap=max_gap, **how)
    else:
        raw = read_gridded(path, units=units)
        drivers = to_met_grid(daily_drivers(raw, max_gap=max_gap, **how), grid)
    day = pd.DatetimeIndex(drivers["day"].values)
    out = times[(times < day[0]) | (times > day[-1])]
    if len(out):
        raise IngestError(
            f"{len(out)} image date(s) fall outside the weather {day[0].date()}..{day[-1].date()}"
            f" (e.g. {out[0].date()}); extend the weather file or drop those images"
        )
    return drivers


def build_cube(
    images: str | Path,
    weather: str | Path,
    *,
    fields: str | Path | None = None,
    crs: str | None = None,
    resolution: float | None = None,
    bbox: Sequence[float] | None = None,
    bbox_crs: str | None = None,
    sensor: str | None = None,
    band_order: Sequence[str] | None = None,
    scale: float | Mapping[str, float] | None = None,
    offset: float | Mapping[str, float] | None = None,
    mask_kind: str | None = None,
    units: Mapping[str, str] | None = None,
    max_gap: int = MAX_GAP_DAYS,
    krs: float = KRS_INTERIOR,
    srad_mean: str | None = None,
    missing_bands: str = "nan",
    class_column: str | None = None,
    class_map: Mapping[str, str | int] | None = None,
    validate: bool = True,
    gate: bool = True,
):
    """Build a cube from a user's files.

    Parameters
    ----------
    images
        A folder of GeoTIFF/JP2 files, one date each (see :func:`~.images.read_images`), or a
        STAC ItemCollection JSON (see :mod:`~kgvsf_explore.ingest.stac`).
    weather
        A station CSV (one series for the region, stored as ``(day,)`` drivers) or a gridded
        NetCDF/zarr (stored on ``(day, y_met, x_met)`` in the cube's CRS).
    fields
        Optional field polygons (GeoParquet, GeoPackage, Shapefile, GeoJSON).
    crs, resolution, bbox, bbox_crs, sensor, band_order, missing_bands
        See :func:`~.images.read_images`.
    scale, offset
        Reflectance scaling instead of the product rules: one number, or per cube band
        (``{'B04': 1e-4}``); see :mod:`~kgvsf_explore.ingest.scaling`.
    mask_kind
        How to read the quality layers (``'fmask'``, ``'qa_pixel'``, ``'pixel_qa'``,
        ``'scl'``, ``'cloud_prob'``); default from the file names.
    units
        Units of weather variables the file does not state, e.g. ``{'tmax': 'K'}``.
    max_gap
        Longest gap of weather days filled by interpolation.
    krs, srad_mean
        Hargreaves' coefficient of an estimated srad (0.16 interior, 0.19 coastal) and the
        time base of a daily srad flux (None: detected); see
        :func:`~.weather.daily_drivers`.
    class_column, class_map
        See :func:`~.fields.rasterise_fields`.
    validate
        Validate with :func:`kgvsf_explore.validate_dataset` (bands listed as missing pass).
    gate
        Run the plausibility gate on the reflectance (:mod:`~kgvsf_explore.ingest.gate`;
        reads a sample of the image chunks).

    Returns
    -------
    kgvsf_explore.Cube
        Validated; the image bands and ``cloud_mask`` lazy (dask: files are read when they
        are computed or written, see :func:`~.images.read_images`), weather and static
        layers in memory; provenance in ``cube.ds.attrs`` (``kgvsf_*``).

    Examples
    --------
    >>> cube = build_cube("my_s2/", "station.csv", fields="fields.gpkg")  # doctest: +SKIP
    >>> cube.to_zarr("my.zarr")  # doctest: +SKIP
    """
    from ..cube.cube import Cube
    from ..cube.validate import validate_dataset

    images = Path(images).expanduser()
    if images.suffix.lower() == ".json":
        from .stac import read_items

        ds = read_items(images, crs=crs, resolution=resolution, bbox=bbox, bbox_crs=bbox_crs,
                        scale=scale, offset=offset, missing_bands=missing_bands)
    else:
        ds = read_images(images, crs=crs, resolution=resolution,
                         bbox=tuple(bbox) if bbox else None, bbox_crs=bbox_crs, sensor=sensor,
                         band_order=band_order, scale=scale, offset=offset,
                         mask_kind=mask_kind, missing_bands=missing_bands)
    if gate:
        check_reflectance(ds)
    grid = grid_of(ds)
    times = pd.DatetimeIndex(ds[schema.TIME_DIM].values)
    drivers = _weather(Path(weather).expanduser(), grid, units, max_gap, times, krs=krs,
                       srad_mean=srad_mean)
    gm = {"grid_mapping": schema.GRID_MAPPING}
    for name in schema.DRIVERS:
        ds[name] = drivers[name]
        if schema.Y_MET_DIM in drivers[name].dims:
            ds[name].attrs.update(gm)
    shape = (grid.height, grid.width)
    dims = (schema.Y_DIM, schema.X_DIM)
    gdf = None
    crop = None
    if fields is not None:
        fid, crop, gdf = rasterise_fields(fields, grid, class_column=class_column,
                                          class_map=class_map)
        ds[schema.FIELD_ID] = fid
    else:
        ds[schema.FIELD_ID] = xr.DataArray(np.zeros(shape, np.int32), dims=dims, attrs={
            "long_name": "field identifier", "kgvsf_note": "no fields given: 0 everywhere", **gm})
    if crop is None:
        crop = xr.DataArray(np.zeros(shape, np.int8), dims=dims, attrs={
            **schema.legend_attrs(schema.CROP_CLASSES, "crop type"), **gm,
            "kgvsf_note": "no crop classes given: non_crop everywhere"})
    ds[schema.CROP_TYPE] = crop
    ds[schema.SOIL_TYPE] = xr.DataArray(
        np.full(shape, UNKNOWN_SOIL, np.int8), dims=dims,
        attrs={**schema.legend_attrs(schema.SOIL_CLASSES, "soil texture class"), **gm,
               "kgvsf_note": "unknown: placeholder loam (the model does not read soil_type)"})
    _, lat = grid.centre_lonlat()
    ds.attrs.update({k: v for k, v in drivers.attrs.items() if k.startswith("kgvsf_")})
    ds.attrs.update({
        "title": "kgvsf-explore cube ingested from user files",
        "Conventions": "CF-1.8",
        "source": f"kgvsf ingest --images {images} --weather {weather}"
                  + (f" --fields {fields}" if fields else ""),
        "latitude": round(lat, 4),
        "kgvsf_ingest": json.dumps({"images": str(images), "weather": str(weather),
                                    "fields": str(fields) if fields else None}),
    })
    if validate:
        validate_dataset(ds)
    return Cube(ds, fields=gdf)


class _Seen:
    """Passes chunks through and notes whether any holds a finite value (thread-safe)."""

    def __init__(self) -> None:
        self.any = False
        self._lock = threading.Lock()

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if not self.any and np.isfinite(block).any():
            with self._lock:
                self.any = True
        return block


@contextlib.contextmanager
def _progress(show: bool | None) -> Iterator[None]:
    """A dask progress bar on stderr while writing (``None``: when stderr is a terminal)."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield
        return
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr):
        yield


def _write_zarr(cube: Any, path: Path, *, progress: bool | None) -> Path:
    """Write ``cube`` to ``path`` through a hidden sibling, renamed in once complete.

    Dask computes the lazy bands chunk by chunk into the store. A band chunk with a finite
    value is noted on the way; with none, :class:`IngestError` is raised and nothing is left.
    """
    import dask.array as da

    from ..cube.cube import Cube

    seen = _Seen()
    ds = cube.ds.copy()
    token = uuid.uuid4().hex[:8]
    for b in schema.BANDS:
        data = ds[b].data
        if isinstance(data, da.Array):
            ds[b] = ds[b].copy(data=da.map_blocks(seen, data, dtype=data.dtype,
                                                  name=f"kgvsf-seen-{b}-{token}"))
        elif np.isfinite(np.asarray(data)).any():
            seen.any = True
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.ingest-{token}")
    try:
        with _progress(progress):
            Cube(ds, fields=cube.fields).to_zarr(tmp)
        if not seen.any:
            raise IngestError(
                f"the images hold no valid pixel inside the cube's area {grid_of(ds).bounds} "
                "(every pixel is no data or cloud); check the bbox, the files' no-data values "
                "and their cloud layers"
            )
        replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def ingest(out: str | Path, images: str | Path, weather: str | Path, *, overwrite: bool = False,
           progress: bool | None = None, **kwargs) -> Path:
    """:func:`build_cube`, then write it atomically; returns the path to give ``open_cube``.

    ``out`` ending in ``.zarr`` is written as one Zarr store (field polygons, if any, beside it
    as ``<name>.fields.parquet``: ``open_cube(out, fields=...)``); any other ``out`` becomes a
    folder ``out/cube.zarr`` + ``out/fields.parquet`` that ``open_cube(out)`` reads whole.

    Parameters
    ----------
    out
        The store (``*.zarr``) or folder to write.
    images, weather
        See :func:`build_cube`.
    overwrite
        Replace an existing ``out``; without it an existing one raises
        :class:`FileExistsError` before anything is read.
    progress
        Show a progress bar (on stderr) while the images are read and written; ``None``
        (default): when stderr is a terminal.
    **kwargs
        The other arguments of :func:`build_cube`.

    Notes
    -----
    Memory stays bounded whatever the number of dates: the image bands are computed and
    written one chunk (one date, 512 x 512 pixels) at a time, a few chunks per thread in
    flight (``benchmarks/bench_ingest.py``). The store is written beside ``out`` under a hidden
    name and renamed into place when complete, so an unreadable file or an interrupted run
    leaves no half-written cube.

    Raises
    ------
    IngestError
        Bad input (see :func:`build_cube`), a file that cannot be read (named), or images
        without any valid pixel in the cube's area.
    FileExistsError
        ``out`` exists and ``overwrite`` is false.
    """
    out = Path(out).expanduser()
    store = out if out.suffix == ".zarr" else out / "cube.zarr"
    parquet = out.with_suffix(".fields.parquet") if out.suffix == ".zarr" else (
        out / "fields.parquet")
    existing = [p for p in (store, parquet if out.suffix != ".zarr" and kwargs.get("fields")
                            else None) if p is not None and p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass overwrite=True to replace it")
    cube = build_cube(images, weather, **kwargs)
    _write_zarr(cube, store, progress=progress)
    if cube.fields is not None:
        tmp = parquet.with_name(f".{parquet.name}.tmp-{uuid.uuid4().hex[:8]}")
        cube.fields.to_parquet(tmp)
        os.replace(tmp, parquet)
    return store if out.suffix == ".zarr" else out
