"""Interval coverage rows of a scorecard: do the weights' 80 % intervals cover 80 %?

The forecast task's cases and the model's forecasts are reused; each pixel's interval comes
from a :class:`~kgvsf_explore.inference.intervals.Calibration` made on *another* world
(:func:`find_calibration` refuses the scored one). A pixel is covered when its outcome (the
simulator's cloud-free truth where the cube has it, else the clear observation: the truth every
forecast score uses) lies within ``[forecast + q_lo, forecast + q_hi]`` of its group. Rows per
season (``growing_season``, ``all_year``) and horizon bin (and ``all``): ``coverage80_ndvi``,
``coverage80_reflectance`` (every observed band's value counts once) and the mean interval
widths ``width80_ndvi`` / ``width80_reflectance``; the share is over pixels of all cases.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .cases import ForecastCase
from .rows import GROWING_SEASON, Row, bin_of

__all__ = ["find_calibration", "interval_rows"]


def find_calibration(intervals: str | os.PathLike[str] | None, weights: Path, sha: str,
                     scored: dict[str, Any]) -> tuple[Any, str | None]:
    """The calibration to score (or None) and, when there is none, why.

    ``intervals`` is a file or folder, or None for ``intervals.json`` beside the weights
    (absent: no rows, with the reason). A calibration made for other weights, or on the world
    being scored (same ``seed`` and ``size``, or the same cube path), is refused with the reason.
    """
    from ...inference.intervals import FILENAME, Calibration, IntervalsError

    path = Path(intervals) if intervals is not None else weights / FILENAME
    if intervals is None and not path.is_file():
        return None, (f"no {FILENAME} beside the weights; make one with `kgvsf calibrate "
                      f"--seed N --weights {weights} --out {weights}` on another world")
    try:
        cal = Calibration.load(path)
        cal.check(sha)
    except IntervalsError as err:
        return None, str(err)
    src = cal.source
    seeds = src.get("seed")
    seeds = seeds if isinstance(seeds, list) else [seeds]
    same_seed = (scored.get("seed") is not None and scored.get("seed") in seeds
                 and src.get("size", "small") == scored.get("size", "small"))
    same_cube = scored.get("cube_path") and src.get("cube_path") == scored.get("cube_path")
    if same_seed or same_cube:
        return None, ("the intervals were calibrated on the world being scored "
                      f"({src.get('cube')}); calibrate on another world")
    return cal, None


def _bounds(cal: Any, var_names: Sequence[str], b: str, season: str, ages: np.ndarray,
            p_lo: float, p_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``(P, V)`` of every pixel (age class index) and variable."""
    from ...inference.intervals import AGE_CLASSES

    labels = [a[0] for a in AGE_CLASSES]
    lo = np.array([[cal.offsets(v, b, season, lab, p_lo) for v in var_names] for lab in labels])
    hi = np.array([[cal.offsets(v, b, season, lab, p_hi) for v in var_names] for lab in labels])
    return lo[ages], hi[ages]


def interval_rows(cases: Sequence[ForecastCase], preds: Sequence[np.ndarray], cal: Any,
                  bands: Sequence[str], method: str, level: float = 0.8) -> list[Row]:
    """Coverage and width rows of the ``level`` intervals on the forecast task's cases."""
    from ...inference.intervals import age_class, case_residuals, default_level_names, season_of

    p_lo, p_hi, _, _ = default_level_names(level)
    names = [*bands, "ndvi"]
    tag = f"{round(level * 100):d}"
    records = []
    for n, (case, pred) in enumerate(zip(cases, preds)):
        b = bin_of(case.k)
        if b is None:
            continue
        res, age = case_residuals(case.sample, pred, bands, "auto")
        if not len(age):
            continue
        lo, hi = _bounds(cal, names, b, season_of(case.target.month), age_class(age), p_lo,
                         p_hi)
        known = np.isfinite(res) & np.isfinite(lo) & np.isfinite(hi)
        inside = (res >= lo) & (res <= hi)
        width = hi - lo
        for kind, cols in (("ndvi", [len(bands)]), ("reflectance", list(range(len(bands))))):
            k = known[:, cols]
            if not k.any():
                continue
            records.append({"case": n, "kind": kind, "bin": b, "month": case.target.month,
                            "target": str(case.target.date()),
                            "inside": int(inside[:, cols][k].sum()), "count": int(k.sum()),
                            "width": float(width[:, cols][k].sum())})
    rows: list[Row] = []
    if not records:
        return rows
    df = pd.DataFrame(records)
    for season, sel in (("growing_season", df["month"].isin(GROWING_SEASON)),
                        ("all_year", np.ones(len(df), bool))):
        sub = df[sel]
        labels = sorted(sub["bin"].unique(), key=lambda s: int(s.split("-")[0]))
        for label in [*labels, "all"]:
            part = sub if label == "all" else sub[sub["bin"] == label]
            for kind, g in part.groupby("kind", sort=False):
                n_cases, n_dates = g["case"].nunique(), g["target"].nunique()
                total = g["count"].sum()
                rows.append(Row("forecast", f"coverage{tag}_{kind}_{season}", label, method,
                                float(g["inside"].sum() / total), n_cases, n_dates))
                rows.append(Row("forecast", f"width{tag}_{kind}_{season}", label, method,
                                float(g["width"].sum() / total), n_cases, n_dates))
    return rows
