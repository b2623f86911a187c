"""Users' labels on the embeddings' grid: polygons or rasters of classes, soil moisture values.

* :func:`class_raster`: a GeoDataFrame of polygons with a class column (rasterised, reprojected
  to the grid's CRS) or a ``(y, x)`` label DataArray (checked to lie on the grid) -> class index
  per pixel (-1: unlabelled) and the class names and codes;
* :func:`observation_points`: soil moisture as a ``(time, y, x)`` raster or a table of points
  (``x``, ``y``, ``time``, value) -> pixel rows, columns, days and values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ._errors import LabelGridError, TooFewLabelsError, UnknownClassError

__all__ = ["CLASS_COLUMNS", "class_raster", "observation_points"]

#: Columns searched (in order) for the class of each polygon when none is named.
CLASS_COLUMNS: tuple[str, ...] = ("class", "crop_type", "crop", "label", "landcover")
#: Columns searched for a soil moisture value in a point table.
VALUE_COLUMNS: tuple[str, ...] = ("soil_moisture", "sm", "value")


def _grid(like: xr.DataArray) -> tuple[np.ndarray, np.ndarray, float, float]:
    ys = np.asarray(like[schema.Y_DIM].values, float)
    xs = np.asarray(like[schema.X_DIM].values, float)
    dx = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
    dy = float(ys[1] - ys[0]) if len(ys) > 1 else -dx
    return ys, xs, dy, dx


def _crs_of(like: xr.DataArray):
    from ..cube._util import get_crs

    if schema.GRID_MAPPING not in like.coords:
        return None
    return get_crs(like.coords.to_dataset())


def _check_column(gdf, class_column: str | None, columns: Sequence[str]) -> str:
    if class_column is not None:
        if class_column not in gdf.columns:
            raise UnknownClassError(
                f"no column {class_column!r} in the labels (columns: "
                f"{[c for c in gdf.columns if c != 'geometry']})")
        return class_column
    col = next((c for c in columns if c in gdf.columns), None)
    if col is None:
        raise UnknownClassError(
            f"the labels have none of the columns {list(columns)}; name the class column "
            f"with class_column= (columns: {[c for c in gdf.columns if c != 'geometry']})")
    return col


def sort_classes(classes) -> list:
    """Classes in order: numbers by value, names alphabetically (mixed: as text)."""
    try:
        return sorted(classes)
    except TypeError:
        return sorted(classes, key=str)


def _class_list(values: np.ndarray, classes: Sequence[Any] | None) -> list:
    found = sort_classes({v.item() if hasattr(v, "item") else v for v in values})
    if classes is None:
        return found
    known = list(classes)
    unknown = [v for v in found if v not in known]
    if unknown:
        raise UnknownClassError(f"labels of classes {unknown} that are not among the classes "
                                f"given ({known}); add them or drop those labels")
    return known


def _from_polygons(gdf, like: xr.DataArray, class_column: str | None,
                   classes: Sequence[Any] | None) -> tuple[np.ndarray, list]:
    from rasterio.features import rasterize
    from rasterio.transform import from_origin

    if gdf.empty:
        raise TooFewLabelsError("the label GeoDataFrame holds no polygon")
    col = _check_column(gdf, class_column, CLASS_COLUMNS)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty & gdf[col].notna()]
    crs = _crs_of(like)
    if gdf.crs is None:
        raise LabelGridError("the label polygons have no CRS; set one "
                             "(gdf.set_crs('EPSG:32616') or the CRS they are in)")
    if crs is not None:
        gdf = gdf.to_crs(crs.to_wkt())
    names = _class_list(gdf[col].to_numpy(), classes)
    index = {v: i for i, v in enumerate(names)}
    ys, xs, dy, dx = _grid(like)
    if dy > 0:
        raise LabelGridError("polygon labels need a north-up grid (y decreasing)")
    transform = from_origin(xs[0] - dx / 2, ys[0] - dy / 2, dx, -dy)
    burnt = rasterize(((g, index[v] + 1) for g, v in zip(gdf.geometry, gdf[col])),
                      out_shape=(len(ys), len(xs)), transform=transform, fill=0,
                      dtype="int32")
    if not burnt.any():
        b = gdf.total_bounds
        raise LabelGridError(
            f"no label polygon covers a pixel centre of the grid (x {xs.min():.0f} to "
            f"{xs.max():.0f}, y {ys.min():.0f} to {ys.max():.0f}); the polygons span x "
            f"{b[0]:.0f} to {b[2]:.0f}, y {b[1]:.0f} to {b[3]:.0f}: check their CRS and area")
    idx = burnt.astype(np.int64) - 1
    if classes is None:  # only the classes that cover a pixel of the grid
        present = np.unique(idx[idx >= 0])
        remap = np.full(len(names) + 1, -1)
        remap[present] = np.arange(len(present))
        return remap[idx], [names[i] for i in present]
    return idx, names


def on_grid(raster: xr.DataArray, like: xr.DataArray, what: str = "labels") -> xr.DataArray:
    """``raster`` at the pixels of ``like`` (the same or a larger grid), else LabelGridError."""
    for d in (schema.Y_DIM, schema.X_DIM):
        if d not in raster.dims or d not in raster.coords:
            raise LabelGridError(f"the {what} need {schema.Y_DIM!r} and {schema.X_DIM!r} "
                                 f"dimensions with coordinates; they have {raster.dims}")
    _, _, dy, dx = _grid(like)
    tol = 0.01 * min(abs(dx), abs(dy))
    try:
        return raster.sel({schema.Y_DIM: like[schema.Y_DIM].values,
                           schema.X_DIM: like[schema.X_DIM].values},
                          method="nearest", tolerance=tol)
    except KeyError:
        ry, rx = raster[schema.Y_DIM].values, raster[schema.X_DIM].values
        ly, lx = like[schema.Y_DIM].values, like[schema.X_DIM].values
        raise LabelGridError(
            f"the {what} are not on the embeddings' grid: their pixel centres run x "
            f"{rx.min():.1f} to {rx.max():.1f}, y {ry.min():.1f} to {ry.max():.1f}, the grid's "
            f"x {lx.min():.1f} to {lx.max():.1f}, y {ly.min():.1f} to {ly.max():.1f} with "
            f"{abs(dx):g} m pixels; regrid them onto the cube (e.g. raster.interp_like(cube.ds, "
            "method='nearest')) or rasterise polygons instead") from None


def _from_raster(raster: xr.DataArray, like: xr.DataArray, classes: Sequence[Any] | None,
                 nodata: Any) -> tuple[np.ndarray, list]:
    extra = [d for d in raster.dims if d not in (schema.Y_DIM, schema.X_DIM)]
    if extra:
        raise LabelGridError(f"a label raster is (y, x); this one also has {extra}: select "
                             f"one slice (e.g. labels.sel({extra[0]}=...))")
    vals = np.asarray(on_grid(raster, like).values)
    known = np.ones(vals.shape, bool)
    if vals.dtype.kind == "f":
        known &= np.isfinite(vals)
    if nodata is not None:
        known &= vals != nodata
    if not known.any():
        raise TooFewLabelsError("the label raster has no labelled pixel on the grid "
                                f"(all NaN or {nodata!r})")
    if vals.dtype.kind == "f":
        if not np.all(vals[known] == np.round(vals[known])):
            raise UnknownClassError("a label raster holds class codes (integers); this one "
                                    "holds fractional values")
        vals = np.where(known, vals, 0).astype(np.int64)
    names = _class_list(vals[known], classes)
    index = {v: i for i, v in enumerate(names)}
    out = np.full(vals.shape, -1, np.int64)
    out[known] = [index[v.item() if hasattr(v, "item") else v] for v in vals[known]]
    return out, names


def class_raster(labels: Any, like: xr.DataArray, *, class_column: str | None = None,
                 classes: Sequence[Any] | None = None, nodata: Any = -1
                 ) -> tuple[np.ndarray, list]:
    """Class index per pixel of ``like``'s grid (-1: unlabelled) and the class list.

    Parameters
    ----------
    labels
        A GeoDataFrame of polygons with a class column (any CRS; reprojected to the grid's), or
        a ``(y, x)`` DataArray of class codes on the grid (or on a larger grid holding it).
    like
        An array with ``y``/``x`` coordinates (and ``spatial_ref``) of the grid.
    class_column
        The polygons' class column; default the first of :data:`CLASS_COLUMNS` present.
    classes
        The classes, in order (default: the sorted classes found on the grid). A label outside
        them raises.
    nodata
        Raster value meaning "unlabelled" (NaN always is).

    Returns
    -------
    index, classes
        ``(y, x)`` int64 indices into ``classes`` (-1 where unlabelled) and the class list.

    Raises
    ------
    LabelGridError, UnknownClassError, TooFewLabelsError
    """
    import geopandas as gpd

    if isinstance(labels, gpd.GeoDataFrame):
        return _from_polygons(labels, like, class_column, classes)
    if isinstance(labels, xr.DataArray):
        return _from_raster(labels, like, classes, nodata)
    raise LabelGridError(f"labels must be a GeoDataFrame of polygons or a (y, x) DataArray, "
                         f"got {type(labels).__name__}")


def observation_points(obs: Any, like: xr.DataArray, *, value_column: str | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Soil moisture observations as pixel rows, columns, days (since 1970) and values.

    Parameters
    ----------
    obs
        A ``(time or day, y, x)`` DataArray on the grid (NaN: not observed), or a table
        (DataFrame, or GeoDataFrame of points) with columns ``x``, ``y`` (in the grid's CRS;
        a GeoDataFrame's point geometry is reprojected), ``time`` (or ``date``/``day``) and a
        value column (default the first of :data:`VALUE_COLUMNS` present).
    like
        An array with the grid's ``y``/``x`` coordinates.
    value_column
        The table's value column.

    Raises
    ------
    LabelGridError
        Observations off the grid, or a table without the needed columns.
    TooFewLabelsError
        No finite observation.
    """
    ys, xs, dy, dx = _grid(like)
    if isinstance(obs, xr.DataArray):
        tdim = next((d for d in (schema.TIME_DIM, schema.DAY_DIM) if d in obs.dims), None)
        if tdim is None or obs.ndim != 3:
            raise LabelGridError(f"a soil moisture raster is (time, y, x); got {obs.dims}")
        vals = np.asarray(on_grid(obs, like, "observations").transpose(
            tdim, schema.Y_DIM, schema.X_DIM).values, "float32")
        t, r, c = np.nonzero(np.isfinite(vals))
        days = (pd.DatetimeIndex(obs[tdim].values) - pd.Timestamp("1970-01-01")).days
        out = (r, c, np.asarray(days)[t], vals[t, r, c])
    else:
        table = _point_table(obs, like, value_column)
        col = np.rint((table["x"].to_numpy(float) - xs[0]) / dx).astype(np.int64)
        row = np.rint((table["y"].to_numpy(float) - ys[0]) / dy).astype(np.int64)
        off = (row < 0) | (row >= len(ys)) | (col < 0) | (col >= len(xs))
        if off.any():
            raise LabelGridError(
                f"{int(off.sum())} of {len(off)} observations lie outside the grid (x "
                f"{xs.min():.0f} to {xs.max():.0f}, y {ys.min():.0f} to {ys.max():.0f}); check "
                "their coordinates and CRS, or drop them")
        days = (pd.DatetimeIndex(table["time"]) - pd.Timestamp("1970-01-01")).days
        vals = table["value"].to_numpy("float32")
        ok = np.isfinite(vals)
        out = (row[ok], col[ok], np.asarray(days)[ok], vals[ok])
    if len(out[0]) == 0:
        raise TooFewLabelsError("no finite soil moisture observation on the grid")
    return out


def _point_table(obs: Any, like: xr.DataArray, value_column: str | None) -> pd.DataFrame:
    import geopandas as gpd

    if not isinstance(obs, pd.DataFrame):
        raise LabelGridError("soil moisture observations must be a (time, y, x) DataArray or a "
                             f"table of points; got {type(obs).__name__}")
    table = pd.DataFrame(obs).copy()
    if isinstance(obs, gpd.GeoDataFrame):
        crs = _crs_of(like)
        pts = obs.to_crs(crs.to_wkt()) if crs is not None and obs.crs is not None else obs
        table["x"], table["y"] = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
    tcol = next((c for c in ("time", "date", "day") if c in table.columns), None)
    vcol = value_column or next((c for c in VALUE_COLUMNS if c in table.columns), None)
    missing = [n for n, c in (("x", "x" if "x" in table else None),
                              ("y", "y" if "y" in table else None),
                              ("time", tcol), ("value", vcol)) if c is None]
    if missing or (value_column is not None and value_column not in table.columns):
        raise LabelGridError(
            f"the observation table lacks {missing or [value_column]}: it needs x, y (grid "
            f"CRS), time and a value column ({', '.join(VALUE_COLUMNS)} or value_column=); it "
            f"has {list(table.columns)}")
    return pd.DataFrame({"x": table["x"], "y": table["y"],
                         "time": pd.to_datetime(table[tcol]), "value": table[vcol]})
