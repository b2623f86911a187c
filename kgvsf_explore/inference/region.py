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
from .chunked import block_edge, lazy_region
from .tiles import (
    NOT_OBSERVED_ATTR,
    Stitcher,
    TilePlan,
    context_batches,
    not_observed_note,
    plan_tiles,
)


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
    region: Any = None,
    rows: slice | None = None,
    cols: slice | None = None,
    chunks: int | str | None = None,
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
    region
        The region: None, a bbox ``(xmin, ymin, xmax, ymax)`` in the cube's CRS, or a shapely
        geometry / GeoSeries / GeoDataFrame (pixels outside it are NaN); see
        :func:`~kgvsf_explore.inference.tiles.resolve_region`. Tiles around it may read pixels
        outside it, so a region smaller than a model tile works.
    rows, cols
        The region as pixel slices.
    chunks
        None: in memory, unless the region has more than
        :data:`~kgvsf_explore.inference.chunked.AUTO_CHUNK_PIXELS` pixels; an int (block edge in
        pixels) or ``"auto"``: a lazy dask-backed result computed block by block (same
        numbers, bounded memory). Write it with ``.to_zarr`` or compute it under
        ``dask.diagnostics.ProgressBar``.
    batch_size
        Tiles per forward pass.
    progress
        Show a progress bar (in-memory path).
    weights_id
        The weights' SHA-256, recorded in the attrs.

    Returns
    -------
    xarray.Dataset
        ``reflectance`` ``([scenario,] horizon, band, y, x)`` and ``ndvi``, with the cube's
        coordinates and CRS, ``time`` of each horizon, and attrs recording the model, the
        weights, the scenarios and the dates. Every band is forecast, also those the cube
        never observed (absent or listed in ``attrs["kgvsf_missing_bands"]``; a cube needs at
        least one band): those are predicted from the other bands, and ``reflectance`` (and
        ``ndvi`` when it uses them) then carries ``attrs["kgvsf_not_observed"]``, a sentence
        saying so, and the dataset the same sentence plus the JSON list
        ``attrs["kgvsf_not_observed_bands"]``.
    """
    cfg = model.cfg
    listed = isinstance(scenarios, (list, tuple))
    scen_list = list(scenarios) if listed else [scenarios]
    plan, horizons = _plan(model, cube, start, horizons, region, rows, cols)
    drivers = [scenario_drivers(cube, s) for s in scen_list]

    def compute(block_rows: slice, block_cols: slice, show: bool = False) -> np.ndarray:
        return _forecast_block(model, plan, drivers, horizons, block_rows, block_cols,
                               batch_size, show)

    edge = block_edge(plan, chunks)
    if edge is None:
        refl = compute(plan.rows, plan.cols, progress)
    else:
        lead = (len(scen_list), len(horizons), len(cfg.bands))
        refl = lazy_region(plan, lead, edge, compute)
    out = _to_dataset(refl, cube, plan.rows, plan.cols, plan.t, horizons, scen_list,
                      listed, model, weights_id)
    return mark_not_observed(out, plan.missing_bands, cfg.bands)


def forecast_and_embed(model: KGVSF, cube: Cube, start: Any, horizons: Sequence[int], *,
                       rows: slice | None = None, cols: slice | None = None,
                       batch_size: int = 16) -> tuple[xr.Dataset, np.ndarray]:
    """``forecast_region(model, cube, start, horizons, rows=rows, cols=cols)`` under the
    observed weather, and the embeddings ``(feature, y, x)`` of ``embed_region`` at the same
    date, in one pass: each tile's context is encoded once for both (the same numbers as the
    two calls). In memory, no progress bar."""
    plan, horizons = _plan(model, cube, start, horizons, None, rows, cols)
    emb = Stitcher(plan, plan.rows, plan.cols)
    refl = _forecast_block(model, plan, [scenario_drivers(cube, None)], horizons, plan.rows,
                           plan.cols, batch_size, False, embed=emb)
    out = _to_dataset(refl, cube, plan.rows, plan.cols, plan.t, horizons, [None], False,
                      model, "")
    return mark_not_observed(out, plan.missing_bands, model.cfg.bands), emb.result()


def _plan(model: KGVSF, cube: Cube, start: Any, horizons: Sequence[int], region: Any,
          rows: slice | None, cols: slice | None) -> tuple[TilePlan, list[int]]:
    """The tile plan of a forecast and its horizons as ints, checked against the model's
    range and the cube's drivers."""
    cfg = model.cfg
    hs = [int(h) for h in horizons]
    if not hs or min(hs) < cfg.k_min or max(hs) > cfg.k_max:
        raise KGVSFError(f"horizons {hs} must lie in the model's range "
                         f"[{cfg.k_min}, {cfg.k_max}] days")
    plan = plan_tiles(cube, cfg, start, region=region, rows=rows, cols=cols)
    if plan.t_day + max(hs) >= len(plan.days):
        raise KGVSFError(f"horizon {max(hs)} days after {plan.t.date()} runs past the "
                         f"drivers (last day {plan.days[-1].date()}); give weather for the "
                         "future or a shorter horizon")
    return plan, hs


def mark_not_observed(out: xr.Dataset, missing: Sequence[str],
                      bands: Sequence[str]) -> xr.Dataset:
    """Mark the forecast of bands the input cube never observed (in place; returns ``out``).

    ``reflectance`` (and ``ndvi`` when it uses such a band) get ``attrs["kgvsf_not_observed"]``,
    a sentence saying those bands were never observed and are predicted from the others; the
    dataset gets the same sentence and ``attrs["kgvsf_not_observed_bands"]`` (JSON list).
    Nothing is added when every band was observed.
    """
    missing = list(missing)
    if not missing:
        return out
    note = not_observed_note(missing, list(bands))
    out["reflectance"].attrs[NOT_OBSERVED_ATTR] = note
    if "ndvi" in out and {"B04", "B08"} & set(missing):
        out["ndvi"].attrs[NOT_OBSERVED_ATTR] = note
    out.attrs[NOT_OBSERVED_ATTR] = note
    out.attrs["kgvsf_not_observed_bands"] = json.dumps(missing)
    return out


def _forecast_block(model: KGVSF, plan: TilePlan, drivers: list[xr.Dataset],
                    horizons: list[int], rows: slice, cols: slice, batch_size: int,
                    progress: bool, embed: Stitcher | None = None) -> np.ndarray:
    """Reflectance ``(scenario, horizon, band, rows, cols)`` of one pixel block of the plan;
    with ``embed``, each tile's embedding at ``t`` is added to it from the same encoded
    context."""
    cfg = model.cfg
    t_day, last_day = plan.t_day, plan.t_day + max(horizons)
    n_s, n_h, n_b = len(drivers), len(horizons), len(cfg.bands)
    stitch = Stitcher(plan, rows, cols)
    device = next(model.parameters()).device
    windows = plan.windows_over(rows, cols)
    tables = [plan.driver_table(d, t_day + 1, last_day, windows) for d in drivers]
    for chunk, batch in context_batches(plan, batch_size, windows=windows,
                                        progress=progress, desc="forecasting"):
        # the future drivers of every scenario; the context keeps the observed weather
        fut = []
        for table in tables:
            for r, c in chunk:
                win = plan.window(r, c)
                fut.append(table.mean(win[schema.Y_DIM], win[schema.X_DIM]))
        with torch.no_grad():
            batch = {k: v.to(device) for k, v in batch.items()}
            state = model.encode_context(batch)
            emb = None if embed is None else model.embed_last(batch, state).float().cpu().numpy()
            future = torch.from_numpy(np.stack(fut)).to(device)
            out = model.forecast(KGVSF.repeat_state(state, n_s), future, horizons)
        out = out.float().cpu().numpy().reshape(n_s, len(chunk), n_h, n_b, cfg.tile, cfg.tile)
        for i, origin in enumerate(chunk):
            stitch.add(origin, out[:, i])
            if embed is not None:
                embed.add(origin, emb[i])
    return stitch.result()


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
        names = _unique([getattr(s, "name", "") or ("observed" if s is None else f"scenario {i}")
                         for i, s in enumerate(scen_list)])
        coords["scenario"] = np.array(names, dtype=object)  # variable-length strings in zarr
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
    if schema.GRID_MAPPING in ds:  # a coordinate, so that every variable and difference keeps it
        out = out.assign_coords({schema.GRID_MAPPING: ds[schema.GRID_MAPPING].variable})
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



def _unique(names: list[str]) -> list[str]:
    """Scenario labels made unique (``"dry"``, ``"dry (2)"``) so that they can index."""
    out: list[str] = []
    for name in names:
        label, n = name, 1
        while label in out:
            n += 1
            label = f"{name} ({n})"
        out.append(label)
    return out
