"""Cover a region with model tiles, build their context batches and stitch tile outputs back.

Shared by region forecasts and embeddings: the region is covered by ``tile x tile`` windows (the
last row/column of windows is shifted back inside the cube, so any region size works), each
window's context is the last ``context`` images on or before the start date with the observed
tile-mean drivers up to ``t``, and per-tile outputs are averaged where windows overlap.

The cube may lack any of the model's bands but not all of them: a band absent from the dataset
or listed in ``attrs["kgvsf_missing_bands"]`` is left out of the pixels' validity and reaches
the model through the batch's ``band_mask`` (False for it), so the model predicts it from the
other bands.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import schema
from ..cube.cube import REGION_MASK, Cube, observed_bands
from ..cube.reading import reading
from ..cube.regrid import TileDrivers
from ..errors import KGVSFError, RegionError
from ..models.config import ModelConfig


def _origins(start: int, length: int, tile: int, total: int) -> list[int]:
    """Tile origins covering ``[start, start + length)`` inside ``[0, total)``."""
    if total < tile:
        raise KGVSFError(f"the cube ({total} px) is smaller than the model tile ({tile} px)")
    lo = min(max(0, start - max(0, (tile - length) // 2)), total - tile)
    out = list(range(lo, max(lo + 1, start + length - tile + 1), tile))
    if out[-1] + tile < start + length:
        out.append(min(start + length - tile, total - tile))
    return sorted(set(min(o, total - tile) for o in out))


def region_slices(cube: Cube, bbox: Sequence[float] | None) -> tuple[slice, slice]:
    """Pixel row/column slices of ``bbox`` (cube CRS) inside the cube (all of it when None)."""
    ds = cube.ds
    if bbox is None:
        return slice(0, ds.sizes[schema.Y_DIM]), slice(0, ds.sizes[schema.X_DIM])
    sub = cube.sel_bbox(*bbox, require_valid=False).ds
    r0 = int(np.flatnonzero(ds[schema.Y_DIM].values == sub[schema.Y_DIM].values[0])[0])
    c0 = int(np.flatnonzero(ds[schema.X_DIM].values == sub[schema.X_DIM].values[0])[0])
    return slice(r0, r0 + sub.sizes[schema.Y_DIM]), slice(c0, c0 + sub.sizes[schema.X_DIM])


def resolve_region(cube: Cube, region: Any) -> tuple[slice, slice, np.ndarray | None]:
    """Row/column slices of ``region`` in the cube and, for a geometry, the pixels inside it.

    Parameters
    ----------
    cube
        The cube.
    region
        None (the whole cube); a bbox ``(xmin, ymin, xmax, ymax)`` in the cube's CRS; or a
        shapely geometry (in the cube's CRS), GeoSeries or GeoDataFrame (reprojected from its
        own CRS): its bounding box is forecast and pixels whose centre lies outside it are
        masked.

    Returns
    -------
    rows, cols, mask
        ``mask`` is a boolean ``(rows, cols)`` array for a geometry, else None.
    """
    if region is None:
        rows, cols = region_slices(cube, None)
        return rows, cols, None
    if isinstance(region, (str, bytes)):
        raise RegionError(f"region {region!r}: give a bbox (xmin, ymin, xmax, ymax), a shapely "
                          "geometry or a GeoDataFrame")
    if isinstance(region, Sequence) or (isinstance(region, np.ndarray) and region.ndim == 1):
        box = [float(v) for v in region]
        if len(box) != 4:
            raise RegionError(f"a bbox region needs 4 numbers (xmin, ymin, xmax, ymax), got "
                              f"{len(box)}")
        if not (box[0] < box[2] and box[1] < box[3]):
            raise RegionError(f"empty bbox {tuple(box)}: need xmin < xmax and ymin < ymax")
        rows, cols = region_slices(cube, box)
        return rows, cols, None
    try:
        clipped = cube.clip(region, require_valid=False).ds
    except TypeError as err:
        raise RegionError(f"unknown region of type {type(region).__name__}: give None, a bbox "
                          "(xmin, ymin, xmax, ymax), a shapely geometry or a GeoDataFrame") from err
    ds = cube.ds
    r0 = int(np.flatnonzero(ds[schema.Y_DIM].values == clipped[schema.Y_DIM].values[0])[0])
    c0 = int(np.flatnonzero(ds[schema.X_DIM].values == clipped[schema.X_DIM].values[0])[0])
    ny, nx = clipped.sizes[schema.Y_DIM], clipped.sizes[schema.X_DIM]
    mask = np.asarray(clipped[REGION_MASK].values, dtype=bool)
    return slice(r0, r0 + ny), slice(c0, c0 + nx), mask


def tile_drivers(drivers: Any, ds: Any, rows: slice, cols: slice, d0: int, d1: int,
                 names: Sequence[str]) -> np.ndarray:
    """Tile-mean drivers ``(d1 - d0 + 1, V)`` of the window, from any driver layout.

    For many windows, build one :class:`~kgvsf_explore.cube.regrid.TileDrivers` over their
    extent instead: it reads the drivers once.
    """
    table = TileDrivers(drivers, ds[schema.Y_DIM].values, ds[schema.X_DIM].values, names,
                        slice(d0, d1 + 1), (rows, cols))
    return table.mean(rows, cols)


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of a region lie and which dates and days their context covers."""

    cube: Cube
    cfg: ModelConfig
    t: pd.Timestamp
    n_ctx: int
    ctx_times: pd.DatetimeIndex
    days: pd.DatetimeIndex
    t_day: int
    first_day: int
    rows: slice
    cols: slice
    windows: list[tuple[int, int]]
    mask: np.ndarray | None = None
    band_mask: np.ndarray | None = None

    @property
    def bands_observed(self) -> np.ndarray:
        """``(C,)`` bool over ``cfg.bands``: True for the bands the cube observed."""
        if self.band_mask is None:
            return np.ones(len(self.cfg.bands), dtype=bool)
        return self.band_mask

    @property
    def missing_bands(self) -> tuple[str, ...]:
        """The model's bands the cube never observed (predicted from the others)."""
        return tuple(b for b, m in zip(self.cfg.bands, self.bands_observed) if not m)

    def window(self, r: int, c: int) -> dict[str, slice]:
        """``isel`` indexers of the tile at origin ``(r, c)``."""
        tile = self.cfg.tile
        return {schema.Y_DIM: slice(r, r + tile), schema.X_DIM: slice(c, c + tile)}

    def driver_table(self, drivers: Any, d0: int, d1: int,
                     windows: Sequence[tuple[int, int]]) -> TileDrivers:
        """Tile-mean drivers of days ``d0..d1`` for ``windows``, read once over their extent."""
        tile = self.cfg.tile
        extent = (slice(min(r for r, _ in windows), max(r for r, _ in windows) + tile),
                  slice(min(c for _, c in windows), max(c for _, c in windows) + tile))
        ds = self.cube.ds
        return TileDrivers(drivers, ds[schema.Y_DIM].values, ds[schema.X_DIM].values,
                           list(self.cfg.drivers), slice(d0, d1 + 1), extent)

    def windows_over(self, rows: slice, cols: slice) -> list[tuple[int, int]]:
        """The plan's windows that overlap the pixel block ``rows`` x ``cols``.

        A block of the region sees exactly the windows the whole region sees there, so a
        block-by-block result equals the in-memory one.
        """
        tile = self.cfg.tile
        return [(r, c) for r, c in self.windows
                if r < rows.stop and r + tile > rows.start
                and c < cols.stop and c + tile > cols.start]


#: Attribute that marks outputs for bands the input cube never observed.
NOT_OBSERVED_ATTR = "kgvsf_not_observed"


def not_observed_note(bands: Sequence[str], all_bands: Sequence[str],
                      what: str = "forecast") -> str:
    """The sentence that marks outputs of bands the input cube never observed.

    Examples
    --------
    >>> not_observed_note(["B05"], ["B04", "B05", "B08"])
    'B05 was never observed in the input cube: its forecast is predicted from the other bands (B04, B08).'
    """  # noqa: E501
    others = ", ".join(b for b in all_bands if b not in bands)
    if len(bands) == 1:
        return (f"{bands[0]} was never observed in the input cube: its {what} is predicted "
                f"from the other bands ({others}).")
    return (f"{', '.join(bands)} were never observed in the input cube: their {what} is "
            f"predicted from the other bands ({others}).")


def plan_tiles(cube: Cube, cfg: ModelConfig, start: Any, *, region: Any = None,
               rows: slice | None = None, cols: slice | None = None) -> TilePlan:
    """Tiles covering the region and the context of the last image on or before ``start``.

    The region is ``region`` (None, a bbox or a geometry: see :func:`resolve_region`) or pixel
    slices ``rows``/``cols``; default the whole cube.

    The cube may lack any of the model's bands (absent, or listed in
    ``attrs["kgvsf_missing_bands"]``): :attr:`TilePlan.band_mask` records which it observed.

    Raises
    ------
    KGVSFError
        When the cube observed none of the model's bands, or has no image on or before
        ``start``.
    """
    ds = cube.ds
    have = observed_bands(ds, tuple(cfg.bands), error=KGVSFError)
    band_mask = np.array([b in have for b in cfg.bands], dtype=bool)
    times = pd.DatetimeIndex(ds[schema.TIME_DIM].values)
    days = pd.DatetimeIndex(ds[schema.DAY_DIM].values)
    start = pd.Timestamp(start)
    n_ctx = int((times <= start).sum())
    if n_ctx == 0:
        raise KGVSFError(f"no image on or before {start.date()}; the cube starts "
                         f"{times[0].date()}")
    t = times[n_ctx - 1]
    ctx_times = times[max(0, n_ctx - cfg.context):n_ctx]
    ny, nx = ds.sizes[schema.Y_DIM], ds.sizes[schema.X_DIM]
    mask = None
    if region is not None:
        rows, cols, mask = resolve_region(cube, region)
    rows = rows or slice(0, ny)
    cols = cols or slice(0, nx)
    windows = [(r, c) for r in _origins(rows.start, rows.stop - rows.start, cfg.tile, ny)
               for c in _origins(cols.start, cols.stop - cols.start, cfg.tile, nx)]
    return TilePlan(cube, cfg, t, n_ctx, ctx_times, days, days.get_loc(t),
                    days.get_loc(ctx_times[0]), rows, cols, windows, mask, band_mask)


def context_batches(plan: TilePlan, batch_size: int, *,
                    windows: Sequence[tuple[int, int]] | None = None, progress: bool = True,
                    desc: str = "tiles") -> Iterator[tuple[list[tuple[int, int]], dict]]:
    """Yield ``(windows, batch)`` per ``batch_size`` tiles: the context batch of those windows.

    ``windows`` defaults to all of the plan's. The context images of the windows' bounding box
    are read once (a lazy cube reads only that block; the block path of
    :mod:`~kgvsf_explore.inference.chunked` keeps it to one block). The context drivers are the
    observed ones (a scenario changes the weather after ``t``). Bands the cube never observed
    are zero in ``images``, ignored by ``mask`` and False in the batch's ``band_mask``
    ``(B, C)``.
    """
    cfg, ds = plan.cfg, plan.cube.ds
    windows = list(plan.windows if windows is None else windows)
    past = ds[list(plan.cube.driver_names)]
    tsel = {schema.TIME_DIM: slice(plan.n_ctx - len(plan.ctx_times), plan.n_ctx)}
    offsets = np.array([(d - plan.t).days for d in plan.ctx_times], dtype=np.int64)
    doy = np.array([d.day_of_year for d in plan.ctx_times], dtype=np.int64)
    observed = plan.bands_observed
    read_bands = [b for b, m in zip(cfg.bands, observed) if m]
    image_vars = read_bands + ([schema.CLOUD_MASK] if schema.CLOUD_MASK in ds else [])
    tile = cfg.tile
    if not windows:
        return
    # one read of the windows' extent: a lazy cube decompresses each of its chunks once
    r0, c0 = min(r for r, _ in windows), min(c for _, c in windows)
    r1, c1 = max(r for r, _ in windows) + tile, max(c for _, c in windows) + tile
    with reading(f"the context images of rows {r0}..{r1}, columns {c0}..{c1}", ds):
        block = ds[image_vars].isel({**tsel, schema.Y_DIM: slice(r0, r1),
                                     schema.X_DIM: slice(c0, c1)}).compute()
    shape = (block.sizes[schema.TIME_DIM], r1 - r0, c1 - c0)
    arr = np.stack([np.asarray(block[b].values, dtype="float32") if m
                    else np.zeros(shape, dtype="float32")
                    for b, m in zip(cfg.bands, observed)], axis=1)  # (T, C, h, w)
    # NaN or Inf in an observed band: not an observation; a band never observed does not count
    valid = np.isfinite(arr if observed.all() else arr[:, observed]).all(axis=1)
    if schema.CLOUD_MASK in block:
        valid &= ~np.asarray(block[schema.CLOUD_MASK].values).astype(bool)
    arr = np.where(valid[:, None], arr, np.float32(0.0))
    table = plan.driver_table(past, plan.first_day, plan.t_day, windows)
    for b0 in tqdm(range(0, len(windows), batch_size), desc=desc, unit="batch",
                   disable=not progress):
        chunk = windows[b0:b0 + batch_size]
        imgs, masks, ctx_drv = [], [], []
        for r, c in chunk:
            yx = (slice(r - r0, r - r0 + tile), slice(c - c0, c - c0 + tile))
            imgs.append(arr[(Ellipsis,) + yx])
            masks.append(valid[(Ellipsis,) + yx])
            win = plan.window(r, c)
            ctx_drv.append(table.mean(win[schema.Y_DIM], win[schema.X_DIM]))
        yield chunk, _context_batch(imgs, masks, offsets, doy, ctx_drv,
                                    cfg.context - len(plan.ctx_times),
                                    plan.t_day - plan.first_day, observed)


def _context_batch(imgs, masks, offsets, doy, ctx_drv, pad, t_index,
                   band_mask) -> dict[str, torch.Tensor]:
    images = np.stack(imgs).astype("float32")
    mask = np.stack(masks)
    b = len(imgs)
    ctx = np.ones((b, len(offsets)), dtype=bool)
    off = np.broadcast_to(offsets, (b, len(offsets)))
    dy = np.broadcast_to(doy, (b, len(doy)))
    if pad > 0:
        images = np.concatenate([np.zeros((b, pad, *images.shape[2:]), "float32"), images], 1)
        mask = np.concatenate([np.zeros((b, pad, *mask.shape[2:]), bool), mask], 1)
        ctx = np.concatenate([np.zeros((b, pad), bool), ctx], 1)
        off = np.concatenate([np.zeros((b, pad), np.int64), off], 1)
        dy = np.concatenate([np.zeros((b, pad), np.int64), dy], 1)
    return {
        "images": torch.from_numpy(images),
        "mask": torch.from_numpy(mask),
        "context_mask": torch.from_numpy(ctx),
        "image_offsets": torch.from_numpy(np.array(off, dtype=np.int64)),
        "doy": torch.from_numpy(np.array(dy, dtype=np.int64)),
        "drivers": torch.from_numpy(np.stack(ctx_drv)),
        "t_index": torch.full((b,), t_index, dtype=torch.int64),
        "band_mask": torch.from_numpy(np.repeat(np.asarray(band_mask, bool)[None], b, 0)),
    }


class Stitcher:
    """Average per-tile outputs ``(..., tile, tile)`` onto a pixel block (overlaps averaged).

    The block is the plan's region by default, or ``rows`` x ``cols`` of it; pixels outside a
    geometry region (``plan.mask``) are NaN.
    """

    def __init__(self, plan: TilePlan, rows: slice | None = None,
                 cols: slice | None = None) -> None:
        self.plan = plan
        self.rows = rows or plan.rows
        self.cols = cols or plan.cols
        self.acc: np.ndarray | None = None
        self.cnt = np.zeros((self.rows.stop - self.rows.start, self.cols.stop - self.cols.start),
                            dtype="float32")

    def add(self, origin: tuple[int, int], out: np.ndarray) -> None:
        """Add the output of the tile at ``origin`` (row, col)."""
        (r, c), rows, cols, tile = origin, self.rows, self.cols, self.plan.cfg.tile
        if self.acc is None:
            self.acc = np.zeros(out.shape[:-2] + self.cnt.shape, dtype="float32")
        rr = slice(max(r, rows.start), min(r + tile, rows.stop))
        cc = slice(max(c, cols.start), min(c + tile, cols.stop))
        if rr.start >= rr.stop or cc.start >= cc.stop:
            return
        src = (slice(rr.start - r, rr.stop - r), slice(cc.start - c, cc.stop - c))
        dst = (slice(rr.start - rows.start, rr.stop - rows.start),
               slice(cc.start - cols.start, cc.stop - cols.start))
        self.acc[(Ellipsis,) + dst] += out[(Ellipsis,) + src]
        self.cnt[dst] += 1

    def result(self) -> np.ndarray:
        """The stitched float32 array ``(..., rows, cols)``."""
        assert self.acc is not None, "no tile was added"
        out = self.acc
        out /= self.cnt  # in place: a block holds one float32 accumulator, no copies
        if self.plan.mask is not None:
            pr, pc = self.plan.rows, self.plan.cols
            inside = self.plan.mask[self.rows.start - pr.start:self.rows.stop - pr.start,
                                    self.cols.start - pc.start:self.cols.stop - pc.start]
            out[..., ~inside] = np.nan
        return out
