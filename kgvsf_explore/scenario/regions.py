"""Regions of a change: bbox or geometry in any CRS, their JSON form and their grid-cell masks.

A grid cell is inside a region when its centre is: on or inside a bbox, strictly inside a
geometry. A region given in another CRS is reprojected (edges densified) to the data's CRS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import shapely
import xarray as xr
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from .. import schema
from ..errors import ScenarioError
from ._normalise import as_number, fmt_num, short

#: A bounding box ``(xmin, ymin, xmax, ymax)``.
BBox = tuple[float, float, float, float]
Region = BBox | shapely.Geometry

#: Keys of a region's JSON object.
REGION_KEYS = ("bbox", "wkt", "crs")


def as_crs_string(value: Any, label: str) -> str:
    """``AUTHORITY:CODE`` when one matches exactly, WKT otherwise."""
    try:
        crs = CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as err:
        raise ScenarioError(
            f"{label}: {value!r} is not a CRS pyproj understands ({err}); give e.g. "
            f"'EPSG:4326' or 32615."
        ) from None
    auth = crs.to_authority(min_confidence=100)
    return f"{auth[0]}:{auth[1]}" if auth else crs.to_wkt()


def as_region(value: Any, label: str) -> Region:
    """A bbox tuple of floats or a valid shapely geometry with area, from any accepted input."""
    if isinstance(value, str):
        try:
            value = shapely.from_wkt(value)
        except shapely.errors.GEOSException as err:
            raise ScenarioError(
                f"{label}: cannot read the string as WKT ({err}); give a WKT polygon such "
                f"as 'POLYGON ((0 0, 1 0, 1 1, 0 0))' or a bbox (xmin, ymin, xmax, ymax)."
            ) from None
    if isinstance(value, shapely.Geometry):
        if not value.is_valid:
            raise ScenarioError(
                f"{label}: the geometry is invalid ({shapely.is_valid_reason(value)}); "
                f"repair it first, e.g. shapely.make_valid(geom)."
            )
        if value.is_empty or value.area <= 0:
            raise ScenarioError(
                f"{label}: the geometry ({value.geom_type}) has no area; give a Polygon or "
                f"MultiPolygon (buffer points and lines first, e.g. geom.buffer(500))."
            )
        return value
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) == 4:
        try:
            box = tuple(as_number(v, label) for v in value)
        except ScenarioError:
            raise ScenarioError(
                f"{label}: a bbox must be 4 finite numbers (xmin, ymin, xmax, ymax); got "
                f"{tuple(value)!r}."
            ) from None
        xmin, ymin, xmax, ymax = box
        if not (xmin < xmax and ymin < ymax):
            raise ScenarioError(
                f"{label}: degenerate bbox {box!r}; it must be (xmin, ymin, xmax, ymax) "
                f"with xmin < xmax and ymin < ymax (is it in (xmin, xmax, ymin, ymax) order?)."
            )
        return box  # type: ignore[return-value]
    raise ScenarioError(
        f"{label}: expected a bbox (xmin, ymin, xmax, ymax), a shapely geometry or a WKT "
        f"string, got {type(value).__name__}; for a GeoDataFrame pass gdf.union_all() and "
        f"region_crs=gdf.crs."
    )


def region_text(region: Region | None, full: bool = False) -> str:
    """The region as ``"bbox(...)"`` or WKT (shortened unless ``full``), ``""`` if none."""
    if region is None:
        return ""
    if isinstance(region, shapely.Geometry):
        wkt = shapely.to_wkt(region, rounding_precision=-1)
        return wkt if full else short(wkt)
    return f"bbox({', '.join(fmt_num(v) for v in region)})"


def crs_text(region_crs: str) -> str:
    """A CRS string short enough for one line: itself, or the CRS's name for long WKT."""
    return region_crs if len(region_crs) < 40 else CRS(region_crs).name


def region_to_dict(region: Region | None, region_crs: str | None) -> dict[str, Any] | None:
    """The JSON form of a region: ``{"bbox": [...], "crs": ...}``, ``{"wkt": ..., ...}``, None."""
    if isinstance(region, shapely.Geometry):
        return {"wkt": region_text(region, full=True), "crs": region_crs}
    if region is not None:
        return {"bbox": list(region), "crs": region_crs}
    return None


def region_from_dict(region: Any, where: str) -> tuple[Any, Any]:
    """Inverse of :func:`region_to_dict`: ``(region, region_crs)``, still to be validated."""
    if region is None:
        return None, None
    if not isinstance(region, Mapping):
        raise ScenarioError(
            f"{where}.region: expected null, {{'bbox': [xmin, ymin, xmax, ymax], 'crs': "
            f"...}} or {{'wkt': '...', 'crs': ...}}, got {region!r}."
        )
    unknown = sorted(set(region) - set(REGION_KEYS))
    if unknown:
        raise ScenarioError(
            f"{where}.region: unknown key(s) {unknown}; allowed keys are bbox or wkt, and crs."
        )
    if ("bbox" in region) == ("wkt" in region):
        raise ScenarioError(f"{where}.region: give exactly one of 'bbox' and 'wkt'.")
    value = region["bbox"] if "bbox" in region else region["wkt"]
    if isinstance(value, str) and "bbox" in region:
        raise ScenarioError(f"{where}.region.bbox: expected 4 numbers, got {value!r}.")
    return value, region.get("crs")


# ----------------------------------------------------------------------------------------------
# The data's CRS
# ----------------------------------------------------------------------------------------------


def crs_of_dataset(ds: xr.Dataset) -> CRS | None:
    """The CRS of ``spatial_ref`` (``crs_wkt``/``spatial_ref`` attribute) or ``attrs["crs"]``."""
    text = None
    if schema.GRID_MAPPING in ds.variables:
        attrs = ds[schema.GRID_MAPPING].attrs
        text = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    text = text or ds.attrs.get("crs")
    if not text:
        return None
    try:
        return CRS.from_user_input(text)
    except CRSError as err:
        raise ScenarioError(f"Scenario.apply: cannot read the data's CRS ({err}).") from None


def data_crs_getter(obj: Any, ds: xr.Dataset) -> Callable[[], CRS | None]:
    """A function returning the CRS of ``ds`` (or of the object ``obj`` it came from), looked up
    once, on first call: data without regions never needs a CRS."""
    cache: list[CRS | None] = []

    def get() -> CRS | None:
        if not cache:
            crs = crs_of_dataset(ds)
            if crs is None and not isinstance(obj, xr.Dataset):
                own = getattr(obj, "crs", None)
                if own is not None:
                    try:
                        crs = CRS.from_user_input(own)
                    except CRSError:
                        crs = None
                for attr in ("ds", "dataset"):
                    other = getattr(obj, attr, None)
                    if crs is None and isinstance(other, xr.Dataset):
                        crs = crs_of_dataset(other)
            cache.append(crs)
        return cache[0]

    return get


# ----------------------------------------------------------------------------------------------
# Masks
# ----------------------------------------------------------------------------------------------


def region_mask(
    c: Any, da: xr.DataArray, i: int, get_crs: Callable[[], CRS | None]
) -> xr.DataArray | None:
    """Boolean ``(y, x)`` (or ``(y_met, x_met)``) mask of the cells of change ``c`` (number
    ``i`` in its scenario, from 0) on the grid of ``da``; None when ``c`` has no region."""
    if c.region is None:
        return None
    if schema.Y_DIM in da.dims and schema.X_DIM in da.dims:
        ydim, xdim, met = schema.Y_DIM, schema.X_DIM, False
    elif schema.Y_MET_DIM in da.dims and schema.X_MET_DIM in da.dims:
        ydim, xdim, met = schema.Y_MET_DIM, schema.X_MET_DIM, True
    else:
        raise ScenarioError(
            f"Scenario.apply: change {i + 1} ({c}) has a region, but {c.variable!r} is on "
            f"{da.dims}; a region needs spatial drivers on (day, y, x) or (day, y_met, x_met), "
            f"e.g. cube.drivers. Drop the region to change the whole series."
        )
    if ydim not in da.indexes or xdim not in da.indexes:
        raise ScenarioError(
            f"Scenario.apply: {c.variable!r} has no '{ydim}'/'{xdim}' coordinates to place the "
            f"region of change {i + 1} ({c}); assign the cell-centre coordinates first."
        )
    xs = np.asarray(da.indexes[xdim], dtype=float)
    ys = np.asarray(da.indexes[ydim], dtype=float)
    region: Region = c.region
    closed = not isinstance(region, shapely.Geometry)
    if c.region_crs is not None:
        data_crs = get_crs()
        if data_crs is None:
            raise ScenarioError(
                f"Scenario.apply: change {i + 1} ({c}) gives region_crs={c.region_crs!r}, but the "
                f"data has no CRS (no '{schema.GRID_MAPPING}' variable with a 'crs_wkt' attribute "
                f"and no attrs['crs']); add the CRS to the data, or give the region in the data's "
                f"coordinates without region_crs."
            )
        region = reproject(region, CRS.from_user_input(c.region_crs), data_crs, c, i)
    if isinstance(region, shapely.Geometry):
        xx, yy = np.meshgrid(xs, ys)
        test = shapely.intersects_xy if closed else shapely.contains_xy
        sel = test(region, xx, yy)
    else:
        xmin, ymin, xmax, ymax = region
        sel = ((ys >= ymin) & (ys <= ymax))[:, None] & ((xs >= xmin) & (xs <= xmax))[None, :]
    if not sel.any():
        if met:
            raise ScenarioError(
                f"Scenario.apply: the region of change {i + 1} ({c}) contains no cell centre of "
                f"the coarse met grid ({ydim}, {xdim}) of {c.variable!r}; apply the scenario to "
                f"pixel-grid drivers instead, e.g. scenario.apply(cube.drivers) or "
                f"kgvsf_explore.cube.regrid.drivers_on_pixels(ds)."
            )
        raise ScenarioError(
            f"Scenario.apply: the region of change {i + 1} ({c}) contains no cell centre of the "
            f"data (x {xs.min()}..{xs.max()}, y {ys.min()}..{ys.max()}); check its coordinates "
            f"and region_crs."
        )
    return xr.DataArray(
        sel, dims=(ydim, xdim), coords={ydim: da.indexes[ydim], xdim: da.indexes[xdim]}
    )


def reproject(region: Region, src: CRS, dst: CRS, c: Any, i: int) -> Region:
    """``region`` in ``dst``, edges densified to 64 segments per side of its bounds."""
    if src == dst:
        return region
    geom = region if isinstance(region, shapely.Geometry) else shapely.box(*region)
    xmin, ymin, xmax, ymax = geom.bounds
    geom = shapely.segmentize(geom, max(xmax - xmin, ymax - ymin) / 64)
    transformer = Transformer.from_crs(src, dst, always_xy=True)

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    out = shapely.transform(geom, fn)
    if not np.isfinite(shapely.get_coordinates(out)).all():
        raise ScenarioError(
            f"Scenario.apply: the region of change {i + 1} ({c}) cannot be reprojected from "
            f"{c.region_crs} to the data's CRS (outside its area of use?); check the region and "
            f"region_crs (x/y order is longitude/latitude for geographic CRSs)."
        )
    return out
