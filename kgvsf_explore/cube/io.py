"""Open cubes lazily from a Dataset, a Zarr store, a NetCDF file or a simulator directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from .. import schema
from .cube import Cube
from .validate import validate_dataset

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["open_cube", "CUBE_STORE", "FIELDS_FILE"]

#: Names inside a simulator output directory.
CUBE_STORE = "cube.zarr"
FIELDS_FILE = "fields.parquet"

_NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5")


def _is_zarr(path: Path) -> bool:
    return path.is_dir() and (
        path.suffix == ".zarr"
        or any((path / m).exists() for m in ("zarr.json", ".zgroup", ".zmetadata", ".zattrs"))
    )


def _consolidated(path: Path) -> bool:
    """Whether the store at ``path`` has consolidated metadata (so opening it does not warn)."""
    if (path / ".zmetadata").exists():
        return True
    meta = path / "zarr.json"
    if meta.exists():
        try:
            return json.loads(meta.read_text()).get("consolidated_metadata") is not None
        except (OSError, ValueError):
            return False
    return False


def _is_netcdf(path: Path) -> bool:
    if path.suffix.lower() in _NETCDF_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except OSError:
        return False
    return magic[:3] == b"CDF" or magic == b"\x89HDF\r\n\x1a\n"


def _normalise(ds: xr.Dataset) -> xr.Dataset:
    """Give decoded variables their schema dtypes (lazily).

    * bands and truth -> float32 (CF decoding of int16 + scale_factor yields float64);
    * ``cloud_mask`` -> bool;
    * integer static layers decoded to float by a ``_FillValue`` -> back to their integer dtype
      (the fill value where NaN).
    """
    updates: dict[str, xr.DataArray] = {}
    for b in schema.BANDS:
        for name in (b, schema.truth_name(b)):
            if name in ds.data_vars and ds[name].dtype != np.float32:
                updates[name] = ds[name].astype("float32")
    cm = schema.CLOUD_MASK
    if cm in ds.data_vars and ds[cm].dtype != bool:
        updates[cm] = ds[cm].fillna(0).astype(bool)
    for name in (schema.CROP_TYPE, schema.FIELD_ID, schema.SOIL_TYPE):
        if name in ds.data_vars and ds[name].dtype.kind == "f":
            enc_dtype = ds[name].encoding.get("dtype")
            if enc_dtype is not None and np.dtype(enc_dtype).kind in "iu":
                fill = ds[name].encoding.get("_FillValue", 0)
                updates[name] = ds[name].fillna(fill).astype(enc_dtype)
    if not updates:
        return ds
    out = ds.copy()
    for name, da in updates.items():
        encoding = ds[name].encoding
        out[name] = da.assign_attrs(ds[name].attrs)
        out[name].encoding = encoding
    return out


def _read_fields(fields: Any) -> gpd.GeoDataFrame | None:
    if fields is None:
        return None
    import geopandas as gpd

    if isinstance(fields, gpd.GeoDataFrame):
        return fields
    path = Path(fields).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"fields file {path} does not exist")
    if path.suffix.lower() in (".parquet", ".geoparquet"):
        return gpd.read_parquet(path)
    return gpd.read_file(path)


def _open_path(path: Path, chunks: Any) -> tuple[xr.Dataset, Path | None]:
    """Open ``path`` lazily; return the dataset and a sibling fields file if there is one."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; pass a .zarr store, a NetCDF file or a directory holding "
            f"{CUBE_STORE} (and optionally {FIELDS_FILE})"
        )
    if path.is_dir() and (path / CUBE_STORE).is_dir():
        store = path / CUBE_STORE
        fields = path / FIELDS_FILE
        return _open_zarr(store, chunks), (fields if fields.exists() else None)
    if _is_zarr(path):
        return _open_zarr(path, chunks), None
    if path.is_file() and _is_netcdf(path):
        return xr.open_dataset(path, chunks=chunks, mask_and_scale=True), None
    if path.is_dir():
        raise ValueError(
            f"{path} is a directory but neither a Zarr store nor a simulator output holding "
            f"{CUBE_STORE}; contents: {sorted(p.name for p in path.iterdir())[:10]}"
        )
    raise ValueError(
        f"unknown format of {path}: open_cube reads Zarr stores (.zarr), NetCDF/HDF5 files "
        f"({', '.join(_NETCDF_SUFFIXES)}) and directories holding {CUBE_STORE}; for other "
        "formats open the data with xarray yourself and pass the Dataset"
    )


def _open_zarr(path: Path, chunks: Any) -> xr.Dataset:
    # "auto" keeps the store's own chunks: dask's automatic chunking would merge them into
    # ~128 MB blocks, so that reading one training tile would decompress whole variables.
    if isinstance(chunks, str) and chunks == "auto":
        chunks = {}
    return xr.open_zarr(path, chunks=chunks, consolidated=_consolidated(path), mask_and_scale=True)


def open_cube(
    source: xr.Dataset | str | os.PathLike,
    *,
    chunks: Any = "auto",
    validate: bool = True,
    fields: gpd.GeoDataFrame | str | os.PathLike | None = None,
) -> Cube:
    """Open a datacube lazily and wrap it in a :class:`~kgvsf_explore.cube.cube.Cube`.

    Parameters
    ----------
    source
        An ``xarray.Dataset`` (used as it is), a Zarr store (``*.zarr``), a NetCDF/HDF5 file, or
        a directory holding ``cube.zarr`` and optionally ``fields.parquet`` (the simulator's
        layout), whose field polygons are loaded as a GeoDataFrame.
    chunks
        Dask chunks for files: ``"auto"`` (default) keeps a Zarr store's own chunks and lets
        dask choose for NetCDF; or a dict ``{dim: size}``; ``{}`` for the file's chunks;
        ``None`` for no dask (lazy backend arrays, loaded on access).
    validate
        Check the dataset with :func:`~kgvsf_explore.cube.validate.validate_dataset`
        (cheap: samples only).
    fields
        Field polygons (GeoDataFrame or path to a GeoParquet/vector file); overrides a
        ``fields.parquet`` found beside the store.

    Returns
    -------
    Cube
        Bands and truth as float32 (NaN where the stored fill value was), ``cloud_mask`` bool.

    Raises
    ------
    FileNotFoundError
        ``source`` is a path that does not exist.
    ValueError
        ``source`` is of an unknown format.
    CubeValidationError
        With ``validate=True``, the dataset does not follow the schema.
    """
    found_fields: Path | None = None
    if isinstance(source, xr.Dataset):
        ds = source
    elif isinstance(source, (str, os.PathLike)):
        ds, found_fields = _open_path(Path(source).expanduser(), chunks)
    else:
        raise TypeError(f"open_cube takes an xarray.Dataset or a path, got {type(source).__name__}")
    ds = _normalise(ds)
    if validate:
        validate_dataset(ds)
    gdf = _read_fields(fields if fields is not None else found_fields)
    return Cube(ds, fields=gdf)
