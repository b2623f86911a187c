"""Forecast task: the weights against persistence, climatology and the trees, case by case.

Every method predicts the same tiles at the same ``t + k``; each case is scored on the pixels
where the truth is known (the simulator's cloud-free truth, else the clear pixels of the
observed target) and every method has a prediction. Scores per horizon bin, mean and median
over cases (one snowy context can dominate a mean), for targets in the growing season
(April-October) and all year: reflectance MSE over the observed bands and NDVI MAE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ...cube.sampler import sample_to_tensors
from ..peers.climatology import climatology
from ..peers.drivers import DriverSums
from ..peers.history import PixelHistory, ndvi
from ..peers.persistence import persistence
from ..peers.trees import TreeForecaster
from .cases import ForecastCase
from .rows import GROWING_SEASON, Row, bin_of

__all__ = ["errors_on_common_pixels", "forecast_rows_of", "model_forecasts", "score_forecasts"]


def model_forecasts(model, cases: Sequence[ForecastCase], batch_size: int = 16
                    ) -> list[np.ndarray]:
    """The network's own forecast ``(C, H, W)`` of every case."""
    device = next(model.parameters()).device
    out = []
    for b0 in range(0, len(cases), batch_size):
        chunk = [c.sample for c in cases[b0:b0 + batch_size]]
        n = max(len(s.drivers) for s in chunk)
        items = [sample_to_tensors(s, context=model.cfg.context, drivers_len=n) for s in chunk]
        batch = {k: v.to(device) for k, v in torch.utils.data.default_collate(items).items()}
        with torch.no_grad():
            state = model.encode_context(batch)
            for i, s in enumerate(chunk):
                fut = batch["drivers"][i:i + 1, s.t_index + 1:s.t_index + 1 + s.k]
                pred = model.forecast(state.select(i), fut, [s.k])[0, 0].float().cpu().numpy()
                out.append(pred)
    return out


def _truth(s) -> tuple[np.ndarray, np.ndarray]:
    truth = s.target_true if s.target_true is not None else s.target
    band_ok = np.isfinite(truth).any(axis=(1, 2))  # bands the cube observed
    ok = np.isfinite(truth[band_ok]).all(0)
    if s.target_true is None:
        ok &= s.target_mask
    return truth, ok


def errors_on_common_pixels(preds: dict[str, tuple[np.ndarray, np.ndarray]],
                            truth: np.ndarray, ok: np.ndarray, bands: tuple[str, ...]
                            ) -> dict[str, dict]:
    """Errors of every method's ``(refl (C, H, W), ndvi (H, W))`` against ``truth`` on the
    pixels ``ok`` where every method has a value in every band the truth has: ``{method:
    {"pixels", "refl_mse", "ndvi_mae"}}``, or ``{}`` when fewer than 10 pixels are left."""
    band_ok = np.isfinite(truth).any(axis=(1, 2))
    t_nd = ndvi(truth, bands, axis=0)
    common = ok.copy()
    for refl, nd in preds.values():
        common &= np.isfinite(refl[band_ok]).all(0) & np.isfinite(nd)
    if common.sum() < 10:
        return {}
    return {name: {"pixels": int(common.sum()),
                   "refl_mse": float(np.mean((refl[band_ok][:, common]
                                              - truth[band_ok][:, common]) ** 2)),
                   "ndvi_mae": float(np.mean(np.abs(nd[common] - t_nd[common])))}
            for name, (refl, nd) in preds.items()}


def score_forecasts(cases: Sequence[ForecastCase], predictions: dict[str, list[np.ndarray]],
                    hist: PixelHistory, sums: DriverSums, trees: TreeForecaster | None
                    ) -> pd.DataFrame:
    """Per-case errors of every method: one row per (case, method) with ``k``, ``month``,
    ``target``, ``refl_mse``, ``ndvi_mae``, ``pixels``.

    ``predictions`` maps a method name to its ``(C, H, W)`` forecasts (e.g. the model's);
    persistence, climatology and (if given) the trees are computed here on the same cases.
    """
    bands = hist.bands
    records = []
    for n, case in enumerate(cases):
        s = case.sample
        tile = s.images.shape[-1]
        rr, cc = np.meshgrid(np.arange(s.row, s.row + tile), np.arange(s.col, s.col + tile),
                             indexing="ij")
        rows, cols = rr.ravel(), cc.ravel()
        truth, ok = _truth(s)
        preds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, maps in predictions.items():
            p = maps[n]
            preds[name] = (p, ndvi(p, bands, axis=0))
        shape = (len(bands), tile, tile)
        p_refl, p_nd = persistence(hist, case.i, rows, cols)
        preds["persistence"] = (p_refl.T.reshape(shape), p_nd.reshape(tile, tile))
        c_refl, c_nd = climatology(hist, case.target, rows, cols)
        preds["climatology"] = (c_refl.T.reshape(shape), c_nd.reshape(tile, tile))
        if trees is not None:
            t_refl, t_ndv = trees.predict(hist, sums, case.i, case.k, rows, cols)
            preds["trees"] = (t_refl.T.reshape(shape), t_ndv.reshape(tile, tile))
        scored = errors_on_common_pixels(preds, truth, ok, bands)
        for name, err in scored.items():
            records.append({"case": n, "method": name, "k": case.k,
                            "month": case.target.month, "target": str(case.target.date()),
                            **err})
    return pd.DataFrame(records)


def forecast_rows_of(errors: pd.DataFrame, reference: str) -> list[Row]:
    """Rows of ``results.json`` from :func:`score_forecasts`' per-case errors.

    Per season (``growing_season``, ``all_year``), horizon bin (and ``all``), metric and
    statistic (mean, median over cases); plus, for every other method, the share of cases
    where it beats ``reference`` (the weights) in NDVI MAE (``beats_<reference>_share``).
    """
    rows: list[Row] = []
    if errors.empty:
        return rows
    errors = errors.assign(bin=errors["k"].map(bin_of))
    for season, sel in (("growing_season", errors["month"].isin(GROWING_SEASON)),
                        ("all_year", np.ones(len(errors), bool))):
        sub = errors[sel]
        for label in [*(b for b in sorted(sub["bin"].dropna().unique(),
                                          key=lambda b: int(b.split("-")[0]))), "all"]:
            part = sub if label == "all" else sub[sub["bin"] == label]
            if part.empty:
                continue
            n_cases, n_dates = part["case"].nunique(), part["target"].nunique()
            for method, g in part.groupby("method", sort=False):
                for metric in ("refl_mse", "ndvi_mae"):
                    for stat in ("mean", "median"):
                        rows.append(Row("forecast", f"{metric}_{stat}_{season}", label, method,
                                        float(getattr(g[metric], stat)()), n_cases, n_dates))
            wide = part.pivot(index="case", columns="method", values="ndvi_mae")
            if reference in wide:
                for method in wide.columns:
                    if method != reference:
                        share = float((wide[method] < wide[reference]).mean())
                        rows.append(Row("forecast", f"beats_{reference}_share_{season}", label,
                                        method, share, n_cases, n_dates))
    return rows
