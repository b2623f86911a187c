"""Forecast intervals: split-conformal quantiles of the model's errors, per pixel.

Post-hoc and model-agnostic: the network is not changed or retrained. Decisions, in order:

1. **Calibration set.** Forecast cases are drawn from one or more *calibration cubes* (worlds
   the weights were not trained on, and not the one later scored; several worlds, so that the
   spread between worlds is in the residuals a new world is judged by) with the sampler the
   scorecard uses (:class:`~kgvsf_explore.cube.sampler.Sampler`: a 32 x 32 tile, an origin image
   ``t`` and a target image ``t + k``, ``k`` in the model's horizons), over the whole cube or
   a ``period``. Each case is forecast as the scorecard does
   (:func:`~kgvsf_explore.evaluation.scorecard.forecast.model_forecasts`).
2. **Outcome.** The residual is ``outcome - forecast`` per pixel, for every band and for NDVI.
   The outcome is what the scorecard scores against: the simulator's cloud-free truth when the
   cube has it (``truth="auto"``), else the clear pixels of the observed target
   (``truth="observed"`` forces that), so intervals cover the land surface, not sensor noise.
3. **Groups (Mondrian conformal).** Residuals are grouped by variable, horizon bin
   (:data:`~kgvsf_explore.evaluation.scorecard.rows.BINS`: 0-10, 10-20, 20-30, 30-45, 45-60
   days), season of the target date (``growing`` April-October, else ``winter``: snow makes
   winter reflectance errors two to three times larger, while NDVI errs less) and **anchor
   age**, the days between ``t`` and the pixel's last clear context image (classes
   :data:`AGE_CLASSES`): a pixel cloudy at ``t`` is forecast from an older look and errs more. A
   group with fewer than ``min_cases`` distinct cases falls back to a coarser one: first without
   the age class, then without the season, then the variable alone. Pixels of one tile are
   correlated, so the count that decides is the number of cases, not of pixels.
4. **Quantiles.** Two one-sided finite-sample conformal quantiles per group: for probability
   ``p < 0.5`` the ``floor(p (n + 1))``-th smallest residual, for ``p > 0.5`` the
   ``ceil(p (n + 1))``-th (infinite when ``n`` is too small). The interval of level ``1 - a``
   is ``[forecast + q(a/2), forecast + q(1 - a/2)]``: it may be asymmetric (a biased forecast
   gets a shifted interval), and ``q_lo <= q_hi`` always. Probabilities
   :data:`DEFAULT_PROBABILITIES` give 50, 80 and 90 % intervals. Lower reflectance bounds are
   clipped at 0 and NDVI bounds to [-1, 1] (that never uncovers a possible outcome).
5. **Storage.** :meth:`Calibration.save` writes JSON (never a pickle) atomically, recording
   the SHA-256 of the weights; :meth:`Calibration.check` refuses other weights
   (:class:`IntervalsMismatchError`).

What the guarantee is: under exchangeability of calibration and test cases (same kind of
world, same season mix), each group's interval covers at least its level of *pixels* on
average; pixels of a tile are not independent, so coverage of one case varies around the level.
A what-if forecast reuses the intervals of the observed weather: its errors are assumed to
be like those of the observed weather (the simulator's counterfactuals are not used).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..errors import KGVSFError

__all__ = ["AGE_CLASSES", "DEFAULT_PROBABILITIES", "FILENAME", "Calibration",
           "IntervalsError", "IntervalsMismatchError", "add_intervals", "age_class", "anchor_age",
           "beyond_interval", "calibrate", "case_residuals", "check_level", "conformal_quantile",
           "default_level_names", "pixel_bounds", "season_of"]

#: File name of a calibration beside the weights.
FILENAME = "intervals.json"

#: Probabilities stored per group: 50, 80 and 90 % central intervals.
DEFAULT_PROBABILITIES: tuple[float, ...] = (0.05, 0.1, 0.25, 0.75, 0.9, 0.95)

#: Anchor-age classes, days between ``t`` and the pixel's last clear context image:
#: ``(label, lowest, highest)`` inclusive; a pixel with no clear context image is ``"31+"``.
AGE_CLASSES: tuple[tuple[str, int, int], ...] = (("0", 0, 0), ("1-10", 1, 10),
                                                  ("11-30", 11, 30), ("31+", 31, 10**6))

#: Age given to a pixel with no clear context image.
NO_CLEAR_AGE = 10**6

_FORMAT = "kgvsf-intervals"
_VERSION = 1


class IntervalsError(KGVSFError, ValueError):
    """A calibration is missing, malformed, or cannot give the interval asked for."""


class IntervalsMismatchError(IntervalsError):
    """A calibration was made for other weights than the ones forecasting."""


def season_of(month: int) -> str:
    """``"growing"`` for targets April to October (the scorecard's growing season), else
    ``"winter"``."""
    from ..evaluation.scorecard.rows import GROWING_SEASON

    return "growing" if int(month) in GROWING_SEASON else "winter"


def age_class(age: np.ndarray) -> np.ndarray:
    """Index into :data:`AGE_CLASSES` of every anchor age (days; NaN or huge: the last)."""
    age = np.asarray(age, dtype="float64")
    out = np.full(age.shape, len(AGE_CLASSES) - 1, dtype=np.int8)
    for i, (_, lo, hi) in reversed(list(enumerate(AGE_CLASSES))):
        out[(age >= lo) & (age <= hi)] = i
    return out


def conformal_quantile(values: np.ndarray, p: float) -> float:
    """One-sided finite-sample split-conformal quantile of ``values`` at probability ``p``.

    ``p > 0.5``: the ``ceil(p (n + 1))``-th smallest value (``+inf`` when that rank exceeds
    ``n``); ``p < 0.5``: the ``floor(p (n + 1))``-th smallest (``-inf`` when it is below 1).
    A new exchangeable value then lies below the first (above the second) with probability at
    least ``p`` (at least ``1 - p``).
    """
    v = np.sort(np.asarray(values, dtype="float64").ravel())
    n = v.size
    if p >= 0.5:
        rank = math.ceil(p * (n + 1))
        return float(v[rank - 1]) if rank <= n else math.inf
    rank = math.floor(p * (n + 1))
    return float(v[rank - 1]) if rank >= 1 else -math.inf


def default_level_names(level: float) -> tuple[float, float, str, str]:
    """Probabilities and variable suffixes of a central interval: 0.8 -> (0.1, 0.9, q10, q90)."""
    if not 0 < float(level) < 1:
        raise IntervalsError(f"interval must be a level between 0 and 1 (e.g. 0.8), got {level}")
    lo = round((1 - float(level)) / 2, 6)
    hi = round(1 - lo, 6)
    return lo, hi, _qname(lo), _qname(hi)


def _qname(p: float) -> str:
    pct = p * 100
    return f"q{int(round(pct)):02d}" if abs(pct - round(pct)) < 1e-6 else f"q{pct:g}"


# ------------------------------------------------------------------------------ calibration
@dataclass
class Calibration:
    """Conformal quantiles of a model's forecast errors, per group.

    Attributes
    ----------
    weights_sha256
        SHA-256 of the weights the residuals come from.
    probabilities
        Probabilities of the stored quantiles.
    groups
        One dict per group: ``variable`` (a band or ``"ndvi"``), ``bin``, ``season`` and
        ``age`` (``"*"`` where the group pools over it), ``n_cases``, ``n_pixels`` and
        ``q`` (one value per probability; None for an infinite one in JSON).
    source
        Where the calibration comes from: cube, seed, period, number of cases, truth, seed of
        the case draw, the command that made it.
    min_cases
        Cases a group needs to be used; smaller groups fall back to a coarser one.
    """

    weights_sha256: str
    probabilities: tuple[float, ...]
    groups: list[dict[str, Any]]
    source: dict[str, Any] = field(default_factory=dict)
    min_cases: int = 20

    def __post_init__(self) -> None:
        self._index = {(g["variable"], g["bin"], g["season"], g["age"]): g for g in self.groups}

    # ----------------------------------------------------------------------- look-up
    @property
    def variables(self) -> list[str]:
        """Variables with quantiles (bands and ``ndvi``)."""
        return list(dict.fromkeys(g["variable"] for g in self.groups))

    @property
    def levels(self) -> list[float]:
        """Central interval levels whose two quantiles are stored (e.g. 0.5, 0.8, 0.9)."""
        ps = self.probabilities
        return sorted(round(1 - 2 * p, 6) for p in ps
                      if p < 0.5 and any(abs(1 - p - q) < 1e-9 for q in ps))

    def group(self, variable: str, bin: str, season: str, age: str) -> dict[str, Any] | None:
        """The finest group with at least :attr:`min_cases` cases (falling back to coarser
        ones; the variable alone last), or None when the variable was never calibrated."""
        for key in ((variable, bin, season, age), (variable, bin, season, "*"),
                    (variable, bin, "*", "*"), (variable, "*", "*", "*")):
            g = self._index.get(key)
            if g is not None and (g["n_cases"] >= self.min_cases or key[1] == "*"):
                return g
        return None

    def offsets(self, variable: str, bin: str, season: str, age: str, p: float) -> float:
        """The residual quantile at probability ``p`` of a pixel's group (NaN if none)."""
        if not any(abs(p - q) < 1e-9 for q in self.probabilities):
            raise IntervalsError(
                f"this calibration holds probabilities {list(self.probabilities)}, not {p}; "
                "pick a level whose tails it holds or calibrate again with probabilities=...")
        g = self.group(variable, bin, season, age)
        if g is None:
            return math.nan
        i = int(np.argmin([abs(p - q) for q in self.probabilities]))
        v = g["q"][i]
        return (math.inf if p >= 0.5 else -math.inf) if v is None else float(v)

    def check(self, weights_sha256: str) -> None:
        """Refuse to be used with other weights (:class:`IntervalsMismatchError`)."""
        if weights_sha256 and self.weights_sha256 != weights_sha256:
            raise IntervalsMismatchError(
                f"these intervals were calibrated for weights {self.weights_sha256[:12]}, "
                f"not for the loaded weights {weights_sha256[:12]}: calibrate them again "
                "(Forecaster.calibrate(cube) or `kgvsf calibrate --seed N --weights DIR "
                "--out DIR`)")

    # ----------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (infinite quantiles as None)."""
        from ..evaluation.scorecard.rows import BINS

        return {"format": _FORMAT, "version": _VERSION, "weights_sha256": self.weights_sha256,
                "method": "split-conformal residual quantiles (outcome - forecast) grouped by "
                          "variable, horizon bin, season of the target and anchor age",
                "probabilities": list(self.probabilities), "levels": self.levels,
                "min_cases": self.min_cases,
                "bins": [f"{a}-{b}" for a, b in BINS],
                "seasons": {"growing": "April-October", "winter": "November-March"},
                "age_classes": [list(a) for a in AGE_CLASSES], "source": self.source,
                "groups": self.groups}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration as JSON, atomically (a file path or a folder, which gets
        :data:`FILENAME`); returns the file written."""
        from .._atomic import atomic_write

        target = Path(path)
        if target.is_dir() or not target.suffix:
            target = target / FILENAME
        target.parent.mkdir(parents=True, exist_ok=True)
        d = self.to_dict()
        groups = d.pop("groups")
        head = json.dumps(d, indent=1, allow_nan=False)[:-2]  # one group a line below
        lines = ",\n  ".join(json.dumps(g, allow_nan=False) for g in groups)
        return atomic_write(target, f'{head},\n "groups": [\n  {lines}\n ]\n}}\n')

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise IntervalsError("not a kgvsf intervals file (no \"format\": "
                                 f"\"{_FORMAT}\"); make one with `kgvsf calibrate`")
        if int(d.get("version", 0)) > _VERSION:
            raise IntervalsError(f"intervals file version {d.get('version')} is newer than "
                                 f"this kgvsf-explore reads ({_VERSION}); upgrade kgvsf-explore")
        try:
            return cls(weights_sha256=str(d["weights_sha256"]),
                       probabilities=tuple(float(p) for p in d["probabilities"]),
                       groups=list(d["groups"]), source=dict(d.get("source", {})),
                       min_cases=int(d.get("min_cases", 20)))
        except (KeyError, TypeError) as err:
            raise IntervalsError(f"intervals file is missing or garbles {err}; make it again "
                                 "with `kgvsf calibrate`") from err

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        """Read a calibration (a file, or a folder holding :data:`FILENAME`)."""
        p = Path(path)
        if p.is_dir():
            p = p / FILENAME
        if not p.is_file():
            raise IntervalsError(f"no intervals file at {p}; make one with `kgvsf calibrate "
                                 "--seed N --weights DIR --out DIR` or Forecaster.calibrate")
        try:
            d = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise IntervalsError(f"{p} is not valid JSON ({err}); make it again with "
                                 "`kgvsf calibrate`") from err
        return cls.from_dict(d)

    def __repr__(self) -> str:
        src = self.source.get("cube", "?")
        return (f"<Calibration weights={self.weights_sha256[:12]} on {src}: "
                f"{self.source.get('n_cases', '?')} cases, {len(self.groups)} groups>")


# ------------------------------------------------------------------------------ residuals
def _anchor_age(sample: Any) -> np.ndarray:
    """Days between ``t`` and each pixel's last clear context image (:data:`NO_CLEAR_AGE` if
    none)."""
    mask = np.asarray(sample.mask, bool)  # (L, H, W)
    offs = -np.asarray(sample.image_offsets, dtype=np.int64)  # >= 0, last is 0
    age = np.full(mask.shape[1:], NO_CLEAR_AGE, dtype=np.int64)
    for j in range(mask.shape[0]):  # oldest first: later clear images overwrite
        age[mask[j]] = offs[j]
    return age


def case_residuals(sample: Any, pred: np.ndarray, bands: Sequence[str], truth: str = "auto"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Residuals ``(P, C + 1)`` (bands, then NDVI; NaN in a band the cube lacks) and anchor
    ages ``(P,)`` of the pixels of one case where the outcome is known and the forecast finite.
    """
    from ..evaluation.peers.history import ndvi

    use_true = truth == "auto" and sample.target_true is not None
    target = sample.target_true if use_true else sample.target
    band_ok = np.isfinite(target).any(axis=(1, 2))
    if not band_ok.any():
        return np.zeros((0, len(bands) + 1)), np.zeros(0)
    ok = np.isfinite(target[band_ok]).all(0) & np.isfinite(pred).all(0)
    if not use_true:
        ok &= np.asarray(sample.target_mask, bool)
    res = np.full((len(bands) + 1, int(ok.sum())), np.nan)
    res[:-1][band_ok] = (target[band_ok][:, ok] - pred[band_ok][:, ok])
    if {"B04", "B08"} <= {b for b, m in zip(bands, band_ok) if m}:
        res[-1] = ndvi(target, tuple(bands), axis=0)[ok] - ndvi(pred, tuple(bands), axis=0)[ok]
    return res.T, _anchor_age(sample)[ok]


def calibration_cases(cube: Any, cfg: Any, n_cases: int, seed: int = 0,
                      period: tuple[Any, Any] | None = None) -> list[Any]:
    """``n_cases`` seeded scorecard-style cases with the origin anywhere in ``period``."""
    from ..cube.sampler import Sampler
    from ..evaluation.scorecard.cases import ForecastCase

    sub = cube if period is None else cube.sel_time(*period)
    sampler = Sampler(sub, tile=cfg.tile, context=cfg.context, k_min=cfg.k_min,
                      k_max=cfg.k_max, seed=seed, n_samples=n_cases, bands=tuple(cfg.bands))
    times = sub.times.values
    return [ForecastCase(s, int(np.searchsorted(times, np.datetime64(s.t, "ns"))))
            for s in sampler.sample(n_cases)]


def calibrate(model: Any, cube: Any, *, weights_sha256: str, n_cases: int = 600,
              seed: int = 0, period: tuple[Any, Any] | None = None, truth: str = "auto",
              probabilities: Sequence[float] = DEFAULT_PROBABILITIES, min_cases: int = 20,
              source: dict[str, Any] | None = None, batch_size: int = 16) -> Calibration:
    """Calibrate forecast intervals of ``model`` on ``cube`` (see the module docstring).

    Parameters
    ----------
    model
        A :class:`~kgvsf_explore.models.kgvsf.KGVSF` in eval mode.
    cube
        The calibration :class:`~kgvsf_explore.Cube`, or a list of them (several worlds: the
        spread between worlds then enters the intervals, which a new world needs): not one
        the weights were trained on, and not the cube the intervals will be scored on.
    weights_sha256
        SHA-256 of the weights (recorded; forecasts of other weights refuse the calibration).
    n_cases
        Forecast cases (tiles) to draw from each cube.
    seed
        Seed of the case draw (``seed + j`` for the ``j``-th cube).
    period
        ``(start, end)`` of the origins (e.g. a held-out year of a cube the weights were
        finetuned on); None: the whole cube.
    truth
        ``"auto"`` (the simulator's cloud-free truth where the cube has it, else clear
        observations) or ``"observed"`` (clear observations only).
    probabilities
        Probabilities of the stored residual quantiles (two per central interval).
    min_cases
        Cases a group needs; smaller groups fall back to a coarser one.
    source
        Extra facts recorded in :attr:`Calibration.source` (e.g. the command).
    batch_size
        Cases per forward pass.

    Returns
    -------
    Calibration
    """
    from ..evaluation.scorecard.forecast import model_forecasts
    from ..evaluation.scorecard.rows import bin_of

    if truth not in ("auto", "observed"):
        raise IntervalsError(f"truth must be 'auto' or 'observed', got {truth!r}")
    if n_cases < min_cases:
        raise IntervalsError(f"n_cases ({n_cases}) must be at least min_cases ({min_cases})")
    probs = tuple(sorted(float(p) for p in probabilities))
    if not probs or any(not 0 < p < 1 for p in probs):
        raise IntervalsError(f"probabilities must lie strictly between 0 and 1, got {probs}")
    bands = tuple(model.cfg.bands)
    cubes = list(cube) if isinstance(cube, (list, tuple)) else [cube]
    cases, preds = [], []
    for j, one in enumerate(cubes):  # n_cases from each cube, each its own seed
        drawn = calibration_cases(one, model.cfg, n_cases, seed=seed + j, period=period)
        cases += drawn
        preds += model_forecasts(model, drawn, batch_size=batch_size)
    names = [*bands, "ndvi"]
    parts: list[pd.DataFrame] = []
    for n, (case, pred) in enumerate(zip(cases, preds)):
        res, age = case_residuals(case.sample, pred, bands, truth)
        if not len(age):
            continue
        df = pd.DataFrame(res, columns=names)
        df["case"], df["bin"] = n, bin_of(case.k)
        df["season"] = season_of(case.target.month)
        df["age"] = np.array([a[0] for a in AGE_CLASSES])[age_class(age)]
        parts.append(df)
    if not parts:
        raise IntervalsError("no calibration case has a pixel with a known outcome; use a "
                             "less cloudy cube or more cases")
    data = pd.concat(parts, ignore_index=True)
    groups: list[dict[str, Any]] = []
    for keys in (["bin", "season", "age"], ["bin", "season"], ["bin"], []):
        grouped = data.groupby(keys, sort=True) if keys else [((), data)]
        for key, part in grouped:
            key = key if isinstance(key, tuple) else (key,)
            labels = dict(zip(keys, key))
            for var in names:
                vals = part[var].to_numpy()
                ok = np.isfinite(vals)
                if not ok.any():
                    continue
                qs = [conformal_quantile(vals[ok], p) for p in probs]
                groups.append({
                    "variable": var, "bin": labels.get("bin", "*"),
                    "season": labels.get("season", "*"), "age": labels.get("age", "*"),
                    "n_cases": int(part.loc[ok, "case"].nunique()), "n_pixels": int(ok.sum()),
                    "q": [None if not math.isfinite(q) else round(q, 6) for q in qs]})
    t = pd.DatetimeIndex([c.sample.t for c in cases])
    info = {"n_cases": len(cases), "case_seed": seed, "truth": truth,
            "origins": [str(t.min().date()), str(t.max().date())],
            "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **(source or {})}
    return Calibration(weights_sha256, probs, groups, info, min_cases)


# ------------------------------------------------------------------------------ apply
def anchor_age(cube: Any, t: Any, y: np.ndarray, x: np.ndarray, context: int = 6) -> np.ndarray:
    """Anchor age ``(y, x)`` of pixels at centres ``y``, ``x``: days between ``t`` and the
    pixel's last clear image among the ``context`` image dates up to ``t`` (the model's
    context); :data:`NO_CLEAR_AGE` where none is clear."""
    t = pd.Timestamp(t)
    times = cube.times
    idx = np.flatnonzero(times.normalize() <= t)[-context:]
    valid = cube.valid.isel({schema.TIME_DIM: idx}).sel({schema.Y_DIM: y, schema.X_DIM: x})
    ok = np.asarray(valid.values, bool)
    offs = (t - times[idx].normalize()).days.to_numpy()
    age = np.full(ok.shape[1:], NO_CLEAR_AGE, dtype=np.int64)
    for j in range(ok.shape[0]):
        age[ok[j]] = offs[j]
    return age


def _region_age(cube: Any, out: xr.Dataset, context: int) -> np.ndarray:
    return anchor_age(cube, out.attrs["t"], out[schema.Y_DIM].values, out[schema.X_DIM].values,
                      context)


def pixel_bounds(calibration: Calibration, values: np.ndarray, variable: str, horizon: int,
                 target: Any, age: np.ndarray, level: float = 0.8) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """Lower and upper bounds of one forecast map, as :func:`add_intervals` makes them.

    Parameters
    ----------
    calibration
        The weights' :class:`Calibration`.
    values
        The forecast ``(y, x)`` of ``variable`` (``"ndvi"`` or a band name).
    horizon, target
        Its horizon (days) and date ``t + horizon`` (the season of the group).
    age
        Anchor ages ``(y, x)`` (:func:`anchor_age`).
    level
        Central interval level.
    """
    from ..evaluation.scorecard.rows import bin_of

    p_lo, p_hi, _, _ = check_level(calibration, level)
    b, s = bin_of(int(horizon)) or "*", season_of(pd.Timestamp(target).month)
    cls = age_class(age)
    out = []
    for p in (p_lo, p_hi):
        table = np.array([calibration.offsets(variable, b, s, a[0], p) for a in AGE_CLASSES],
                         dtype="float32")
        bound = np.asarray(values, dtype="float32") + table[cls]
        lo_clip, hi_clip = (-1.0, 1.0) if variable == "ndvi" else (0.0, np.inf)
        out.append(np.clip(bound, lo_clip, hi_clip))
    return out[0], out[1]


def add_intervals(out: xr.Dataset, cube: Any, calibration: Calibration, level: float = 0.8,
                  *, context: int = 6) -> xr.Dataset:
    """Add ``reflectance_qLO``/``_qHI`` and ``ndvi_qLO``/``_qHI`` to a forecast.

    Parameters
    ----------
    out
        A forecast (:meth:`Forecaster.forecast`), any ``scenario`` dimension, in memory or
        lazy.
    cube
        The cube it was forecast from (the pixels' anchor ages are read from its clear masks).
    calibration
        The :class:`Calibration` of the weights that made ``out`` (checked by SHA-256).
    level
        Central interval level: 0.8 adds ``*_q10`` and ``*_q90``.
    context
        The model's context length (images up to ``t`` the anchor age looks at).

    Returns
    -------
    xarray.Dataset
        ``out`` with the four variables (same dims as ``reflectance`` / ``ndvi``); each and the
        dataset carry attrs ``interval_level``, ``interval_calibration`` (where it was
        calibrated) and ``interval_method``. A band the calibration never saw is NaN.
    """
    from ..evaluation.scorecard.rows import bin_of

    calibration.check(str(out.attrs.get("weights_sha256", "")))
    p_lo, p_hi, n_lo, n_hi = check_level(calibration, level)
    horizons = [int(h) for h in out["horizon"].values]
    months = pd.DatetimeIndex(out[schema.TIME_DIM].values).month
    bands = [str(b) for b in out["band"].values]
    labels = [a[0] for a in AGE_CLASSES]
    cls = age_class(_region_age(cube, out, context))
    age_idx = xr.DataArray(cls.astype(np.int64), dims=(schema.Y_DIM, schema.X_DIM))

    def table(var_names: list[str], p: float) -> np.ndarray:
        tab = np.full((len(horizons), len(var_names), len(labels)), np.nan)
        for i, (h, m) in enumerate(zip(horizons, months)):
            b, s = bin_of(h) or "*", season_of(m)
            for j, v in enumerate(var_names):
                for a, lab in enumerate(labels):
                    tab[i, j, a] = calibration.offsets(v, b, s, lab, p)
        return tab

    src = calibration.source
    where = src.get("cube", "?")
    attrs = {"interval_level": float(level),
             "interval_calibration": f"{where}; {src.get('n_cases', '?')} cases; weights "
                                     f"{calibration.weights_sha256[:12]}",
             "interval_method": "split-conformal residual quantiles by horizon bin, season "
                                "and anchor age (kgvsf_explore.inference.intervals)"}
    result = out.copy()
    for var, names in (("reflectance", bands), ("ndvi", ["ndvi"])):
        for p, suffix in ((p_lo, n_lo), (p_hi, n_hi)):
            tab = xr.DataArray(table(names, p).astype("float32"),
                               dims=("horizon", "band", "age_class"),
                               coords={"horizon": out["horizon"].values})
            off = tab.isel(age_class=age_idx)  # (horizon, band, y, x)
            if var == "ndvi":
                off = off.isel(band=0, drop=True)
            else:
                off = off.assign_coords(band=out["band"].values)
            bound = out[var] + off.astype(out[var].dtype)
            bound = bound.clip(min=0) if var == "reflectance" else bound.clip(-1, 1)
            bound = bound.transpose(*out[var].dims)
            kind = "lower" if p < 0.5 else "upper"
            result[f"{var}_{suffix}"] = bound.assign_attrs(
                {k: v for k, v in out[var].attrs.items() if k == "grid_mapping"},
                long_name=f"{kind} bound of the {level:.0%} forecast interval of {var} "
                          f"(quantile {p:g})", **attrs)
    result.attrs.update(attrs)
    return result


def check_level(calibration: Calibration, level: float) -> tuple[float, float, str, str]:
    """:func:`default_level_names` of ``level``, refused (:class:`IntervalsError`) when the
    calibration lacks its two quantiles."""
    p_lo, p_hi, n_lo, n_hi = default_level_names(level)
    for p in (p_lo, p_hi):
        if not any(abs(p - q) < 1e-9 for q in calibration.probabilities):
            raise IntervalsError(
                f"a {level:.0%} interval needs the {p_lo:g} and {p_hi:g} quantiles; this "
                f"calibration holds {list(calibration.probabilities)} (levels 0.5, 0.8, 0.9 "
                "by default)")
    return p_lo, p_hi, n_lo, n_hi


def beyond_interval(out: xr.Dataset, var: str = "ndvi") -> xr.DataArray:
    """Where each scenario's forecast leaves the observed weather's forecast interval.

    ``out`` is a forecast with a ``scenario`` dimension (one named ``"observed"``, else the
    first, is the reference) and intervals (``interval=`` of :meth:`Forecaster.forecast`).
    True where a scenario's ``var`` lies below the reference's lower bound or above its upper
    bound: the what-if change is larger than the forecast's own uncertainty. This reads a
    change against the uncertainty of one forecast, not a calibrated interval of the change
    (the errors of two forecasts from the same context are strongly correlated).
    """
    lo = [v for v in out.data_vars if v.startswith(f"{var}_q")]
    if "scenario" not in out.dims or len(lo) < 2:
        raise IntervalsError("beyond_interval needs a forecast with a 'scenario' dimension and "
                             "intervals: fc.forecast(..., scenario=[None, s], interval=0.8)")
    lo_name, hi_name = sorted(lo, key=lambda n: float(n.split("_q")[-1]))[::len(lo) - 1]
    names = [str(n) for n in out["scenario"].values]
    ref = "observed" if "observed" in names else names[0]
    others = [n for n in names if n != ref] or names
    scen = out[var].sel(scenario=others)
    low = out[lo_name].sel(scenario=ref, drop=True)
    high = out[hi_name].sel(scenario=ref, drop=True)
    flag = (scen < low) | (scen > high)
    return flag.rename(f"{var}_beyond_interval").assign_attrs(
        long_name=f"scenario {var} outside the {ref!r} forecast's interval "
                  f"[{lo_name}, {hi_name}]", reference=ref)
