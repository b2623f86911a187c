"""Gap filling: an image date is hidden; every method reconstructs it.

Held-out dates come from :func:`~.cases.gap_dates`. The weights forecast the date from the
images before it and the weather up to it (the network is forward-only: it never sees the
images after the gap); linear interpolation uses the clear observations on both sides;
persistence, climatology and the trees as in the forecast task. The weights' fill head
(``<objective>-fill``, :class:`~kgvsf_explore.heads.FillHead`) sees both sides, as the task
allows: it is fitted on the cube with every held-out date hidden (also from the model's
context), then fills them. Scored against the simulator's
cloud-free truth where the cube has it, else on the clear pixels of the hidden image, on pixels
where every method has a value. Each date's winner is the method with the lowest reflectance
MSE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...cube.cube import Cube
from ...errors import KGVSFError
from ...inference.region import forecast_region
from ..peers.climatology import climatology
from ..peers.drivers import DriverSums
from ..peers.history import PixelHistory
from ..peers.interpolation import linear_fill
from ..peers.persistence import persistence
from ..peers.trees import TreeForecaster
from .forecast import errors_on_common_pixels
from .rows import Row

__all__ = ["gapfill_rows", "score_gaps"]


def score_gaps(model, cube: Cube, dates: Sequence[int], hist: PixelHistory, sums: DriverSums,
               trees: TreeForecaster | None, rows: slice, cols: slice, *,
               fill_head: bool = True, fill_dates: int = 400,
               fill_pixels: int = 500, fill_iter: int = 200) -> pd.DataFrame:
    """One row per (held-out date, method): ``refl_mse``, ``ndvi_mae``, ``pixels``.
    ``fill_dates`` and ``fill_pixels`` are the fill head's ``train_dates`` and
    ``pixels_per_date``, ``fill_iter`` its trees' boosting iterations. Where the fill head
    cannot be fitted (a :class:`KGVSFError`, e.g. too few clear dates), the other methods are
    scored and ``attrs["fill_skipped"]`` says why."""
    truth_all = cube.truth
    rr, cc = np.meshgrid(np.arange(rows.start, rows.stop), np.arange(cols.start, cols.stop),
                         indexing="ij")
    r, c = rr.ravel(), cc.ravel()
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    name = model.objective
    records = []
    filled = None
    fill_skipped = ""
    if fill_head:
        from ...heads.fill import FillHead, fill_region

        try:
            filled = fill_region(model, cube, [cube.times[j] for j in dates], rows=rows,
                                 cols=cols, head=FillHead(max_iter=fill_iter, seed=0),
                                 train_dates=fill_dates, pixels_per_date=fill_pixels,
                                 progress=False)
        except KGVSFError as err:  # e.g. too few clear dates to learn from: the others score
            fill_skipped = str(err)
    for j in dates:
        t_prev = cube.times[j - 1]
        k = int((cube.times[j] - t_prev).days)
        if truth_all is not None:
            truth = np.asarray(truth_all.isel(time=j, y=rows, x=cols).values, "float32")
            ok = np.ones(shape, bool)
        else:
            truth = hist.refl[j][:, rows, cols]
            ok = hist.valid[j, rows, cols].copy()
        band_ok = np.isfinite(truth).any(axis=(1, 2))
        ok &= np.isfinite(truth[band_ok]).all(0)
        fc = forecast_region(model, cube, t_prev, [k], rows=rows, cols=cols, progress=False)
        preds = {name: (np.asarray(fc["reflectance"].isel(horizon=0).values, "float32"),
                        np.asarray(fc["ndvi"].isel(horizon=0).values, "float32"))}

        def grid(refl, nd):
            return refl.T.reshape(-1, *shape), nd.reshape(shape)

        if filled is not None:
            at = filled.sel(time=cube.times[j])
            preds[f"{name}-fill"] = (np.asarray(at["reflectance"].values, "float32"),
                                     np.asarray(at["ndvi"].values, "float32"))
        preds["linear_interpolation"] = grid(*linear_fill(hist, j, r, c))
        preds["persistence"] = grid(*persistence(hist, j - 1, r, c))
        preds["climatology"] = grid(*climatology(hist, cube.times[j], r, c))
        if trees is not None:
            preds["trees"] = grid(*trees.predict(hist, sums, j - 1, k, r, c))
        for method, err in errors_on_common_pixels(preds, truth, ok, hist.bands).items():
            records.append({"date": str(cube.times[j].date()), "method": method, "k": k, **err})
    out = pd.DataFrame(records)
    if fill_skipped:
        out.attrs["fill_skipped"] = fill_skipped
    return out


def gapfill_rows(errors: pd.DataFrame) -> list[Row]:
    """Rows: mean and median MSE / NDVI MAE over dates, each date's MSE, the share of dates
    each method wins (lowest MSE), and the share where it beats linear interpolation."""
    rows: list[Row] = []
    if errors.empty:
        return rows
    n_dates = errors["date"].nunique()
    pixels = int(errors.groupby("date")["pixels"].first().sum())
    wide = errors.pivot(index="date", columns="method", values="refl_mse")
    winner = wide.idxmin(axis=1)
    for method, g in errors.groupby("method", sort=False):
        for metric in ("refl_mse", "ndvi_mae"):
            for stat in ("mean", "median"):
                rows.append(Row("gapfill", f"{metric}_{stat}", "all", method,
                                float(getattr(g[metric], stat)()), pixels, n_dates))
        rows.append(Row("gapfill", "win_share", "all", method,
                        float((winner == method).mean()), pixels, n_dates))
        if method != "linear_interpolation" and "linear_interpolation" in wide:
            rows.append(Row("gapfill", "beats_linear_interpolation_share", "all", method,
                            float((wide[method] < wide["linear_interpolation"]).mean()),
                            pixels, n_dates))
        for _, r in g.iterrows():
            rows.append(Row("gapfill", "refl_mse", r["date"], method, r["refl_mse"],
                            r["pixels"], 1))
    return rows
