"""Gap filling: the image at a cloud-hidden or missing date, from the images on both sides of it.

The paper's missing-image task. Bidirectional context is allowed for this task only: a filled
pixel sees its clear observations before and after the date, the weather between them, and
what KG-VSF makes of the images before the date (its forecast for the date and its embedding
of the last image before it, both forward-only).

:class:`FillHead` learns the *correction to linear interpolation*: per band and for NDVI, one
scikit-learn :class:`~sklearn.ensemble.HistGradientBoostingRegressor` predicts ``truth -
linear interpolation`` from :data:`FILL_FEATURES`. Linear interpolation is therefore where the
head starts, and what it must beat. It needs no labels: it is fitted on the cube being filled,
by hiding each of a set of its clear image dates in turn (self-supervised); the dates to fill
are hidden everywhere while it learns (also from the model's context), so a filled image never
informs its own fill. Fitting takes seconds to a minute on a laptop CPU; the head is not saved
(scikit-learn trees have no safe file format, and a head fitted on the cube at hand is what
fills it best).

Decisions
---------
* The model's part enters as features (its forecast of the date from the images before it,
  and the first :data:`N_EMBED_PCS` principal components of its per-pixel embedding), so a
  model that adds nothing costs little: the trees then lean on the interpolation and the
  weather.
* It learns from every usable image date (up to 400) with few pixels each (500): what linear
  interpolation misses is mostly an event of a date (snow, a harvest, a green-up), so dates,
  not pixels, are the head's sample size: with 24 dates of 3000 pixels the trees learn those
  dates' events and lose to linear interpolation on quiet dates (``docs/heads.md`` measures
  both settings).
* Pixels with no clear observation on either side get the model's forecast.
* Bands the cube never observed (Landsat's B05) get the model's forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from .._dates import to_timestamp
from ..cube.cube import Cube
from ..errors import KGVSFError
from ..evaluation.peers.drivers import PAST_DAYS, DriverSums
from ..evaluation.peers.history import PixelHistory

__all__ = ["FILL_FEATURES", "FillHead", "cloudy_dates", "fill_region", "hide_dates"]

#: Principal components of the model's embedding among the features.
N_EMBED_PCS = 8
_B = list(schema.BANDS)
_D = list(schema.DRIVERS)
#: Column names of the fill head's features.
FILL_FEATURES: tuple[str, ...] = (
    *[f"before_{b}" for b in _B], "before_ndvi", "before_age",
    *[f"after_{b}" for b in _B], "after_ndvi", "after_age",
    *[f"linear_{b}" for b in _B], "linear_ndvi", "weight_after",
    "prev_ndvi", "prev_age", "next_ndvi", "next_age", "doy",
    *[f"before_window_{d}" for d in _D], *[f"after_window_{d}" for d in _D],
    "rain_before_window", "rain_after_window",
    *[f"model_{b}" for b in _B], "model_ndvi",
    *[f"embedding_pc{i}" for i in range(N_EMBED_PCS)],
)


def hide_dates(cube: Cube, dates: Sequence[pd.Timestamp]) -> Cube:
    """The cube with every pixel of its image dates in ``dates`` marked cloudy (lazy; the
    cube itself is not changed). Dates that are not image dates are ignored."""
    ds = cube.ds
    hide = np.isin(cube.times.values, pd.DatetimeIndex(dates).values)
    if not hide.any():
        return cube
    flag = xr.DataArray(hide, dims=schema.TIME_DIM, coords={schema.TIME_DIM: ds[schema.TIME_DIM]})
    if schema.CLOUD_MASK in ds:
        mask = ds[schema.CLOUD_MASK].astype(bool) | flag
    else:
        mask = flag & xr.ones_like(ds[schema.Y_DIM], dtype=bool) & xr.ones_like(
            ds[schema.X_DIM], dtype=bool)
    return Cube(ds.assign({schema.CLOUD_MASK: mask}), fields=cube.fields)


@dataclass
class _Context:
    """What the features read: the (hidden) cube, its history and drivers, the region."""

    model: Any
    cube: Cube
    hist: PixelHistory
    sums: DriverSums
    rows: slice
    cols: slice
    days: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.days = self.hist.days

    def model_maps(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's forecast ``(C, h, w)`` and NDVI ``(h, w)`` of ``day`` from the last image
        before it, and its embedding ``(F, h, w)`` of that image (all NaN when there is no
        image before ``day`` within the model's horizon)."""
        from ..inference.region import forecast_and_embed

        cfg = self.model.cfg
        h, w = self.rows.stop - self.rows.start, self.cols.stop - self.cols.start
        i = int(np.searchsorted(self.days, day, "left")) - 1  # last image strictly before
        k = day - int(self.days[i]) if i >= 0 else -1
        if i < 0 or not cfg.k_min <= k <= cfg.k_max:
            nan = np.float32(np.nan)
            return (np.full((len(_B), h, w), nan), np.full((h, w), nan),
                    np.full((self.model.embed_dim, h, w), nan))
        t = self.hist.times[i]
        # one pass: each tile's context is encoded once for the forecast and the embedding
        fc, emb = forecast_and_embed(self.model, self.cube, t, [k], rows=self.rows,
                                     cols=self.cols)
        return (np.asarray(fc["reflectance"].isel(horizon=0).values, "float32"),
                np.asarray(fc["ndvi"].isel(horizon=0).values, "float32"),
                np.asarray(emb, "float32"))


def _features(ctx: _Context, day: int, exclude: int | None, rr: np.ndarray, cc: np.ndarray,
              model_refl: np.ndarray, model_nd: np.ndarray, emb: np.ndarray,
              pcs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(n, len(FILL_FEATURES))`` and the linear interpolation ``(n, C + 1)`` of
    pixels ``(rr, cc)`` (cube indices) at ``day``; the model maps are region-relative."""
    hist, n_t = ctx.hist, len(ctx.days)
    if exclude is not None:
        lo, hi = hist.before[exclude, rr, cc], hist.after[exclude, rr, cc]
    else:
        i = int(np.searchsorted(ctx.days, day, "right")) - 1
        j = int(np.searchsorted(ctx.days, day, "left"))
        lo = hist.last[i, rr, cc] if i >= 0 else np.full(len(rr), -1, np.int32)
        hi = hist.next[j, rr, cc] if j < n_t else np.full(len(rr), n_t, np.int32)
    a, a_nd = hist.gather(lo, rr, cc)
    b, b_nd = hist.gather(hi, rr, cc)
    age_a, age_b = hist.age(lo, day), -hist.age(hi, day)
    lin, lin_nd = hist.interpolate(day, rr, cc, exclude=exclude)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = (age_a / (age_a + age_b)).astype("float32")
    prev = np.where(lo >= 0, hist.before[np.clip(lo, 0, n_t - 1), rr, cc], -1)
    nxt = np.where(hi < n_t, hist.after[np.clip(hi, 0, n_t - 1), rr, cc], n_t)
    _, prev_nd = hist.gather(prev, rr, cc)
    _, next_nd = hist.gather(nxt, rr, cc)
    first = np.where(np.isfinite(age_a), day - np.nan_to_num(age_a) + 1, day - PAST_DAYS + 1)
    last = np.where(np.isfinite(age_b), day + np.nan_to_num(age_b), day + PAST_DAYS)
    before_w = _all_drivers(ctx.sums, ctx.sums.mean(first.astype(np.int64), day, rr, cc))
    after_w = _all_drivers(ctx.sums, ctx.sums.mean(day + 1, last.astype(np.int64), rr, cc))
    ip = schema.DRIVERS.index("prcp")
    rain_b = before_w[:, ip] * (day - first + 1)
    rain_a = after_w[:, ip] * (last - day)
    doy = np.full(len(rr), pd.Timestamp(day, unit="D").day_of_year, "float32")
    r0, c0 = ctx.rows.start, ctx.cols.start
    m_refl = model_refl[:, rr - r0, cc - c0].T
    m_nd = model_nd[rr - r0, cc - c0]
    e = emb[:, rr - r0, cc - c0].T
    mean, comps = pcs
    e_pc = (e - mean) @ comps.T if len(comps) else np.zeros((len(rr), 0), "float32")
    x = np.concatenate([
        a, a_nd[:, None], age_a[:, None], b, b_nd[:, None], age_b[:, None],
        lin, lin_nd[:, None], weight[:, None],
        prev_nd[:, None], hist.age(prev, day)[:, None], next_nd[:, None],
        -hist.age(nxt, day)[:, None], doy[:, None], before_w, after_w,
        rain_b[:, None], rain_a[:, None], m_refl, m_nd[:, None], e_pc,
    ], 1).astype("float32")
    return x, np.concatenate([lin, lin_nd[:, None]], 1)


def _all_drivers(sums: DriverSums, values: np.ndarray) -> np.ndarray:
    """``(n, len(DRIVERS))`` from the drivers the cube has (NaN for the others)."""
    out = np.full((len(values), len(_D)), np.nan, "float32")
    for j, v in enumerate(sums.names):
        out[:, _D.index(v)] = values[:, j]
    return out


class FillHead:
    """Gradient-boosted trees correcting linear interpolation at a hidden date (see module).

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        :class:`~sklearn.ensemble.HistGradientBoostingRegressor` settings (scikit-learn's
        defaults, but 200 iterations; see ``docs/heads.md`` for the variants we compared).
    seed
        Random state of the regressors and of the sampled training pixels.
    gate
        Also fit each output on two halves of the learning dates (alternate dates) and scale
        the correction, pixel by pixel, by how well the halves agree on it:
        ``clip(a * b / ((a**2 + b**2) / 2), 0, 1)``. A correction both halves find (a snow
        date, a harvest) is kept; one they disagree on (noise the trees fitted on a quiet
        date) shrinks to 0 and linear interpolation stands. Costs two more fits per output.
    """

    def __init__(self, max_iter: int = 200, learning_rate: float = 0.1,
                 max_leaf_nodes: int = 31, min_samples_leaf: int = 20,
                 l2_regularization: float = 0.0, seed: int = 0, gate: bool = True) -> None:
        self.params = {"max_iter": max_iter, "learning_rate": learning_rate,
                       "max_leaf_nodes": max_leaf_nodes, "min_samples_leaf": min_samples_leaf,
                       "l2_regularization": l2_regularization, "random_state": seed,
                       "early_stopping": False}
        self.seed = seed
        self.gate = bool(gate)
        self.models: list = []
        #: per output, the models of the two halves of the learning dates (``gate``)
        self.halves: list[tuple[Any, Any] | None] = []
        self.pcs: tuple[np.ndarray, np.ndarray] = (np.zeros(0, "float32"),
                                                   np.zeros((0, 0), "float32"))
        #: Image dates the head learnt from, and its number of training pixels.
        self.train_dates: list[str] = []
        self.n_rows = 0

    def __repr__(self) -> str:
        state = (f"fitted on {self.n_rows} pixels of {len(self.train_dates)} dates"
                 if self.models else "not fitted")
        return f"<FillHead: {state}>"

    def fit(self, ctx: _Context, mask: np.ndarray | None, *, train_dates: int = 400,
            pixels_per_date: int = 500, min_clear: float = 0.3,
            progress: bool = True) -> FillHead:
        """Learn from up to ``train_dates`` clear image dates of the region, each hidden in
        turn (``pixels_per_date`` random clear pixels each)."""
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits
        from tqdm.auto import tqdm

        rng = np.random.default_rng(self.seed)
        hist, rows, cols = ctx.hist, ctx.rows, ctx.cols
        inside = hist.valid[:, rows, cols] & (True if mask is None else mask[None])
        area = inside[0].size if mask is None else max(int(mask.sum()), 1)
        frac = inside.reshape(len(hist.times), -1).sum(1) / area
        k_max = ctx.model.cfg.k_max
        cand = [j for j in range(1, len(hist.times) - 1)
                if frac[j] >= min_clear and 0 < ctx.days[j] - ctx.days[j - 1] <= k_max]
        if len(cand) < 2:
            raise KGVSFError(
                f"the fill head needs at least 2 image dates of the region at least "
                f"{min_clear:.0%} clear to learn from; this region has {len(cand)} (fill a "
                "larger region, or one with a longer record)")
        pick = sorted(set(np.linspace(0, len(cand) - 1, min(train_dates, len(cand)))
                          .round().astype(int)))
        chosen = [cand[p] for p in pick]
        xs, ys, embs, half = [], [], [], []
        for n, j in enumerate(tqdm(chosen, desc="fill head: learning", disable=not progress)):
            yy, xx = np.nonzero(inside[j])
            take = rng.permutation(len(yy))[:pixels_per_date]
            rr, cc = yy[take] + rows.start, xx[take] + cols.start
            m_refl, m_nd, emb = ctx.model_maps(int(ctx.days[j]))
            embs.append(emb[:, rr - rows.start, cc - cols.start].T)
            no_pc = (np.zeros(0, "float32"), np.zeros((0, emb.shape[0]), "float32"))
            x, base = _features(ctx, int(ctx.days[j]), j, rr, cc, m_refl, m_nd, emb, no_pc)
            refl, nd = hist.gather(np.full(len(rr), j), rr, cc)
            xs.append(x)
            ys.append(np.concatenate([refl, nd[:, None]], 1) - base)
            half.append(np.full(len(rr), n % 2, np.int8))
        e = np.concatenate(embs)
        self.pcs = _principal_components(e, N_EMBED_PCS, rng)
        mean, comps = self.pcs
        e_pc = (e - mean) @ comps.T
        x = np.concatenate([np.concatenate(xs), e_pc], 1)
        y = np.concatenate(ys).astype("float32")
        part = np.concatenate(half)

        def fit(rows: np.ndarray, c: int) -> Any:
            ok = rows & np.isfinite(y[:, c])
            if ok.sum() < 50:
                return None
            return HistGradientBoostingRegressor(**self.params).fit(x[ok], y[ok, c])

        self.models, self.halves = [], []
        everything = np.ones(len(y), bool)
        with threadpool_limits(limits=1, user_api="openmp"):
            for c in tqdm(range(y.shape[1]), desc="fill head: fitting", disable=not progress):
                self.models.append(fit(everything, c))
                pair = (fit(part == 0, c), fit(part == 1, c)) if self.gate else None
                self.halves.append(pair if pair and None not in pair else None)
        self.train_dates = [str(hist.times[j].date()) for j in chosen]
        self.n_rows = int(len(x))
        return self

    def predict(self, ctx: _Context, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Reflectance ``(C, h, w)`` and NDVI ``(h, w)`` of the region at ``day``."""
        from threadpoolctl import threadpool_limits

        if not self.models:
            raise KGVSFError("fit the FillHead first")
        h, w = ctx.rows.stop - ctx.rows.start, ctx.cols.stop - ctx.cols.start
        yy, xx = np.mgrid[0:h, 0:w]
        rr, cc = yy.ravel() + ctx.rows.start, xx.ravel() + ctx.cols.start
        m_refl, m_nd, emb = ctx.model_maps(day)
        x, base = _features(ctx, day, None, rr, cc, m_refl, m_nd, emb, self.pcs)
        corr = np.zeros_like(base)
        with threadpool_limits(limits=1, user_api="openmp"):
            for c, m in enumerate(self.models):
                if m is None:
                    continue
                corr[:, c] = m.predict(x)
                if self.gate and self.halves[c] is not None:
                    a, b = (h.predict(x) for h in self.halves[c])
                    with np.errstate(invalid="ignore", divide="ignore"):
                        agree = np.clip(a * b / ((a * a + b * b) / 2), 0.0, 1.0)
                    corr[:, c] *= np.nan_to_num(agree)
        out = base + corr
        model = np.concatenate([m_refl.reshape(len(_B), -1).T, m_nd.reshape(-1, 1)], 1)
        out = np.where(np.isfinite(out), out, model)
        return (out[:, :len(_B)].T.reshape(len(_B), h, w).astype("float32"),
                out[:, len(_B)].reshape(h, w).astype("float32"))


def _principal_components(e: np.ndarray, n: int, rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(F,)`` and the first ``n`` principal axes ``(n, F)`` of the finite rows of
    ``e`` (at most 20 000 of them)."""
    e = e[np.isfinite(e).all(1)]
    if len(e) < 2:
        return np.zeros(e.shape[1], "float32"), np.zeros((0, e.shape[1]), "float32")
    e = e[rng.permutation(len(e))[:20_000]].astype("float64")
    mean = e.mean(0)
    _, _, vt = np.linalg.svd(e - mean, full_matrices=False)
    return mean.astype("float32"), vt[:n].astype("float32")


def fill_region(model: Any, cube: Cube, dates: Any, *, region: Any = None,
                rows: slice | None = None, cols: slice | None = None,
                head: FillHead | None = None, train_dates: int = 400,
                pixels_per_date: int = 500, seed: int = 0, progress: bool = True,
                weights_id: str = "") -> xr.Dataset:
    """Fill the region at ``dates`` (see :meth:`~kgvsf_explore.Forecaster.fill`)."""
    from ..inference.tiles import resolve_region

    times = _as_dates(cube, dates)
    if rows is None or cols is None:
        rows, cols, mask = resolve_region(cube, region)
    else:
        mask = None
    hidden = hide_dates(cube, times)
    hist = PixelHistory.from_cube(hidden)
    ctx = _Context(model, hidden, hist, DriverSums(hidden), rows, cols)
    if head is None or not head.models:  # none, or one whose settings to fit with
        head = (head or FillHead(seed=seed)).fit(ctx, mask, train_dates=train_dates,
                                                 pixels_per_date=pixels_per_date,
                                                 progress=progress)
    from tqdm.auto import tqdm

    refl, nd = [], []
    day0 = pd.Timestamp("1970-01-01")
    for t in tqdm(times, desc="filling", disable=not progress):
        r, n = head.predict(ctx, int((t - day0).days))
        if mask is not None:
            r = np.where(mask[None], r, np.float32(np.nan))
            n = np.where(mask, n, np.float32(np.nan))
        refl.append(r)
        nd.append(n)
    ds = cube.ds
    coords: dict[str, Any] = {schema.TIME_DIM: times.values, "band": list(_B),
                              schema.Y_DIM: ds[schema.Y_DIM].values[rows],
                              schema.X_DIM: ds[schema.X_DIM].values[cols]}
    if schema.GRID_MAPPING in ds:
        coords[schema.GRID_MAPPING] = ds[schema.GRID_MAPPING].variable
    dims = (schema.TIME_DIM, schema.Y_DIM, schema.X_DIM)
    attrs = {"method": "KG-VSF fill head: gradient-boosted trees correcting linear "
                       "interpolation from the clear images on both sides, the weather between "
                       "and the model's forecast and embedding",
             "weights_sha256": weights_id, "model": f"KG-VSF ({model.objective})",
             "fill_train_dates": ", ".join(head.train_dates),
             "fill_train_pixels": head.n_rows}
    if schema.GRID_MAPPING in ds:
        attrs["grid_mapping"] = schema.GRID_MAPPING
    return xr.Dataset(
        {"reflectance": ((schema.TIME_DIM, "band", schema.Y_DIM, schema.X_DIM),
                         np.stack(refl), {"long_name": "filled surface reflectance"}),
         "ndvi": (dims, np.stack(nd), {"long_name": "filled NDVI"})},
        coords=coords, attrs=attrs)


def cloudy_dates(cube: Cube, region: Any = None, max_clear: float = 0.5) -> list[pd.Timestamp]:
    """Image dates (after the first) on which less than ``max_clear`` of the region is clear."""
    from ..inference.tiles import resolve_region

    rows, cols, mask = resolve_region(cube, region)
    valid = np.asarray(cube.valid.isel({schema.Y_DIM: rows, schema.X_DIM: cols}).values, bool)
    if mask is not None:
        frac = (valid & mask).sum((1, 2)) / max(int(mask.sum()), 1)
    else:
        frac = valid.mean((1, 2))
    out = [cube.times[j] for j in range(1, len(cube.times)) if frac[j] < max_clear]
    if not out:
        raise KGVSFError(f"no image date of the region is less than {max_clear:.0%} clear: "
                         "name the dates to fill")
    return out


def _as_dates(cube: Cube, dates: Any) -> pd.DatetimeIndex:
    """``dates`` (one or several) as normalised dates inside the cube's weather, checked."""
    if isinstance(dates, (str, pd.Timestamp, np.datetime64)) or not isinstance(
            dates, (Sequence, pd.Index, np.ndarray)):
        dates = [dates]
    try:
        times = pd.DatetimeIndex([to_timestamp(d, "fill date") for d in dates]).normalize()
    except KGVSFError as err:
        raise KGVSFError(f"fill dates {dates!r}: give dates such as '2022-07-14' ({err})"
                         ) from err
    if not len(times):
        raise KGVSFError("no date to fill: give one date or a list of dates")
    if times.has_duplicates:
        raise KGVSFError(f"fill dates repeat: {sorted(set(times[times.duplicated()].date))}")
    first, last = cube.times[0], cube.days[-1]
    bad = [str(t.date()) for t in times if not first < t <= last]
    if bad:
        raise KGVSFError(f"cannot fill {', '.join(bad)}: a date to fill must lie after the "
                         f"cube's first image ({first.date()}) and within its weather (to "
                         f"{last.date()})")
    return times
