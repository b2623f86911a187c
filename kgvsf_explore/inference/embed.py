"""Per-pixel KG-VSF embeddings of a region at one or several dates.

The embedding at date ``d`` is the last context position of :meth:`KGVSF.embed` for the context
of the last image on or before ``d`` (the sequence token broadcast to its pixels plus per-pixel
decoder features), with the observed tile-mean drivers through ``t``. Overlapping tiles are
averaged; large regions go block by block through dask like forecasts
(:mod:`kgvsf_explore.inference.chunked`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import torch
import xarray as xr

from .. import schema
from ..cube.cube import Cube
from ..models.kgvsf import KGVSF
from .chunked import block_edge, lazy_region
from .tiles import NOT_OBSERVED_ATTR, Stitcher, TilePlan, context_batches, plan_tiles


def embed_region(
    model: KGVSF,
    cube: Cube,
    dates: Any,
    *,
    region: Any = None,
    rows: slice | None = None,
    cols: slice | None = None,
    chunks: int | str | None = None,
    batch_size: int = 16,
    progress: bool = True,
    weights_id: str = "",
) -> xr.DataArray:
    """Per-pixel embeddings at the last image on or before each date.

    Parameters
    ----------
    model
        A :class:`KGVSF` in eval mode.
    cube
        The cube.
    dates
        One date (result ``(feature, y, x)``) or a list of dates (result
        ``(time, feature, y, x)``, ``time`` being each date's image date ``t``).
    region
        None, a bbox in the cube's CRS, or a geometry (pixels outside it are NaN).
    rows, cols
        The region as pixel slices.
    chunks
        As for :func:`~kgvsf_explore.inference.region.forecast_region`: None (in memory unless
        the region is very large), ``"auto"`` or a block edge in pixels for a lazy result.
    batch_size
        Tiles per forward pass.
    progress
        Show a progress bar (in-memory path).
    weights_id
        The weights' SHA-256, recorded in the attrs.

    Returns
    -------
    xarray.DataArray
        float32 embeddings with the cube's coordinates and CRS; attrs ``t`` (the image date,
        or dates), ``weights_sha256`` and ``model``. A cube may lack any of the model's bands
        but not all: the embeddings are then computed from the bands it has, and
        ``attrs["kgvsf_not_observed"]`` says which were missing.
    """
    single = isinstance(dates, (str, pd.Timestamp, np.datetime64)) or not isinstance(
        dates, Sequence)
    plans = [plan_tiles(cube, model.cfg, d, region=region, rows=rows, cols=cols)
             for d in ([dates] if single else list(dates))]
    n_feat = model.embed_dim
    arrays = []
    for plan in plans:
        def compute(rows: slice, cols: slice, show: bool = False,
                    plan: TilePlan = plan) -> np.ndarray:
            return _embed_block(model, plan, rows, cols, batch_size, show)

        edge = block_edge(plan, chunks)
        if edge is None:
            arrays.append(compute(plan.rows, plan.cols, progress))
        else:
            arrays.append(lazy_region(plan, (n_feat,), edge, compute))
    plan, ds = plans[0], cube.ds
    coords: dict[str, Any] = {
        "feature": np.arange(n_feat),
        schema.Y_DIM: ds[schema.Y_DIM].values[plan.rows],
        schema.X_DIM: ds[schema.X_DIM].values[plan.cols],
    }
    if schema.GRID_MAPPING in ds:
        coords[schema.GRID_MAPPING] = ds[schema.GRID_MAPPING].variable
    attrs = {"long_name": "KG-VSF per-pixel embedding", "weights_sha256": weights_id,
             "model": f"KG-VSF ({model.objective})"}
    if schema.GRID_MAPPING in ds:
        attrs["grid_mapping"] = schema.GRID_MAPPING
    missing = plan.missing_bands
    if missing:
        attrs[NOT_OBSERVED_ATTR] = (
            f"{', '.join(missing)} {'was' if len(missing) == 1 else 'were'} never observed in "
            "the input cube: the embeddings are computed from the other bands "
            f"({', '.join(b for b in model.cfg.bands if b not in missing)}).")
    dims: tuple[str, ...] = ("feature", schema.Y_DIM, schema.X_DIM)
    if single:
        data = arrays[0]
        attrs["t"] = str(plan.t.date())
    else:
        lazy = not all(isinstance(a, np.ndarray) for a in arrays)
        data = da.stack(arrays) if lazy else np.stack(arrays)
        dims = (schema.TIME_DIM,) + dims
        coords[schema.TIME_DIM] = pd.DatetimeIndex([p.t for p in plans]).values
        attrs["t"] = ", ".join(str(p.t.date()) for p in plans)
    return xr.DataArray(data, dims=dims, coords=coords, name="embedding", attrs=attrs)


def _embed_block(model: KGVSF, plan: TilePlan, rows: slice, cols: slice, batch_size: int,
                 progress: bool) -> np.ndarray:
    """Embeddings ``(feature, rows, cols)`` of one pixel block of the plan."""
    stitch = Stitcher(plan, rows, cols)
    device = next(model.parameters()).device
    for chunk, batch in context_batches(plan, batch_size, windows=plan.windows_over(rows, cols),
                                        progress=progress, desc="embedding"):
        with torch.no_grad():
            batch = {k: v.to(device) for k, v in batch.items()}
            out = model.embed_last(batch).float().cpu().numpy()  # (B, F, H, W)
        for i, origin in enumerate(chunk):
            stitch.add(origin, out[i])
    return stitch.result()
