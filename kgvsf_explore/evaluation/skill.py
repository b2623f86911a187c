"""Forecast skill against the two baselines every forecaster must beat, and the what-if check.

- **persistence**: each pixel keeps its last valid observation of the context;
- **climatology**: each pixel's mean valid observation within +-10 days of the target's day of
  year, over the *other* years of the same cube (the peer of
  :mod:`kgvsf_explore.evaluation.peers.climatology`).

Errors are mean squared errors of reflectance (all bands) against the cloud-free truth when the
cube has it (simulated worlds), else against the valid pixels of the observed target, on the
pixels where every method has a prediction.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import schema
from ..cube.cube import Cube
from ..cube.sampler import Sample, Sampler, sample_to_tensors
from ..models.kgvsf import KGVSF
from .peers.climatology import climatology
from .peers.history import PixelHistory

#: Horizon bins (days) of the skill table: (0, 5], (5, 10], ..., (55, 60].
HORIZON_EDGES: tuple[int, ...] = tuple(range(0, 65, 5))


def forecast_skill(
    model: KGVSF,
    cube: Cube,
    *,
    n_cases: int = 96,
    seed: int = 0,
    year: int | None = None,
    batch_size: int = 16,
    months: Sequence[int] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """MSE of the model, persistence and climatology per horizon bin on one cube.

    Parameters
    ----------
    model
        Trained network (eval mode).
    cube
        A cube the model was not trained on (e.g. a sample world with a new seed).
    n_cases
        Number of random (tile, date, horizon) test cases.
    year
        Calendar year the forecast dates are drawn from (default: the cube's last year);
        climatology uses the other years.
    months
        Keep only cases whose target date falls in these months (e.g. ``range(4, 11)`` for the
        growing season, where snow does not dominate the errors).

    Returns
    -------
    pandas.DataFrame
        Index: horizon bin ``"(a, b]"``; columns ``cases``, ``kgvsf``/objective MSE,
        ``persistence``, ``climatology`` and the model's skill against each
        (``1 - mse_model / mse_baseline``).
    """
    cfg = model.cfg
    times = pd.DatetimeIndex(cube.ds[schema.TIME_DIM].values)
    year = year or int(times.year.max())
    test = cube.sel_time(f"{year}-01-01", f"{year}-12-31")
    sampler = Sampler(test, tile=cfg.tile, context=cfg.context, k_min=cfg.k_min,
                      k_max=cfg.k_max, seed=seed, n_samples=n_cases)
    hist = PixelHistory.from_cube(cube)
    have = set(cube.observed_bands)
    idx = [schema.BANDS.index(b) for b in cfg.bands if b in have]  # the bands scored
    rr, cc = (a.ravel() for a in np.meshgrid(np.arange(cfg.tile), np.arange(cfg.tile),
                                             indexing="ij"))
    rows = []
    for s, pred in _predictions(model, sampler, n_cases, batch_size, progress):
        truth, ok = _truth(s)
        persist = _persistence(s, pred)
        # climatology: the peer's (same pixels, other years, +-10 days of the target's doy)
        target = pd.Timestamp(s.t) + pd.Timedelta(days=s.k)
        c_refl, _ = climatology(hist, target, rr + s.row, cc + s.col)
        clim = c_refl[:, idx].T.reshape(len(idx), cfg.tile, cfg.tile)
        ok &= np.isfinite(persist).all(0) & np.isfinite(clim).all(0)
        if ok.sum() < 10:
            continue
        err = {name: float(np.mean((p[:, ok] - truth[:, ok]) ** 2))
               for name, p in (("model", pred), ("persistence", persist),
                               ("climatology", clim))}
        month = (pd.Timestamp(s.t) + pd.Timedelta(days=s.k)).month
        rows.append({"k": s.k, "month": month, **err})
    df = pd.DataFrame(rows)
    if months is not None and not df.empty:
        df = df[df["month"].isin(list(months))]
    if df.empty:
        raise ValueError("no test case had pixels that every method could predict")
    df["horizon"] = pd.cut(df["k"], list(HORIZON_EDGES))
    table = df.groupby("horizon", observed=True).agg(
        cases=("k", "size"), model=("model", "mean"), persistence=("persistence", "mean"),
        climatology=("climatology", "mean"))
    table["skill_vs_persistence"] = 1 - table["model"] / table["persistence"]
    table["skill_vs_climatology"] = 1 - table["model"] / table["climatology"]
    table.index = table.index.astype(str)
    return table.rename(columns={"model": model.objective})



def _predictions(model: KGVSF, sampler: Sampler, n_cases: int, batch_size: int,
                 progress: bool) -> Iterator[tuple[Sample, np.ndarray]]:
    """The model's forecast ``(C, H, W)`` of every sampled case, in batches."""
    cfg = model.cfg
    samples = list(tqdm(sampler, total=n_cases, desc="test cases", disable=not progress))
    device = next(model.parameters()).device
    for b0 in range(0, len(samples), batch_size):
        chunk = samples[b0:b0 + batch_size]
        items = [sample_to_tensors(s, context=cfg.context, drivers_len=sampler.max_drivers_len)
                 for s in chunk]
        batch = {k: v.to(device) for k, v in torch.utils.data.default_collate(items).items()}
        with torch.no_grad():
            state = model.encode_context(batch)
            for i, s in enumerate(chunk):
                sub = state.select(i)
                fut = batch["drivers"][i:i + 1, s.t_index + 1:s.t_index + 1 + s.k]
                yield _observed(s, model.forecast(sub, fut, [s.k])[0, 0].float().cpu().numpy())


def _observed(s: Sample, pred: np.ndarray) -> tuple[Sample, np.ndarray]:
    """The case and its forecast restricted to the bands the cube observed (a band it lacks
    has nothing to score against)."""
    m = s.band_mask
    if m is None or m.all():
        return s, pred
    return s._replace(images=s.images[:, m], target=s.target[m], band_mask=None,
                      target_true=None if s.target_true is None else s.target_true[m]), pred[m]


def _truth(s: Sample) -> tuple[np.ndarray, np.ndarray]:
    """What a forecast is scored against, and where: the cloud-free truth when the cube has
    it (simulated worlds), else the valid pixels of the observed target."""
    truth = s.target_true if s.target_true is not None else s.target
    ok = np.isfinite(truth).all(0)
    if s.target_true is None:
        ok &= s.target_mask
    return truth, ok


def _persistence(s: Sample, like: np.ndarray) -> np.ndarray:
    """Each pixel's last valid observation of the context (NaN where it has none)."""
    persist = np.full_like(like, np.nan)
    for img, m in zip(s.images, s.mask, strict=True):
        persist = np.where(m[None], img, persist)
    return persist


#: Fewest distinct (forecast date, target date) pairs below which a held-out skill is warned
#: about: with fewer, the cases are mostly tiles of the same few dates, not independent.
MIN_DATE_PAIRS = 10


def heldout_skill(
    model: KGVSF,
    cube: Cube,
    *,
    val_year: int | None = None,
    n_cases: int = 64,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
    min_date_pairs: int = MIN_DATE_PAIRS,
) -> dict[str, Any]:
    """Forecast MSE of the model against persistence on the dates training held out.

    The held-out dates are the validation period of
    :func:`~kgvsf_explore.training.data.split_years` (the last calendar year, ``val_year``,
    or the last 30 % of a one-year cube), so this scores a model trained or finetuned on
    ``cube`` on dates it never saw. Real cubes have no cloud-free truth: forecasts are scored
    on the valid pixels of the observed target. Needs no other year (no climatology).

    The cases are (tile, forecast date, horizon) triples, so many cases can share few dates:
    the result says how many image dates the period has (``dates``), how many distinct
    forecast dates and (forecast, target) date pairs the scored cases used, and the cases and
    date pairs of each horizon bin; with fewer than ``min_date_pairs`` pairs overall it warns
    and says so under ``"warning"``.

    Returns
    -------
    dict
        ``{"period": [first, last], "dates": n, "forecast_dates": n, "date_pairs": n,
        "cases": n, "model_mse": ..., "persistence_mse": ...,
        "skill_vs_persistence": 1 - model / persistence, "warning": str or None}``, and per
        horizon bin under ``"by_horizon"``: ``cases``, ``date_pairs`` and the skill.
    """
    from ..training.data import split_years

    cfg = model.cfg
    _, test, _ = split_years(cube, val_year)
    sampler = Sampler(test, tile=cfg.tile, context=cfg.context, k_min=cfg.k_min,
                      k_max=cfg.k_max, seed=seed, n_samples=n_cases)
    rows = []
    for s, pred in _predictions(model, sampler, n_cases, batch_size, progress):
        truth, ok = _truth(s)
        persist = _persistence(s, pred)
        ok &= np.isfinite(persist).all(0)
        if ok.sum() < 10:
            continue
        rows.append({"k": s.k, "t": pd.Timestamp(s.t),
                     "model": float(np.mean((pred[:, ok] - truth[:, ok]) ** 2)),
                     "persistence": float(np.mean((persist[:, ok] - truth[:, ok]) ** 2))})
    if not rows:
        raise ValueError("no held-out case had enough valid pixels to score")
    df = pd.DataFrame(rows)
    df["horizon"] = pd.cut(df["k"], list(HORIZON_EDGES))
    df["pair"] = list(zip(df["t"], df["k"], strict=True))
    by = df.groupby("horizon", observed=True)[["model", "persistence"]].mean()
    times = test.times
    pairs = int(df["pair"].nunique())
    warning = None
    if pairs < min_date_pairs:
        warning = (f"the held-out skill rests on {pairs} (forecast date, target date) pair(s) "
                   f"of {df['t'].nunique()} forecast date(s) ({len(df)} cases are tiles of "
                   f"those dates), fewer than {min_date_pairs}: it says little; hold out a "
                   "longer period (val_year=..., a cube with more dates) before trusting it")
        warnings.warn(warning, stacklevel=2)
    return {
        "period": [str(times[0].date()), str(times[-1].date())],
        "dates": len(times),
        "forecast_dates": int(df["t"].nunique()),
        "date_pairs": pairs,
        "warning": warning,
        "cases": len(df),
        "model_mse": float(df["model"].mean()),
        "persistence_mse": float(df["persistence"].mean()),
        "skill_vs_persistence": float(1 - df["model"].mean() / df["persistence"].mean()),
        "by_horizon": {str(h): {"cases": int((df["horizon"] == h).sum()),
                                "date_pairs": int(df.loc[df["horizon"] == h, "pair"].nunique()),
                                "skill_vs_persistence": float(1 - r.model / r.persistence)}
                       for h, r in by.iterrows()},
    }
