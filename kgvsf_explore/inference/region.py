"""Forecast a whole region: cut it into model tiles, encode each context once, run the weather.

The region is covered by ``tile x tile`` windows (the last row/column of windows is shifted back
inside the cube, so any region size works, and overlaps are averaged). Each window's context is
the last ``context`` images on or before the start date; its drivers are the tile-mean daily
drivers of the cube up to ``t`` (the past is what was observed) and, after ``t``, of the cube or
of each scenario applied to it: a scenario changes the weather of the forecast period only. The
context is encoded once and every scenario and horizon reuses it
(:meth:`KGVSF.encode_context`, :meth:`KGVSF.forecast`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from .. import schema
from ..cube.cube import Cube
from ..errors import KGVSFError, ScenarioError
from ..models.kgvsf import KGVSF


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


def scenario_drivers(cube: Cube, scenario: Any) -> xr.Dataset:
    """The cube's drivers under ``scenario`` (stored layout if possible, else pixel grid)."""
    if scenario is None:
        return cube.ds[list(cube.driver_names)]
    try:
        return scenario.apply(cube.ds)
    except ScenarioError:
        return scenario.apply(cube.drivers)


def _tile_drivers(drivers: xr.Dataset, ds: xr.Dataset, rows: slice, cols: slice,
                  d0: int, d1: int, names: Sequence[str]) -> np.ndarray:
    """Tile-mean drivers ``(d1 - d0 + 1, V)`` of the window, from any driver layout."""
    from ..cube.regrid import drivers_on_pixels

    sub = drivers.isel({schema.DAY_DIM: slice(d0, d1 + 1)})
    sub = sub.assign_coords({schema.Y_DIM: ds[schema.Y_DIM][rows],
                             schema.X_DIM: ds[schema.X_DIM][cols]})
    px = drivers_on_pixels(sub, tuple(names))
    means = px.mean((schema.Y_DIM, schema.X_DIM)).compute()
    return np.stack([means[n].values for n in names], axis=-1).astype("float32")


def forecast_region(
    model: KGVSF,
    cube: Cube,
    start: Any,
    horizons: Sequence[int],
    scenarios: Sequence[Any] | Any = None,
    *,
    bbox: Sequence[float] | None = None,
    rows: slice | None = None,
    cols: slice | None = None,
    batch_size: int = 16,
    progress: bool = True,
    weights_id: str = "",
) -> xr.Dataset:
    """Forecast reflectance and NDVI ``k`` days after the last image on or before ``start``.

    Parameters
    ----------
    model
        A :class:`KGVSF` in eval mode.
    cube
        The cube (the region is ``rows`` x ``cols`` of it, default all of it).
    start
        Forecast date: the context is the ``model.cfg.context`` images up to it; ``t`` is the
        last of them, and horizon ``k`` is the date ``t + k``.
    horizons
        Days ahead, integers in the model's ``[k_min, k_max]``.
    scenarios
        None (the observed weather), one :class:`~kgvsf_explore.Scenario`, or a list (a
        ``scenario`` dimension is added; None in the list is the observed weather). A scenario
        changes the weather after ``t``; the context keeps the observed weather.
    bbox
        ``(xmin, ymin, xmax, ymax)`` in the cube's CRS: the region to forecast. Tiles around
        it may read pixels outside it, so a region smaller than a model tile works.
    rows, cols
        The region as pixel slices instead of ``bbox``.

    Returns
    -------
    xarray.Dataset
        ``reflectance`` ``([scenario,] horizon, band, y, x)`` and ``ndvi``, with the cube's
        coordinates and CRS, ``time`` of each horizon, and attrs recording the model, the
        weights, the scenarios and the dates.
    """
    cfg = model.cfg
    ds = cube.ds
    horizons = [int(h) for h in horizons]
    if not horizons or min(horizons) < cfg.k_min or max(horizons) > cfg.k_max:
        raise KGVSFError(f"horizons {horizons} must lie in the model's range "
                         f"[{cfg.k_min}, {cfg.k_max}] days")
    missing = [b for b in cfg.bands if b not in ds]
    if missing:
        raise KGVSFError(f"the cube lacks the bands {missing} the model was trained on")
    listed = isinstance(scenarios, (list, tuple))
    scen_list = list(scenarios) if listed else [scenarios]
    times = pd.DatetimeIndex(ds[schema.TIME_DIM].values)
    days = pd.DatetimeIndex(ds[schema.DAY_DIM].values)
    start = pd.Timestamp(start)
    n_ctx = int((times <= start).sum())
    if n_ctx == 0:
        raise KGVSFError(f"no image on or before {start.date()}; the cube starts "
                         f"{times[0].date()}")
    t = times[n_ctx - 1]
    ctx_times = times[max(0, n_ctx - cfg.context):n_ctx]
    t_day = days.get_loc(t)
    first_day = days.get_loc(ctx_times[0])
    last_day = t_day + max(horizons)
    if last_day >= len(days):
        raise KGVSFError(f"horizon {max(horizons)} days after {t.date()} runs past the drivers "
                         f"(last day {days[-1].date()}); give weather for the future or a "
                         "shorter horizon")
    ny, nx = ds.sizes[schema.Y_DIM], ds.sizes[schema.X_DIM]
    if bbox is not None:
        rows, cols = region_slices(cube, bbox)
    rows = rows or slice(0, ny)
    cols = cols or slice(0, nx)
    r_or = _origins(rows.start, rows.stop - rows.start, cfg.tile, ny)
    c_or = _origins(cols.start, cols.stop - cols.start, cfg.tile, nx)
    windows = [(r, c) for r in r_or for c in c_or]

    names = list(cfg.drivers)
    observed = scenario_drivers(cube, None)
    drivers = [scenario_drivers(cube, s) for s in scen_list]
    tsel = {schema.TIME_DIM: slice(n_ctx - len(ctx_times), n_ctx)}
    ny_r, nx_r = rows.stop - rows.start, cols.stop - cols.start
    n_s, n_h, n_b = len(scen_list), len(horizons), len(cfg.bands)
    acc = np.zeros((n_s, n_h, n_b, ny_r, nx_r), dtype="float64")
    cnt = np.zeros((ny_r, nx_r), dtype="float64")
    offsets = np.array([(d - t).days for d in ctx_times], dtype=np.int64)
    doy = np.array([d.day_of_year for d in ctx_times], dtype=np.int64)
    pad = cfg.context - len(ctx_times)
    device = next(model.parameters()).device
    for b0 in tqdm(range(0, len(windows), batch_size), desc="forecasting", unit="batch",
                   disable=not progress):
        chunk = windows[b0:b0 + batch_size]
        imgs, masks, ctx_drv, fut_drv = [], [], [], []
        for r, c in chunk:
            win = {schema.Y_DIM: slice(r, r + cfg.tile), schema.X_DIM: slice(c, c + cfg.tile)}
            arr = np.stack([ds[bnd].isel({**tsel, **win}).values for bnd in cfg.bands], axis=1)
            valid = np.isfinite(arr).all(axis=1)
            if schema.CLOUD_MASK in ds:
                valid &= ~ds[schema.CLOUD_MASK].isel({**tsel, **win}).values.astype(bool)
            imgs.append(np.nan_to_num(arr, nan=0.0))
            masks.append(valid)
            # the context is what was observed; a scenario changes the weather after t
            ctx_drv.append(_tile_drivers(observed, ds, win[schema.Y_DIM], win[schema.X_DIM],
                                         first_day, t_day, names))
            fut_drv.append([_tile_drivers(d, ds, win[schema.Y_DIM], win[schema.X_DIM],
                                          t_day + 1, last_day, names) for d in drivers])
        batch = _context_batch(imgs, masks, offsets, doy, ctx_drv, pad, t_day - first_day)
        with torch.no_grad():
            batch = {k: v.to(device) for k, v in batch.items()}
            state = model.encode_context(batch)
            future = torch.from_numpy(np.concatenate(
                [np.stack([f[s] for f in fut_drv]) for s in range(n_s)])).to(device)
            out = model.forecast(KGVSF.repeat_state(state, n_s), future, horizons)
        out = out.float().cpu().numpy().reshape(n_s, len(chunk), n_h, n_b, cfg.tile, cfg.tile)
        for i, (r, c) in enumerate(chunk):
            rr = slice(max(r, rows.start), min(r + cfg.tile, rows.stop))
            cc = slice(max(c, cols.start), min(c + cfg.tile, cols.stop))
            src = (slice(rr.start - r, rr.stop - r), slice(cc.start - c, cc.stop - c))
            dst = (slice(rr.start - rows.start, rr.stop - rows.start),
                   slice(cc.start - cols.start, cc.stop - cols.start))
            acc[(slice(None),) * 3 + dst] += out[:, i][(Ellipsis,) + src]
            cnt[dst] += 1
    refl = (acc / cnt).astype("float32")
    return _to_dataset(refl, cube, rows, cols, t, horizons, scen_list, listed, model, weights_id)


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


def _to_dataset(refl, cube, rows, cols, t, horizons, scen_list, listed, model, weights_id):
    ds = cube.ds
    coords = {
        "horizon": ("horizon", np.array(horizons), {"units": "days", "long_name": "days after t"}),
        "band": np.array(model.cfg.bands, dtype=object),  # variable-length strings in zarr
        schema.Y_DIM: ds[schema.Y_DIM].values[rows],
        schema.X_DIM: ds[schema.X_DIM].values[cols],
        schema.TIME_DIM: ("horizon", np.array([t + pd.Timedelta(days=h) for h in horizons],
                                              dtype="datetime64[ns]")),
    }
    dims = ("horizon", "band", schema.Y_DIM, schema.X_DIM)
    if listed:
        names = [getattr(s, "name", "") or ("observed" if s is None else f"scenario {i}")
                 for i, s in enumerate(scen_list)]
        coords["scenario"] = names
        dims = ("scenario",) + dims
        data = refl
    else:
        data = refl[0]
    out = xr.Dataset(coords=coords)
    out["reflectance"] = (dims, data, {"units": "1", "long_name": "forecast surface reflectance",
                                       "grid_mapping": schema.GRID_MAPPING})
    nir = out["reflectance"].sel(band="B08")
    red = out["reflectance"].sel(band="B04")
    out["ndvi"] = ((nir - red) / (nir + red)).assign_attrs(
        long_name="forecast NDVI", grid_mapping=schema.GRID_MAPPING)
    if schema.GRID_MAPPING in ds:
        out[schema.GRID_MAPPING] = ds[schema.GRID_MAPPING]
    out.attrs = {
        "title": "KG-VSF forecast",
        "model": f"KG-VSF ({model.objective})",
        "model_config": json.dumps({"tile": model.cfg.tile, "dim": model.cfg.dim,
                                    "k_max": model.cfg.k_max}),
        "weights_sha256": weights_id,
        "t": str(pd.Timestamp(t).date()),
        "scenarios": json.dumps([None if s is None else s.to_dict() for s in scen_list]),
    }
    return out


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors of a state dict (name order), as recorded in forecast attrs."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
