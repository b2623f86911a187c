"""Forecast a whole region: cut it into model tiles, encode each context once, run the weather.

Tiles and contexts come from :mod:`kgvsf_explore.inference.tiles`. Up to ``t`` the drivers are the
observed ones (the past is what was observed); after ``t`` they are the cube's or those of each
scenario applied to it: a scenario changes the weather of the forecast period only. The context
is encoded once and every scenario and horizon reuses it (:meth:`KGVSF.encode_context`,
:meth:`KGVSF.forecast`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .. import schema
from ..cube.cube import Cube
from ..errors import KGVSFError, ScenarioError
from ..models.kgvsf import KGVSF
from .tiles import Stitcher, context_batches, plan_tiles, tile_drivers


def scenario_drivers(cube: Cube, scenario: Any) -> xr.Dataset:
    """The cube's drivers under ``scenario`` (stored layout if possible, else pixel grid)."""
    if scenario is None:
        return cube.ds[list(cube.driver_names)]
    try:
        return scenario.apply(cube.ds)
    except ScenarioError:
        return scenario.apply(cube.drivers)


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
    listed = isinstance(scenarios, (list, tuple))
    scen_list = list(scenarios) if listed else [scenarios]
    plan = plan_tiles(cube, cfg, start, bbox=bbox, rows=rows, cols=cols)
    t, t_day = plan.t, plan.t_day
    last_day = t_day + max(horizons)
    if last_day >= len(plan.days):
        raise KGVSFError(f"horizon {max(horizons)} days after {t.date()} runs past the drivers "
                         f"(last day {plan.days[-1].date()}); give weather for the future or a "
                         "shorter horizon")
    names = list(cfg.drivers)
    drivers = [scenario_drivers(cube, s) for s in scen_list]
    n_s, n_h, n_b = len(scen_list), len(horizons), len(cfg.bands)
    stitch = Stitcher(plan)
    device = next(model.parameters()).device
    for chunk, batch in context_batches(plan, batch_size, progress=progress, desc="forecasting"):
        # the future drivers of every scenario; the context keeps the observed weather
        fut = []
        for d in drivers:
            for r, c in chunk:
                win = plan.window(r, c)
                fut.append(tile_drivers(d, ds, win[schema.Y_DIM], win[schema.X_DIM],
                                        t_day + 1, last_day, names))
        with torch.no_grad():
            batch = {k: v.to(device) for k, v in batch.items()}
            state = model.encode_context(batch)
            future = torch.from_numpy(np.stack(fut)).to(device)
            out = model.forecast(KGVSF.repeat_state(state, n_s), future, horizons)
        out = out.float().cpu().numpy().reshape(n_s, len(chunk), n_h, n_b, cfg.tile, cfg.tile)
        for i, origin in enumerate(chunk):
            stitch.add(origin, out[:, i])
    return _to_dataset(stitch.result(), cube, plan.rows, plan.cols, t, horizons, scen_list,
                       listed, model, weights_id)


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

