"""Field polygons (GeoParquet, GeoPackage, Shapefile, GeoJSON) into ``field_id``/``crop_type``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ._errors import IngestError
from .grid import Grid

__all__ = ["CLASS_ALIASES", "CLASS_COLUMNS", "read_fields", "rasterise_fields"]

#: Frequent spellings of the cube's crop classes (after lower-casing, spaces -> underscores).
CLASS_ALIASES: dict[str, str] = {
    "maize": "corn", "soy": "soybean", "soybeans": "soybean", "soya": "soybean",
    "grass": "grassland", "pasture": "grassland", "meadow": "grassland",
    "other": "non_crop", "none": "non_crop", "noncrop": "non_crop", "non-crop": "non_crop",
}

#: Column names searched (in order) for the class of each field when none is given.
CLASS_COLUMNS: tuple[str, ...] = ("crop_type", "crop", "class", "croptype", "landcover", "label")


def read_fields(source: str | Path | gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Read polygons from any format geopandas reads (``.parquet`` as GeoParquet)."""
    if isinstance(source, gpd.GeoDataFrame):
        gdf = source
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise IngestError(f"fields file {path} does not exist")
        gdf = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
    if gdf.crs is None:
        raise IngestError("the field polygons have no CRS; set one (gdf.set_crs('EPSG:4326'))")
    if gdf.empty:
        raise IngestError("the fields file holds no polygon")
    return gdf


def _codes(values: pd.Series, class_map: Mapping[str, str | int] | None) -> np.ndarray:
    names = {v: k for k, v in schema.CROP_CLASSES.items()}
    cmap = {str(k).strip().lower(): v for k, v in (class_map or {}).items()}
    out, unknown = [], set()
    for v in values:
        if isinstance(v, (int, np.integer)) and int(v) in schema.CROP_CLASSES and not cmap:
            out.append(int(v))
            continue
        key = str(v).strip().lower()
        target = cmap.get(key, key)
        if isinstance(target, (int, np.integer)):
            out.append(int(target))
            continue
        target = str(target).strip().lower().replace(" ", "_")
        target = CLASS_ALIASES.get(target, target)
        if target in names:
            out.append(names[target])
        else:
            unknown.add(str(v))
            out.append(0)
    if unknown:
        raise IngestError(
            f"unknown crop class name(s) {sorted(unknown)}; the cube's classes are "
            f"{schema.CROP_CLASSES}. Map them with class_map={{'{sorted(unknown)[0]}': 'corn', "
            "...}} (kgvsf ingest --class-map 'name=corn,...'), using 'non_crop' for the rest"
        )
    return np.asarray(out, dtype=np.int8)


def rasterise_fields(
    source: str | Path | gpd.GeoDataFrame,
    grid: Grid,
    *,
    class_column: str | None = None,
    class_map: Mapping[str, str | int] | None = None,
) -> tuple[xr.DataArray, xr.DataArray | None, gpd.GeoDataFrame]:
    """Burn polygons into ``field_id`` (1..n in file order, 0 outside) and ``crop_type``.

    Parameters
    ----------
    source
        A path or a GeoDataFrame, in any CRS (reprojected to the grid's).
    grid
        The cube's grid.
    class_column
        Column with the crop class (names or cube codes); default the first of
        :data:`CLASS_COLUMNS` present, none when no such column exists.
    class_map
        Class name in the file -> cube class name or code
        (:data:`kgvsf_explore.schema.CROP_CLASSES`).

    Returns
    -------
    field_id, crop_type, fields
        ``(y, x)`` rasters (``crop_type`` None without a class column) and the polygons in the
        grid's CRS with ``field_id`` and ``crop_type`` columns.
    """
    from rasterio.features import rasterize

    gdf = read_fields(source).to_crs(grid.crs.to_wkt()).reset_index(drop=True)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty].copy()
    col = class_column or next((c for c in CLASS_COLUMNS if c in gdf.columns), None)
    if class_column and class_column not in gdf.columns:
        raise IngestError(f"no column {class_column!r} in the fields (columns: "
                          f"{[c for c in gdf.columns if c != 'geometry']})")
    gdf["field_id"] = np.arange(1, len(gdf) + 1, dtype=np.int32)
    shape = (grid.height, grid.width)
    fid = rasterize(zip(gdf.geometry, gdf["field_id"]), out_shape=shape,
                    transform=grid.transform, fill=0, dtype="int32")
    if not fid.any():
        raise IngestError(
            f"no field polygon overlaps the cube's area {tuple(round(v) for v in grid.bounds)} "
            f"in {grid.crs.to_string()}; check the file's CRS and the images' area"
        )
    dims = (schema.Y_DIM, schema.X_DIM)
    field_id = xr.DataArray(fid, dims=dims, attrs={"long_name": "field identifier",
                                                   "grid_mapping": schema.GRID_MAPPING})
    crop = None
    if col is not None:
        gdf["crop_type"] = _codes(gdf[col], class_map)
        ct = rasterize(zip(gdf.geometry, gdf["crop_type"].astype("int32")), out_shape=shape,
                       transform=grid.transform, fill=0, dtype="int32").astype(np.int8)
        crop = xr.DataArray(ct, dims=dims, attrs={
            **schema.legend_attrs(schema.CROP_CLASSES, "crop type"),
            "grid_mapping": schema.GRID_MAPPING, "kgvsf_source_column": col})
    return field_id, crop, gdf
