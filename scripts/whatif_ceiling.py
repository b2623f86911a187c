"""How well can a what-if change map be predicted from what the model sees? A ceiling.

Run: ``python scripts/whatif_ceiling.py [--train-worlds 101,102,103] [--variants 3,15]
[--test-worlds 4289,7841] [--json FILE]``

The what-if scorecard (``kgvsf evaluate-weights --tasks whatif``) finds every method's change
maps far from the simulator's (Pearson r 0.2-0.5, mean changes 10-40 % of the truth). Is that the
networks' fault, or is the change not predictable from the inputs (a pixel's history of clear
images and the weather), e.g. because it hangs on the soil's water, which no band shows?

This script fits the most direct learner we can think of, and gives it more than the network
ever gets: gradient-boosted trees predicting the **true change** itself (the simulator's
cloud-free NDVI of the world re-run under a weather variant, minus the observed world's), from
the tree peer's per-pixel features (:func:`~kgvsf_explore.evaluation.peers.features.
forecast_features`: the last two clear observations and their ages, the dates, ``k``, the
drivers over ``(t, t + k]`` under the variant's weather and over the 30 days before ``t``) plus
the observed weather's drivers over ``(t, t + k]`` and the 90 days before ``t``. Training rows
come from the training worlds' weather variants (:func:`~kgvsf_explore.world.variants.
random_weather_scenario`, the family the network's ``--weather-variants`` use, spells in the
worlds' first two years only), at every growing-season image date ``t`` whose past 120 days
carry the observed weather and whose next 60 days do not: exactly the what-if setting (same
context, other weather ahead). Scored with the scorecard's scenarios, date and metrics on the
test worlds' last year.

If these trees reach the "done when" (r >= 0.7, RMSE <= 0.6 x "no change"), the inputs hold the
answer and the network lacks intervention data or a change loss; if they do not, no learner on
these inputs will, and the target needs inputs the model does not have.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import numpy as np
import pandas as pd

from kgvsf_explore import schema
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.evaluation.counterfactual_check import scenarios_at
from kgvsf_explore.evaluation.peers.drivers import DriverSums
from kgvsf_explore.evaluation.peers.features import forecast_features
from kgvsf_explore.evaluation.peers.forest import crop_of_year
from kgvsf_explore.evaluation.peers.history import PixelHistory
from kgvsf_explore.evaluation.scorecard.whatif import _metrics
from kgvsf_explore.evaluation.whatif import _image_date_near
from kgvsf_explore.training.data import PAIR_MEMORY_DAYS
from kgvsf_explore.world import make_world
from kgvsf_explore.world.sample import SIZES
from kgvsf_explore.world.variants import random_weather_scenario, weather_differs
from kgvsf_explore.world.whatif import counterfactual, ndvi_of

K_MAX = 60
PAST_LONG = 90


def _changed_days(cube: Cube, var_cube: Cube) -> np.ndarray:
    """Days (since 1970) on which the two cubes' weather differs anywhere."""
    differs = weather_differs(cube.ds, var_cube.ds, cube.driver_names)
    return (cube.days - pd.Timestamp("1970-01-01")).days.to_numpy()[differs]


def _extra(sums_base: DriverSums, day: int, k: np.ndarray, r: np.ndarray, c: np.ndarray
           ) -> np.ndarray:
    """The observed weather's means over ``(t, t + k]`` and over the 90 days up to ``t``."""
    fut = sums_base.mean(day + 1, day + k, r, c)
    past = sums_base.mean(day - PAST_LONG + 1, day, r, c)
    return np.concatenate([fut, past], 1)


def features(hist: PixelHistory, sums_scen: DriverSums, sums_base: DriverSums, i: int,
             k: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The tree peer's features under the scenario's weather, then :func:`_extra`."""
    x, _ = forecast_features(hist, sums_scen, i, k, r, c)
    return np.concatenate([x, _extra(sums_base, int(hist.days[i]), k, r, c)], 1)


def training_rows(seed: int, n_variants: int, rng: np.random.Generator, pixels: int = 150,
                  size: str = "small") -> list:
    """Per variant of world ``seed``: ``(X, y)`` rows (features plus static layers, true NDVI
    change), or None when no growing-season date of the variant fits the what-if setting."""
    ds, _ = make_world(seed=seed, size=size)
    cube = Cube(ds)
    hist = PixelHistory.from_cube(cube)
    sums_base = DriverSums(cube)
    base_true = ndvi_of(ds).values
    years = SIZES[size][1][:-1]  # the last year is every evaluation's test year
    h, w = hist.shape
    per_variant = []
    for v in range(n_variants):
        scen = random_weather_scenario(np.random.default_rng([seed, v, 271828]), years)
        var_ds = counterfactual(ds, scen)
        var_cube = Cube(var_ds)
        changed = _changed_days(cube, var_cube)
        sums_var = DriverSums(var_cube, block=sums_base.block)
        d_true = ndvi_of(var_ds).values - base_true
        xs, ys = [], []
        for i, t in enumerate(hist.times):
            if t.month < 4 or t.month > 9 or t.year not in years:
                continue
            day = int(hist.days[i])
            if ((changed > day - PAIR_MEMORY_DAYS) & (changed <= day)).any():
                continue  # the context would differ
            if not ((changed > day) & (changed <= day + K_MAX)).any():
                continue  # no other weather ahead
            far = int(np.searchsorted(hist.days, day + K_MAX, "right"))
            if far <= i + 1:
                continue
            q = rng.integers(i + 1, far, 2 * pixels)
            r = rng.integers(0, h, 2 * pixels)
            c = rng.integers(0, w, 2 * pixels)
            ok = hist.last[i, r, c] >= 0
            q, r, c = q[ok][:pixels], r[ok][:pixels], c[ok][:pixels]
            k = (hist.days[q] - day).astype(np.int64)
            x = features(hist, sums_var, sums_base, i, k, r, c)
            xs.append(np.concatenate([x, static(ds, t.year, r, c)], 1))
            ys.append(d_true[q, r, c])
        per_variant.append((np.concatenate(xs), np.concatenate(ys)) if xs else None)
    return per_variant


def static(ds, year: int, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The static layers the simulator knows and the model never sees: soil texture class and
    the year's crop type (columns dropped unless ``--static`` names them)."""
    soil = np.asarray(ds["soil_type"].values)[r, c]
    crop = crop_of_year(ds, year)[r, c]
    return np.stack([soil, crop], 1).astype("float32")


STATIC = ("soil", "crop")


@functools.cache
def _test_world(seed: int, size: str = "small"):
    """A test world, its history and, per scenario of the scorecard, the true change map."""
    ds, _ = make_world(seed=seed, size=size)
    cube = Cube(ds)
    year = int(SIZES[size][1][-1])
    times = cube.times
    t = times[times <= pd.Timestamp(f"{year}-07-01")][-1]
    base_nd = ndvi_of(ds)
    truths = {}
    for label, (scen, days) in scenarios_at(t).items():
        target = _image_date_near(times, t, days)
        world = counterfactual(ds, scen)
        truths[label] = (scen, int((target - t).days),
                         (ndvi_of(world).sel(time=target).values
                          - base_nd.sel(time=target).values).ravel())
    return ds, cube, PixelHistory.from_cube(cube), DriverSums(cube), year, t, truths


def score(model, seed: int, keep: np.ndarray, size: str = "small") -> tuple[dict, list]:
    """Scorecard metrics per scenario and mean changes per crop type of ``model`` on world
    ``seed``'s last year (``keep``: the feature columns it was fitted on)."""
    ds, cube, hist, sums_base, year, t, truths = _test_world(seed, size)
    i = int(np.searchsorted(cube.times.values, np.datetime64(t, "ns")))
    h, w = hist.shape
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    r, c = rr.ravel(), cc.ravel()
    legend = schema.legend_from_attrs(ds[schema.CROP_TYPE].attrs) or schema.CROP_CLASSES
    cr = crop_of_year(ds, year).ravel()
    out, per_crop = {}, []
    for label, (scen, k, truth) in truths.items():
        sums_scen = DriverSums(cube, scen, block=sums_base.block)
        x = features(hist, sums_scen, sums_base, i, np.full(len(r), k), r, c)
        x = np.concatenate([x, static(ds, year, r, c)], 1)[:, keep]
        pred = model.predict(x)
        pred = np.where(hist.last[i, r, c] >= 0, pred, np.nan)
        ok = np.isfinite(pred) & np.isfinite(truth)
        out[label] = {**_metrics(pred, truth),
                      "no_change_rmse": float(np.sqrt(np.mean(truth[ok] ** 2)))}
        for code, name in legend.items():
            m = (cr == code) & ok
            if m.any():
                per_crop.append({"world": seed, "scenario": label, "crop_type": name,
                                 "truth": float(truth[m].mean()),
                                 "change_trees": float(pred[m].mean())})
    return out, per_crop


def main() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train-worlds", default="101,102,103")
    p.add_argument("--variants", default="3,15",
                   help="variants per training world to fit on (each a separate fit)")
    p.add_argument("--test-worlds", default="4289,7841")
    p.add_argument("--static", default=",soil,soil+crop",
                   help="static layers added to the features, one fit per entry ('' none)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    counts = [int(v) for v in args.variants.split(",")]
    rng = np.random.default_rng(0)
    t0 = time.time()
    rows = {s: training_rows(s, max(counts), rng) for s in
            (int(x) for x in args.train_worlds.split(","))}
    print(f"training rows simulated in {time.time() - t0:.0f} s", flush=True)
    report = {}
    fits = [(n, st) for n in counts for st in args.static.split(",")]
    for n, st in fits:
        names = [v for v in st.split("+") if v]
        parts = [p for per in rows.values() for p in per[:n] if p is not None]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        n_dyn = x.shape[1] - len(STATIC)
        keep = np.r_[np.arange(n_dyn), [n_dyn + STATIC.index(v) for v in names]].astype(int)
        model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.1,
                                              max_leaf_nodes=31, random_state=0)
        with threadpool_limits(limits=1, user_api="openmp"):
            model.fit(x[:, keep], y)
        res = {"rows": int(len(y))}
        for s in (int(x) for x in args.test_worlds.split(",")):
            with threadpool_limits(limits=1, user_api="openmp"):
                res[s] = score(model, s, keep)
        report[f"{n}/{st or 'none'}"] = res
        print(f"\n== change trees, {n} variant(s) per training world, static layers "
              f"{st or 'none'}, {len(y)} rows ==")
        for s, (scores, per_crop) in ((k, v) for k, v in res.items() if k != "rows"):
            frame = pd.DataFrame(scores).T
            print(f"world {s}: mean r {frame['pearson_r'].mean():.3f}, RMSE / no change "
                  f"{(frame['rmse'] / frame['no_change_rmse']).mean():.2f}")
            print(frame.round(3).to_string())
            print(pd.DataFrame(per_crop).round(3).to_string(index=False))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({str(k): {str(kk): vv for kk, vv in v.items()} for k, v in report.items()},
                      f, indent=1)


if __name__ == "__main__":
    main()
