"""The one target grid every image is warped onto: CRS, transform and shape."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer

from ._errors import IngestError

__all__ = ["Grid", "Footprint", "utm_for", "target_grid", "bounds_in", "tile_edges"]


@dataclass(frozen=True)
class Footprint:
    """A file's CRS, bounds ``(xmin, ymin, xmax, ymax)`` and pixel size, for grid planning."""

    name: str
    crs: CRS
    bounds: tuple[float, float, float, float]
    res: float
    transform: Affine


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: ``crs``, ``transform`` (pixel corners) and ``(height, width)``."""

    crs: CRS
    transform: Affine
    height: int
    width: int

    @property
    def res(self) -> float:
        """Pixel size in CRS units (metres)."""
        return float(self.transform.a)

    @property
    def x(self) -> np.ndarray:
        """Pixel-centre x coordinates, increasing."""
        return self.transform.c + (np.arange(self.width) + 0.5) * self.transform.a

    @property
    def y(self) -> np.ndarray:
        """Pixel-centre y coordinates, decreasing (north-up)."""
        return self.transform.f + (np.arange(self.height) + 0.5) * self.transform.e

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the pixel edges."""
        t = self.transform
        return (t.c, t.f + self.height * t.e, t.c + self.width * t.a, t.f)

    def window(self, rows: tuple[int, int], cols: tuple[int, int]) -> Grid:
        """The sub-grid of pixel rows ``rows[0]:rows[1]`` and columns ``cols[0]:cols[1]``.

        Same CRS and pixel size; its transform is this grid's shifted to the window's corner,
        so its pixels are exactly those of the window.
        """
        (r0, r1), (c0, c1) = rows, cols
        if not (0 <= r0 < r1 <= self.height and 0 <= c0 < c1 <= self.width):
            raise ValueError(f"window rows {rows}, cols {cols} outside a "
                             f"{self.height} x {self.width} grid")
        return Grid(self.crs, self.transform @ Affine.translation(c0, r0), r1 - r0, c1 - c0)

    def centre_lonlat(self) -> tuple[float, float]:
        """Longitude and latitude of the grid centre."""
        xmin, ymin, xmax, ymax = self.bounds
        tr = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        lon, lat = tr.transform((xmin + xmax) / 2, (ymin + ymax) / 2)
        return float(lon), float(lat)


def utm_for(lon: float, lat: float) -> str:
    """The WGS 84 UTM zone of a point, as ``'EPSG:326ZZ'`` (north) or ``'EPSG:327ZZ'``."""
    zone = int((lon + 180) // 6) % 60 + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def tile_edges(size: int, tile: int) -> list[tuple[int, int]]:
    """``[(0, tile), (tile, 2 * tile), ..., (k * tile, size)]``: ``size`` pixels cut in tiles.

    Examples
    --------
    >>> tile_edges(1100, 512)
    [(0, 512), (512, 1024), (1024, 1100)]
    """
    if tile < 1:
        raise ValueError(f"tile must be >= 1 pixel, got {tile}")
    return [(a, min(a + tile, size)) for a in range(0, size, tile)]


def bounds_in(fp: Footprint, crs: CRS) -> tuple[float, float, float, float]:
    """The footprint's bounds ``(xmin, ymin, xmax, ymax)`` in ``crs`` (densified edges)."""
    if fp.crs == crs:
        return fp.bounds
    from rasterio.warp import transform_bounds

    return tuple(transform_bounds(fp.crs, crs, *fp.bounds, densify_pts=21))  # type: ignore


_bounds_in = bounds_in


def _res_in(fp: Footprint, crs: CRS) -> float:
    if fp.crs == crs:
        return fp.res
    xmin, ymin, xmax, ymax = fp.bounds
    width = max(1, round((xmax - xmin) / fp.res))
    bx = _bounds_in(fp, crs)
    return (bx[2] - bx[0]) / width


def target_grid(
    footprints: list[Footprint],
    *,
    crs: str | CRS | None = None,
    resolution: float | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    bbox_crs: str | CRS | None = None,
) -> Grid:
    """Plan the grid of the cube from the files' footprints.

    * CRS: ``crs``, else the files' common CRS (an error when they differ or it is geographic);
    * resolution: ``resolution``, else the finest pixel among the files;
    * extent: ``bbox`` (in ``bbox_crs``, default the target CRS), else the intersection of
      every file's footprint (an error naming the files when it is empty); snapped to the pixel
      grid of the finest file so native pixels are kept when nothing needs reprojecting.
    """
    if not footprints:
        raise IngestError("no image files to plan a grid from")
    crss = {fp.crs.to_wkt(): fp.crs for fp in footprints}
    if crs is None:
        if len(crss) > 1:
            names = sorted({f"{fp.name}: {fp.crs.to_string()}" for fp in footprints})[:6]
            raise IngestError(
                f"the images are in {len(crss)} different CRSs ({'; '.join(names)}); choose the "
                "cube's CRS with crs='EPSG:XXXX' (kgvsf ingest --crs EPSG:XXXX), e.g. the UTM "
                "zone of the region, and they are all reprojected to it"
            )
        target = next(iter(crss.values()))
    else:
        target = CRS.from_user_input(crs)
    if target.is_geographic:
        lon, lat = _centre(footprints[0])
        raise IngestError(
            f"the cube needs a projected CRS in metres, but the images are in {target.to_string()} "
            f"(longitude/latitude); pass crs='{utm_for(lon, lat)}' (the UTM zone of the images' "
            f"centre; kgvsf ingest --crs {utm_for(lon, lat)})"
        )
    finest = min(footprints, key=lambda fp: _res_in(fp, target))
    res = float(resolution) if resolution else _res_in(finest, target)
    if bbox is not None:
        box = tuple(float(v) for v in bbox)
        if bbox_crs is not None and CRS.from_user_input(bbox_crs) != target:
            from rasterio.warp import transform_bounds

            box = tuple(transform_bounds(CRS.from_user_input(bbox_crs), target, *box))
        if box[0] >= box[2] or box[1] >= box[3]:
            raise IngestError(f"bbox {bbox} is empty: give xmin,ymin,xmax,ymax with min < max")
    else:
        allb = np.array([_bounds_in(fp, target) for fp in footprints])
        box = (allb[:, 0].max(), allb[:, 1].max(), allb[:, 2].min(), allb[:, 3].min())
        if box[0] >= box[2] or box[1] >= box[3]:
            lines = "; ".join(
                f"{fp.name}: {tuple(round(v) for v in _bounds_in(fp, target))}"
                for fp in footprints[:6]
            )
            raise IngestError(
                f"the images do not overlap (bounds in {target.to_string()}: {lines}); ingest "
                "only images of one region, or pass bbox=(xmin, ymin, xmax, ymax) "
                "(kgvsf ingest --bbox) to choose the area"
            )
    # snap to the finest file's pixel grid when it is in the target CRS
    ox, oy = (finest.transform.c, finest.transform.f) if finest.crs == target else (0.0, 0.0)
    xmin = ox + math.floor((box[0] - ox) / res + 1e-6) * res
    xmax = ox + math.ceil((box[2] - ox) / res - 1e-6) * res
    ymin = oy + math.floor((box[1] - oy) / res + 1e-6) * res
    ymax = oy + math.ceil((box[3] - oy) / res - 1e-6) * res
    width, height = round((xmax - xmin) / res), round((ymax - ymin) / res)
    if width < 1 or height < 1:
        raise IngestError(f"the area {box} is smaller than one {res:g} m pixel")
    return Grid(target, Affine(res, 0.0, xmin, 0.0, -res, ymax), height, width)


def _centre(fp: Footprint) -> tuple[float, float]:
    xmin, ymin, xmax, ymax = fp.bounds
    tr = Transformer.from_crs(fp.crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform((xmin + xmax) / 2, (ymin + ymax) / 2)
    return float(lon), float(lat)
