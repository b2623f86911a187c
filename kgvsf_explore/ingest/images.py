"""A folder of GeoTIFF/JP2 images, one date each, into the cube's ``(time, y, x)`` bands.

Each file is one date: single-band files name their band (``..._B04.tif``, ``..._SR_B4.TIF``,
``..._SCL_20m.tif``, ``..._QA_PIXEL.TIF``, ``..._sr_band3.tif``, ``..._fmask.tif``); multi-band
files name theirs in the GDAL band descriptions (``B04``, ``red``, ``SR_B4``, ``SCL``...) or by
``band_order=``. Files of the same date are merged (several tiles: the first valid value wins;
each tile's quality layer classifies the pixels it covers, :mod:`~.masks`). Every layer is
warped onto one :class:`~kgvsf_explore.ingest.grid.Grid` (bilinear for reflectance, nearest for
masks).

Reading is lazy: :func:`read_images` opens only the files' headers (names, dates, CRS,
footprints, scaling), so every error about the folder is raised at once, and returns
dask-backed variables. Pixels are read when the dataset is computed or written (``kgvsf
ingest`` writes chunk by chunk), one task per (variable, date, spatial tile) that reads only
the part of its files under its tile, so a large archive is ingested in bounded memory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine

from .. import schema
from ._errors import IngestError
from .grid import Footprint, Grid, bounds_in, target_grid, tile_edges
from .masks import (
    CLOUDY,
    HIDDEN,
    MASK_FILL,
    MASK_KINDS,
    NO_DATA,
    UNCLASSIFIED,
    classes_from,
    merge_classes,
)
from .names import (
    MASK_NAMES,
    band_from_name,
    cube_band,
    date_from_name,
    date_from_tags,
    sensor_from_name,
)
from .scaling import ScaleArg, for_band, per_band, reflectance_scaling, to_reflectance

__all__ = ["ImageFile", "scan_images", "read_images", "crs_variable", "IMAGE_SUFFIXES", "TILE"]

IMAGE_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")

#: Edge, in pixels, of the spatial chunks of the lazy bands (and of the zarr chunks that
#: ``kgvsf ingest`` writes): one date by ``TILE`` x ``TILE`` pixels. A task reads only the
#: window of each file under its tile, so its memory does not grow with the image (a
#: Sentinel-2 tile of 10980 x 10980 pixels is 484 tasks of 1 MiB per layer and date, not one
#: of 460 MiB), and the cube's readers (validation samples, training blocks) read a tile
#: without reading the whole date.
TILE = 512

#: Value of a mask layer where the file has no data (its footprint ends), per mask kind.
_MASK_FILL = MASK_FILL

#: Bands the ingest can derive when the sensor lacks them: the red edge B05 (705 nm) by linear
#: interpolation in wavelength between red B04 (665 nm) and NIR B08 (842 nm).
DERIVABLE = {"B05": ("B04", "B08")}


@dataclass
class ImageFile:
    """One file: its date, sensor and which of its bands (1-based) hold which layer."""

    path: Path
    date: pd.Timestamp
    sensor: str | None
    layers: dict[str, int] = field(default_factory=dict)  # cube band or mask kind -> index
    tags: dict[str, str] = field(default_factory=dict)  # metadata beside the file's (STAC)
    scale_offset: tuple[float, float] | None = None  # e.g. STAC raster:bands, wins over rules


def _layer_of(token: str, sensor: str | None, mask_kind: str | None = None,
              name: str = "") -> str | None:
    """Cube band or mask kind (:data:`~.masks.MASK_KINDS`) of a band token; None when the cube
    has no use for it. ``mask_kind`` overrides the kind of every quality layer."""
    low = token.lower()
    if low in MASK_NAMES:
        kind = mask_kind or MASK_NAMES[low]
        if kind == "mask":
            raise IngestError(
                f"{name or token!r} is a quality layer ({token!r}) whose name does not say how "
                "to read it; pass mask_kind= one of "
                f"{', '.join(MASK_KINDS)} (kgvsf ingest --mask-kind ...): 'fmask' for class "
                "codes 0 clear, 1 water, 2 shadow, 3 snow, 4 cloud, 255 fill"
            )
        return kind
    return cube_band(token, sensor)


def _read_error(path: Path, exc: BaseException) -> IngestError:
    """The error of a file GDAL cannot open or read, naming it and what to do."""
    texts, e = [], exc
    while e is not None and len(texts) < 4:  # GDAL's own words are in the chained errors
        text = " ".join(str(e).split())
        if text and "previous exception" not in text and text not in texts:
            texts.append(text)
        e = e.__cause__ or e.__context__
    why = "; ".join(reversed(texts)) or type(exc).__name__
    return IngestError(
        f"cannot read {path.name} ({why}); the file is damaged, truncated or not a raster: "
        f"download it again, or move it out of {path.parent}"
    )


@contextmanager
def _opened(path: Path) -> Iterator[Any]:
    """``rasterio.open(path)``; a file GDAL cannot open raises :class:`IngestError`."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        src = rasterio.open(path)
    except RasterioError as exc:
        raise _read_error(path, exc) from None
    with src:
        yield src


def _describe(path: Path, sensor: str | None, band_order: Sequence[str] | None,
              mask_kind: str | None = None) -> ImageFile:
    name = path.name
    with _opened(path) as src:
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
            layer = _layer_of(token, sens, mask_kind, name)
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
            layer = _layer_of(str(token), sens, mask_kind, name)
            if layer and layer not in item.layers:
                item.layers[layer] = i
    return item


def _walk(folder: Path) -> list[Path]:
    """Every file under ``folder``, following symbolic links to files and folders (a folder
    reached twice, e.g. by a link cycle, is walked once)."""
    seen: set[str] = set()
    out: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        out += [Path(root) / f for f in files]
    return out


def scan_images(
    folder: str | Path,
    *,
    sensor: str | None = None,
    band_order: Sequence[str] | None = None,
    mask_kind: str | None = None,
) -> list[ImageFile]:
    """List the image files of ``folder`` with their dates and layers (reads headers only).

    Parameters
    ----------
    folder
        Searched recursively for ``.tif``, ``.tiff``, ``.jp2`` and ``.vrt`` files; symbolic
        links to files and folders are followed.
    sensor, band_order, mask_kind
        See :func:`read_images`.

    Returns
    -------
    list of ImageFile
        The files that hold a cube band or a cloud layer, sorted by path.

    Raises
    ------
    IngestError
        The folder is missing or empty, a file cannot be opened or has no date, or its bands
        cannot be named.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise IngestError(f"image folder {folder} does not exist; pass a folder of GeoTIFFs")
    if mask_kind is not None and mask_kind not in MASK_KINDS:
        raise IngestError(f"mask_kind must be one of {', '.join(MASK_KINDS)}, got {mask_kind!r}")
    paths = sorted(p for p in _walk(folder) if p.suffix.lower() in IMAGE_SUFFIXES
                   and p.is_file())
    if not paths:
        raise IngestError(
            f"no images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)} files); put one "
            "GeoTIFF per date and band (or one multi-band GeoTIFF per date) there"
        )
    files = [_describe(p, sensor, band_order, mask_kind) for p in paths]
    used = [f for f in files if f.layers]
    if not used:
        raise IngestError(
            f"none of the {len(files)} files in {folder} holds a cube band "
            f"({', '.join(schema.BANDS)}, Landsat SR_B1..SR_B7 or blue/green/red/nir/swir1/swir2)"
        )
    return used



@dataclass(frozen=True)
class _Layer:
    """One layer of one file to warp onto the grid: reflectance (scaled) or a cloud layer."""

    path: Path
    index: int  # 1-based band of the file
    kind: str  # 'refl' or a mask kind (:data:`~.masks.MASK_KINDS`)
    scale: float = 1.0
    offset: float = 0.0
    #: footprint in the grid's CRS, padded by a few pixels (tiles outside it are not read)
    bounds: tuple[float, float, float, float] = (-math.inf, -math.inf, math.inf, math.inf)
    same_crs: bool | None = None  # in the grid's CRS (None: find out when reading)

    def covers(self, box: tuple[float, float, float, float]) -> bool:
        """Whether the (padded) footprint meets ``box`` ``(xmin, ymin, xmax, ymax)``."""
        b = self.bounds
        return box[0] < b[2] and box[2] > b[0] and box[1] < b[3] and box[3] > b[1]


@dataclass
class _Header:
    """What :func:`read_images` needs from a file's header: footprint and band scaling."""

    footprint: Footprint
    size: tuple[int, int]  # (height, width) in pixels
    scaling: dict[str, tuple[float, float, str]]  # cube band -> (scale, offset, why)


def _offset_for(scale: ScaleArg, offset: ScaleArg, band: str) -> float | None:
    """The offset given for ``band``; one offset beside per-band scales goes with those bands
    only."""
    if isinstance(scale, Mapping) and not isinstance(offset, Mapping) and band not in scale:
        return None
    return for_band(offset, band)


def _header(f: ImageFile, scale: ScaleArg, offset: ScaleArg) -> _Header:
    from pyproj import CRS

    with _opened(f.path) as src:
        if src.crs is None:
            raise IngestError(
                f"{f.path.name} has no CRS; write one (e.g. gdal_edit.py -a_srs EPSG:32615) "
                "before ingesting"
            )
        fp = Footprint(f.path.name, CRS.from_user_input(src.crs.to_wkt()), tuple(src.bounds),
                       float(abs(src.transform.a)), src.transform)
        scaling = {}
        for layer, idx in f.layers.items():
            if layer in _MASK_FILL:
                continue
            fs, fo = f.scale_offset or (src.scales[idx - 1], src.offsets[idx - 1])
            sc, off, why = reflectance_scaling(
                sensor=f.sensor, name=f.path.name, tags={**src.tags(), **f.tags},
                date=f.date, dtype=np.dtype(src.dtypes[idx - 1]), file_scale=fs,
                file_offset=fo, scale=for_band(scale, layer), offset=_offset_for(
                    scale, offset, layer))
            if f.scale_offset is not None and not why.startswith("explicit"):
                why = "STAC raster:bands"
            scaling[layer] = (sc, off, why)
        return _Header(fp, (src.height, src.width), scaling)


def _padded_bounds(head: _Header, grid: Grid) -> tuple[float, float, float, float]:
    """A file's footprint in the grid's CRS, grown by a few source and grid pixels."""
    b = bounds_in(head.footprint, grid.crs)
    src_res = max((b[2] - b[0]) / head.size[1], (b[3] - b[1]) / head.size[0])
    pad = 4 * max(src_res, grid.res)
    return (b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad)


def _same_crs(src: Any, grid: Grid) -> bool:
    """Whether the file is in the grid's CRS (the same CRS, however its WKT is written)."""
    from pyproj import CRS

    return src.crs is not None and CRS.from_user_input(src.crs.to_wkt()) == grid.crs


def _source_window(src: Any, grid: Grid, wkt: str, same_crs: bool) -> Any:
    """The window of ``src`` whose pixels the warp onto ``grid`` reads; None when outside.

    The window covers the grid's bounds (in the file's CRS) plus a margin of ``2 + r`` source
    pixels, ``r`` the number of source pixels per grid pixel (the reach of bilinear
    resampling when it shrinks the image), clipped to the file. ``wkt`` is the grid's CRS,
    ``same_crs`` whether the file is in it.
    """
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window

    t = src.transform
    full = Window(0, 0, src.width, src.height)
    if t.b != 0 or t.d != 0 or t.e >= 0:  # not north-up: read it whole
        return full
    b = grid.bounds
    if not same_crs:
        b = transform_bounds(wkt, src.crs, *b, densify_pts=21)
    if not all(math.isfinite(v) for v in b):
        return full
    ratio = max((b[2] - b[0]) / grid.width / abs(t.a), (b[3] - b[1]) / grid.height / abs(t.e),
                1.0)
    pad = math.ceil(ratio) + 2
    c0 = max(math.floor((b[0] - t.c) / t.a) - pad, 0)
    r0 = max(math.floor((b[3] - t.f) / t.e) - pad, 0)
    c1 = min(math.ceil((b[2] - t.c) / t.a) + pad, src.width)
    r1 = min(math.ceil((b[1] - t.f) / t.e) + pad, src.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _aligned(src: Any, grid: Grid, same_crs: bool) -> tuple[int, int, int] | None:
    """``(k, row, col)`` when each pixel of the file is ``k`` x ``k`` grid pixels exactly (same
    CRS, pixel corners on the grid's): the grid's first pixel is then pixel ``(row, col)`` of
    the file repeated ``k`` times along each axis. None otherwise."""
    t, res = src.transform, grid.res
    if not same_crs or t.b != 0 or t.d != 0 or abs(t.a + t.e) > 1e-9 * abs(t.a):
        return None
    k = t.a / res
    if round(k) < 1 or abs(k - round(k)) > 1e-9 * k:
        return None
    col, row = (grid.transform.c - t.c) / res, (t.f - grid.transform.f) / res
    if abs(col - round(col)) >= 1e-6 or abs(row - round(row)) >= 1e-6:
        return None
    return round(k), round(row), round(col)


def _warp(path: Path, index: int, grid: Grid, *, mask: bool, same_crs: bool | None = None,
          **scaling) -> np.ndarray:
    """Band ``index`` of ``path`` on ``grid``: 0-1 reflectance (float32, NaN = no data) or,
    with ``mask``, the raw SCL/QA_PIXEL codes (``scaling['kind']``; fill where no data).

    Only the part of the file under ``grid`` is read: its pixels as they are when the file is
    on the grid's pixels (a mask's repeated when its pixels are whole multiples of the grid's,
    as nearest resampling gives), else a window (:func:`_source_window`) warped onto the grid
    (bilinear for reflectance, nearest for masks). ``same_crs``: whether the file is in the
    grid's CRS (None: find out).
    """
    import rasterio
    from rasterio.warp import Resampling, reproject
    from rasterio.windows import Window

    wkt = grid.crs.to_wkt()
    with rasterio.open(path) as src:
        fill = _MASK_FILL.get(scaling.get("kind", "scl"), 0) if mask else np.nan
        src_nd = (src.nodata if src.nodata is not None else fill) if mask else np.nan
        out = np.full((grid.height, grid.width), fill,
                      dtype=src.dtypes[index - 1] if mask else np.float32)
        if same_crs is None:
            same_crs = _same_crs(src, grid)
        al = _aligned(src, grid, same_crs)
        if al is not None and (al[0] == 1 or mask):
            # on the grid's pixels: copy them (or, for a mask, repeat them: the nearest pixel)
            (k, row, col), (h, w) = al, out.shape
            r0, r1 = max(row, 0), min(row + h, src.height * k)  # in grid pixels
            c0, c1 = max(col, 0), min(col + w, src.width * k)
            if r1 > r0 and c1 > c0:
                sr, sc = r0 // k, c0 // k  # first file pixel read
                raw = src.read(index, window=Window(sc, sr, -(-c1 // k) - sc, -(-r1 // k) - sr))
                vals = (np.where(raw == src_nd, fill, raw) if mask else
                        to_reflectance(raw, scaling["scale"], scaling["offset"], src.nodata))
                if k > 1:
                    vals = np.repeat(np.repeat(vals, k, axis=0), k, axis=1)
                out[r0 - row:r1 - row, c0 - col:c1 - col] = vals[r0 - sr * k:r1 - sr * k,
                                                                 c0 - sc * k:c1 - sc * k]
            return out
        win = _source_window(src, grid, wkt, same_crs)
        if win is None:
            return out
        raw = src.read(index, window=win)
        if not mask:
            raw = to_reflectance(raw, scaling["scale"], scaling["offset"], src.nodata)
        src_transform = src.transform @ Affine.translation(win.col_off, win.row_off)
        reproject(raw, out, src_transform=src_transform, src_crs=src.crs,
                  src_nodata=src_nd, dst_transform=grid.transform, dst_crs=wkt,
                  dst_nodata=fill,
                  resampling=Resampling.nearest if mask else Resampling.bilinear)
        return out


# --------------------------------------------------------------------------------------------
# the tasks of the lazy graph (module functions: they run in dask's workers)


def _read_tile(layer: _Layer, grid: Grid) -> np.ndarray:
    """One layer of one file on one tile; a file GDAL cannot read raises :class:`IngestError`."""
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    try:
        return _warp(layer.path, layer.index, grid, mask=layer.kind != "refl", kind=layer.kind,
                     same_crs=layer.same_crs, scale=layer.scale, offset=layer.offset)
    except (RasterioError, CPLE_BaseError, OSError) as exc:
        raise _read_error(layer.path, exc) from None


def _merged(layers: Sequence[_Layer], grid: Grid) -> np.ndarray:
    """The files of one band and date on one tile, merged in file order: the first valid
    value wins (tiles of a date side by side or overlapping)."""
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    for lay in layers:
        out = np.where(np.isnan(out), _read_tile(lay, grid), out)
    return out


def _classes(layers: Sequence[_Layer] | None, grid: Grid) -> np.ndarray | None:
    """Surface classes (:mod:`~.masks`) of one date and tile from its quality layers (None:
    the date has none).

    Each layer is decoded by its kind; where several have data the cloudier class wins; a
    layer's fill value (outside its footprint: another tile of the date) says nothing, and a
    pixel no layer has data for is no data.
    """
    if layers is None:
        return None
    out = np.full((grid.height, grid.width), UNCLASSIFIED, dtype=np.uint8)
    for lay in layers:
        arr = _read_tile(lay, grid)
        here = arr != _MASK_FILL[lay.kind]
        out = merge_classes(out, classes_from(lay.kind, arr), here)
    out[out == UNCLASSIFIED] = NO_DATA
    return out


def _hidden(values: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """``values`` with NaN where the classes hide the surface, as a ``(1, h, w)`` float32
    chunk."""
    if classes is not None:
        values = np.where(np.isin(classes, HIDDEN), np.nan, values)
    return values.astype(np.float32, copy=False)[None]


def _band_chunk(grid: Grid, layers: Sequence[_Layer], masks: Sequence[_Layer] | None
                ) -> np.ndarray:
    """One ``(1, h, w)`` chunk of a band: its files of the date on the tile, scaled, merged
    and hidden where the date's cloud layers say so."""
    return _hidden(_merged(layers, grid), _classes(masks, grid))


def _derived_chunk(grid: Grid, lo: Sequence[_Layer], hi: Sequence[_Layer],
                   masks: Sequence[_Layer] | None, w: float) -> np.ndarray:
    """One chunk of a band interpolated in wavelength: ``(1 - w) * lo + w * hi``, hidden."""
    return _hidden((1 - w) * _merged(lo, grid) + w * _merged(hi, grid), _classes(masks, grid))


def _cloud_chunk(grid: Grid, masks: Sequence[_Layer] | None) -> np.ndarray:
    """One ``(1, h, w)`` chunk of ``cloud_mask`` (all false for a date without cloud layer)."""
    c = _classes(masks, grid)
    return (np.isin(c, CLOUDY) if c is not None
            else np.zeros((grid.height, grid.width), bool))[None]


def _flag_chunk(grid: Grid, masks: Sequence[_Layer] | None) -> np.ndarray:
    """One ``(1, h, w)`` chunk of ``surface_flag`` (unclassified for a date without layer)."""
    c = _classes(masks, grid)
    return (c if c is not None
            else np.full((grid.height, grid.width), UNCLASSIFIED, np.uint8))[None]


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
    scale: ScaleArg = None,
    offset: ScaleArg = None,
    mask_kind: str | None = None,
    missing_bands: str = "nan",
    tile: int = TILE,
) -> xr.Dataset:
    """Images into lazy ``(time, y, x)`` bands, ``cloud_mask`` and ``spatial_ref``.

    Only the files' headers are read here: every error about the files (no date, empty folder,
    unreadable header, no CRS, images that do not overlap, mixed CRSs without ``crs``, missing
    bands, no file in the cube's area) is raised at once. The variables are dask arrays
    chunked one date by ``tile`` x ``tile`` pixels (see :data:`TILE` for why); each chunk is
    one task that opens the files of its variable and date (and the date's cloud layers),
    reads only the window under its tile, warps it onto the tile, scales, merges and masks
    it. Tasks share nothing, so memory is a few chunks per thread in whatever order dask
    computes them.

    The numbers are those of warping each whole file onto the whole grid (the eager reading
    of earlier versions), bit for bit, when a file is on the grid's pixels (copied), a cloud
    layer's pixels are whole multiples of them (the 20 m SCL), reflectance is enlarged in the
    same CRS (the 20 m bands on a 10 m grid, bilinear) or the grid is one tile. Where a
    tiled grid shrinks the images, or is in another CRS, GDAL fits its resampling kernel and
    its 1/8-pixel approximation of the reprojection to each tile: values then differ from
    one whole-grid warp by about 1e-5 (shrinking) or 1e-3 reflectance (reprojecting).

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
        Override the reflectance scaling of :mod:`~kgvsf_explore.ingest.scaling`: one number
        for every band, or a mapping by cube band (``{'B04': 1e-4}``; bands not in it keep
        the rules). A scale without an offset means offset 0.
    mask_kind
        How to read the quality layers (:data:`~.masks.MASK_KINDS`: ``'fmask'``,
        ``'qa_pixel'``, ``'pixel_qa'``, ``'scl'``, ``'cloud_prob'``); default: from each
        file's name.
    missing_bands
        ``'nan'`` (default): bands the files lack are stored all-NaN and listed in
        ``attrs['kgvsf_missing_bands']``; the cube validates and the model takes them as not
        observed (masked, with a learned "missing" embedding). ``'interpolate'``: a missing red
        edge ``B05`` is interpolated in wavelength between ``B04`` and ``B08`` and flagged as
        derived; any other missing band is then an error.
    tile
        Edge of the spatial chunks in pixels (default :data:`TILE`, 512): one task's memory is
        a few arrays of ``tile`` x ``tile`` float32 per file layer, whatever the image size.

    Returns
    -------
    xarray.Dataset
        Dask-backed bands float32 0-1 with NaN where cloudy, shadowed, snowy or no data,
        ``cloud_mask`` bool, ``surface_flag`` (the quality layers' classes, see
        :mod:`~kgvsf_explore.ingest.masks`), provenance in ``attrs`` (``kgvsf_sources``,
        ``kgvsf_scaling``, ``kgvsf_band_rules``, ``kgvsf_mask_kinds``,
        ``kgvsf_missing_bands``...). Nothing is read until ``.compute()``, ``.values`` or
        a write; a file that turns out unreadable then raises :class:`IngestError` naming it.

    Raises
    ------
    IngestError
        The files cannot make a cube (see above), or no file covers the cube's area.
    """
    import dask.array as da
    from dask.base import tokenize

    files = scan_images(source, sensor=sensor, band_order=band_order,
                        mask_kind=mask_kind) if not isinstance(source, list) else source
    scale, offset = per_band(scale, "scale"), per_band(offset, "offset")
    heads = [_header(f, scale, offset) for f in files]
    grid = target_grid([h.footprint for h in heads], crs=crs, resolution=resolution,
                       bbox=bbox, bbox_crs=bbox_crs)
    dates = sorted({f.date for f in files})
    nt = len(dates)
    shape = (nt, grid.height, grid.width)
    rows, cols = tile_edges(grid.height, tile), tile_edges(grid.width, tile)
    chunks = ((1,) * nt, tuple(b - a for a, b in rows), tuple(b - a for a, b in cols))
    # the layers to read, per date, in file order (the merge order)
    band_layers: dict[str, list[list[_Layer]]] = {}
    mask_layers: list[list[_Layer]] = [[] for _ in dates]
    scalings: dict[str, set[str]] = {}
    # per band and rule: the dates and files it scaled (the plausibility gate checks each)
    rules: dict[str, dict[str, dict[str, Any]]] = {}
    for f, head in zip(files, heads, strict=True):
        t = dates.index(f.date)
        box = _padded_bounds(head, grid)
        same = head.footprint.crs == grid.crs
        for layer, idx in f.layers.items():
            if layer in _MASK_FILL:
                mask_layers[t].append(_Layer(f.path, idx, layer, bounds=box, same_crs=same))
                continue
            sc, off, why = head.scaling[layer]
            text = f"x{sc:g} {off:+g} ({why})"
            scalings.setdefault(text, set()).add(layer)
            rule = rules.setdefault(layer, {}).setdefault(text, {
                "scale": sc, "offset": off, "why": why, "sensor": f.sensor, "dates": set(),
                "files": []})
            rule["dates"].add(t)
            rule["files"].append(f.path.name)
            per_date = band_layers.setdefault(layer, [[] for _ in dates])
            per_date[t].append(_Layer(f.path, idx, "refl", sc, off, box, same))
    if not any(lay.covers(grid.bounds) for per_date in band_layers.values()
               for layers in per_date for lay in layers):
        raise IngestError(
            f"the images hold no valid pixel inside the cube's area {grid.bounds}; check the bbox "
            "and the files' no-data values"
        )
    attrs: dict[str, str] = {}
    found = [b for b in schema.BANDS if b in band_layers]
    missing = [b for b in schema.BANDS if b not in band_layers]
    derived: dict[str, tuple[str, str, float]] = {}
    if missing and missing_bands == "interpolate":
        for b in list(missing):
            lo, hi = DERIVABLE.get(b, (None, None))
            if lo in band_layers and hi in band_layers:
                wl = schema.BAND_WAVELENGTH_NM
                derived[b] = (lo, hi, (wl[b] - wl[lo]) / (wl[hi] - wl[lo]))
                missing.remove(b)
        if missing:
            raise IngestError(
                f"the images lack band(s) {missing} (found {found}), which cannot be "
                "interpolated. Add the files of those bands, or pass missing_bands='nan' (the "
                "default; kgvsf ingest --missing-bands nan) to keep them missing: the model "
                "takes any subset of its bands, masked (see docs/ingest.md)"
            )
    elif missing and missing_bands != "nan":
        raise IngestError(f"missing_bands must be 'interpolate' or 'nan', got {missing_bands!r}")

    # the graph: one task per chunk (variable, date, tile) that reads what it needs, and
    # nothing shared between chunks, so that memory is a few chunks per thread whatever order
    # dask writes them in (it writes variable by variable: a shared cloud layer would be kept
    # for every date until the last variable is written)
    tok = tokenize([(str(f.path), *_stat(f.path)) for f in files], band_layers, mask_layers,
                   grid.crs.to_wkt(), tuple(grid.transform), shape, tile, sorted(derived))
    names = {v: f"{v}-kgvsf-ingest-{tok}" for v in (*found, *derived, schema.CLOUD_MASK,
                                                     schema.SURFACE_FLAG)}
    dsks: dict[str, dict[tuple, Any]] = {v: {} for v in names}
    for t in range(nt):
        for iy, rr in enumerate(rows):
            for ix, cc in enumerate(cols):
                sub = grid.window(rr, cc)
                box = sub.bounds
                masks = (tuple(lay for lay in mask_layers[t] if lay.covers(box))
                         if mask_layers[t] else None)
                here = {b: tuple(lay for lay in band_layers[b][t] if lay.covers(box))
                        for b in found}
                dsks[schema.CLOUD_MASK][(names[schema.CLOUD_MASK], t, iy, ix)] = (
                    partial(_cloud_chunk, sub, masks),)
                dsks[schema.SURFACE_FLAG][(names[schema.SURFACE_FLAG], t, iy, ix)] = (
                    partial(_flag_chunk, sub, masks),)
                for b in found:
                    dsks[b][(names[b], t, iy, ix)] = (partial(_band_chunk, sub, here[b], masks),)
                for b, (lo, hi, w) in derived.items():
                    dsks[b][(names[b], t, iy, ix)] = (
                        partial(_derived_chunk, sub, here[lo], here[hi], masks, w),)

    time = pd.DatetimeIndex(dates)
    coords = {schema.TIME_DIM: time, schema.Y_DIM: grid.y, schema.X_DIM: grid.x}
    dims = (schema.TIME_DIM, schema.Y_DIM, schema.X_DIM)
    ds = xr.Dataset(coords=coords)
    for b in schema.BANDS:
        a = {"long_name": f"surface reflectance {b}", "units": "1",
             "grid_mapping": schema.GRID_MAPPING}
        if b in names:
            v = da.Array(dsks[b], names[b], chunks, dtype=np.float32)
        else:
            v = da.full(shape, np.nan, dtype=np.float32, chunks=chunks)
            a["kgvsf_missing"] = "the images have no such band; all NaN"
        if b in derived:
            a["kgvsf_derived"] = ("interpolated in wavelength between B04 and B08: the sensor "
                                  "has no red-edge band")
        ds[b] = xr.DataArray(v, dims=dims, attrs=a)
    cloud = da.Array(dsks[schema.CLOUD_MASK], names[schema.CLOUD_MASK], chunks, dtype=bool)
    ds[schema.CLOUD_MASK] = xr.DataArray(cloud, dims=dims, attrs={
        "long_name": "cloud or cloud shadow hides the surface",
        "grid_mapping": schema.GRID_MAPPING})
    flag = da.Array(dsks[schema.SURFACE_FLAG], names[schema.SURFACE_FLAG], chunks,
                    dtype=np.uint8)
    ds[schema.SURFACE_FLAG] = xr.DataArray(flag, dims=dims, attrs={
        **schema.legend_attrs(schema.SURFACE_CLASSES, "surface class from the product's "
                              "quality layer (Fmask codes)"),
        "kgvsf_note": "cloud_shadow, snow, cloud and no_data are NaN in the bands; "
                      "unclassified: the date has no quality layer",
        "grid_mapping": schema.GRID_MAPPING})
    ds[schema.GRID_MAPPING] = crs_variable(grid)
    names = sorted(f.path.name for f in files)
    attrs["kgvsf_sources"] = json.dumps(names if len(names) <= 20 else [*names[:20], "..."])
    attrs["kgvsf_n_files"] = len(names)
    attrs["kgvsf_sensors"] = json.dumps(sorted({f.sensor or "unknown" for f in files}))
    attrs["kgvsf_scaling"] = json.dumps({k: sorted(v) for k, v in scalings.items()})
    attrs["kgvsf_band_rules"] = json.dumps({
        b: [{**{k: r[k] for k in ("scale", "offset", "why", "sensor")},
             "dates": sorted(r["dates"]),
             "n_files": len(r["files"]), "files": sorted(r["files"])[:3]}
            for r in rules[b].values()] for b in found})
    attrs["kgvsf_bands_observed"] = json.dumps(found)
    attrs["kgvsf_bands_derived"] = json.dumps(list(derived))
    attrs["kgvsf_missing_bands"] = json.dumps(missing if missing_bands == "nan" else [])
    no_mask = [str(d.date()) for d, m in zip(dates, mask_layers, strict=True) if not m]
    attrs["kgvsf_mask_kinds"] = json.dumps(sorted({lay.kind for m in mask_layers for lay in m}))
    attrs["kgvsf_dates_without_cloud_layer"] = json.dumps(no_mask)
    ds.attrs.update(attrs)
    return ds


def _stat(path: Path) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a file: a changed file gets new task names."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns
