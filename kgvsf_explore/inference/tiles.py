"""Cover a region with model tiles, build their context batches and stitch tile outputs back.

Shared by region forecasts and embeddings: the region is covered by ``tile x tile`` windows (the
last row/column of windows is shifted back inside the cube, so any region size works), each
window's context is the last ``context`` images on or before the start date with the observed
tile-mean drivers up to ``t``, and per-tile outputs are averaged where windows overlap.
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
from ..cube.cube import Cube
from ..errors import KGVSFError
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


def tile_drivers(drivers: Any, ds: Any, rows: slice, cols: slice, d0: int, d1: int,
                 names: Sequence[str]) -> np.ndarray:
    """Tile-mean drivers ``(d1 - d0 + 1, V)`` of the window, from any driver layout."""
    from ..cube.regrid import drivers_on_pixels

    sub = drivers.isel({schema.DAY_DIM: slice(d0, d1 + 1)})
    sub = sub.assign_coords({schema.Y_DIM: ds[schema.Y_DIM][rows],
                             schema.X_DIM: ds[schema.X_DIM][cols]})
    px = drivers_on_pixels(sub, tuple(names))
    means = px.mean((schema.Y_DIM, schema.X_DIM)).compute()
    return np.stack([means[n].values for n in names], axis=-1).astype("float32")


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

    def window(self, r: int, c: int) -> dict[str, slice]:
        """``isel`` indexers of the tile at origin ``(r, c)``."""
        tile = self.cfg.tile
        return {schema.Y_DIM: slice(r, r + tile), schema.X_DIM: slice(c, c + tile)}


def plan_tiles(cube: Cube, cfg: ModelConfig, start: Any, *, bbox: Sequence[float] | None = None,
               rows: slice | None = None, cols: slice | None = None) -> TilePlan:
    """Tiles covering the region and the context of the last image on or before ``start``."""
    ds = cube.ds
    missing = [b for b in cfg.bands if b not in ds]
    if missing:
        raise KGVSFError(f"the cube lacks the bands {missing} the model was trained on")
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
    if bbox is not None:
        rows, cols = region_slices(cube, bbox)
    rows = rows or slice(0, ny)
    cols = cols or slice(0, nx)
    windows = [(r, c) for r in _origins(rows.start, rows.stop - rows.start, cfg.tile, ny)
               for c in _origins(cols.start, cols.stop - cols.start, cfg.tile, nx)]
    return TilePlan(cube, cfg, t, n_ctx, ctx_times, days, days.get_loc(t),
                    days.get_loc(ctx_times[0]), rows, cols, windows)


def context_batches(plan: TilePlan, batch_size: int, *, progress: bool = True,
                    desc: str = "tiles") -> Iterator[tuple[list[tuple[int, int]], dict]]:
    """Yield ``(windows, batch)`` per ``batch_size`` tiles: the context batch of those windows.

    The context drivers are the observed ones (a scenario changes the weather after ``t``).
    """
    cfg, ds = plan.cfg, plan.cube.ds
    observed = ds[list(plan.cube.driver_names)]
    names = list(cfg.drivers)
    tsel = {schema.TIME_DIM: slice(plan.n_ctx - len(plan.ctx_times), plan.n_ctx)}
    offsets = np.array([(d - plan.t).days for d in plan.ctx_times], dtype=np.int64)
    doy = np.array([d.day_of_year for d in plan.ctx_times], dtype=np.int64)
    for b0 in tqdm(range(0, len(plan.windows), batch_size), desc=desc, unit="batch",
                   disable=not progress):
        chunk = plan.windows[b0:b0 + batch_size]
        imgs, masks, ctx_drv = [], [], []
        for r, c in chunk:
            win = plan.window(r, c)
            arr = np.stack([ds[bnd].isel({**tsel, **win}).values for bnd in cfg.bands], axis=1)
            valid = np.isfinite(arr).all(axis=1)
            if schema.CLOUD_MASK in ds:
                valid &= ~ds[schema.CLOUD_MASK].isel({**tsel, **win}).values.astype(bool)
            imgs.append(np.nan_to_num(arr, nan=0.0))
            masks.append(valid)
            ctx_drv.append(tile_drivers(observed, ds, win[schema.Y_DIM], win[schema.X_DIM],
                                        plan.first_day, plan.t_day, names))
        yield chunk, _context_batch(imgs, masks, offsets, doy, ctx_drv,
                                    cfg.context - len(plan.ctx_times),
                                    plan.t_day - plan.first_day)


def _context_batch(imgs, masks, offsets, doy, ctx_drv, pad, t_index) -> dict[str, torch.Tensor]:
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
    }


class Stitcher:
    """Average per-tile outputs ``(..., tile, tile)`` back onto the region (overlaps averaged)."""

    def __init__(self, plan: TilePlan) -> None:
        self.plan = plan
        self.acc: np.ndarray | None = None
        self.cnt = np.zeros((plan.rows.stop - plan.rows.start, plan.cols.stop - plan.cols.start))

    def add(self, origin: tuple[int, int], out: np.ndarray) -> None:
        """Add the output of the tile at ``origin`` (row, col)."""
        (r, c), rows, cols, tile = origin, self.plan.rows, self.plan.cols, self.plan.cfg.tile
        if self.acc is None:
            self.acc = np.zeros(out.shape[:-2] + self.cnt.shape, dtype="float64")
        rr = slice(max(r, rows.start), min(r + tile, rows.stop))
        cc = slice(max(c, cols.start), min(c + tile, cols.stop))
        src = (slice(rr.start - r, rr.stop - r), slice(cc.start - c, cc.stop - c))
        dst = (slice(rr.start - rows.start, rr.stop - rows.start),
               slice(cc.start - cols.start, cc.stop - cols.start))
        self.acc[(Ellipsis,) + dst] += out[(Ellipsis,) + src]
        self.cnt[dst] += 1

    def result(self) -> np.ndarray:
        """The stitched float32 array ``(..., rows, cols)``."""
        assert self.acc is not None, "no tile was added"
        return (self.acc / self.cnt).astype("float32")
