"""The peers: each fits, predicts and beats a constant on a tiny world, and none reads soil
moisture, the simulator's truth bands or labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgvsf_explore import schema
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.evaluation.peers import (
    CropForest,
    DriverSums,
    PixelHistory,
    SoilMoistureForest,
    TreeForecaster,
    climatology,
    forecast_rows,
    linear_fill,
    persistence,
)
from kgvsf_explore.evaluation.peers.features import FEATURE_NAMES, forecast_features
from kgvsf_explore.evaluation.peers.history import ndvi
from kgvsf_explore.tasks import make_split
from kgvsf_explore.world import make_world


@pytest.fixture(scope="module")
def world() -> Cube:
    return Cube(make_world(seed=61, size="tiny")[0].load())


@pytest.fixture(scope="module")
def hist(world: Cube) -> PixelHistory:
    return PixelHistory.from_cube(world)


@pytest.fixture(scope="module")
def sums(world: Cube) -> DriverSums:
    return DriverSums(world)


@pytest.fixture(scope="module")
def trees(world: Cube) -> TreeForecaster:
    x, y = forecast_rows([world], pixels_per_date=48, seed=0,
                         period=("2021-01-01", "2021-12-31"))
    return TreeForecaster(max_iter=60).fit(x, y)


def _all_pixels(hist: PixelHistory) -> tuple[np.ndarray, np.ndarray]:
    h, w = hist.shape
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return rr.ravel(), cc.ravel()


def _truth_ndvi(world: Cube, j: int) -> np.ndarray:
    t = np.asarray(world.truth.isel(time=j).values)
    return ndvi(t, schema.BANDS, axis=0).ravel()


def _forecast_pairs(hist: PixelHistory, year: int = 2022) -> list[tuple[int, int, int]]:
    """(origin index, target index, k) pairs of the growing season of ``year``."""
    out = []
    for i, t in enumerate(hist.times):
        if t.year != year or not 4 <= t.month <= 9:
            continue
        for j in range(i + 1, len(hist.times)):
            k = int((hist.times[j] - t).days)
            if k in (5, 10, 20, 30, 45):
                out.append((i, j, k))
    return out


def test_history_indices_match_a_loop(hist: PixelHistory) -> None:
    r, c = 5, 7
    valid = hist.valid[:, r, c]
    for i in range(len(hist.times)):
        clear = np.flatnonzero(valid[: i + 1])
        assert hist.last[i, r, c] == (clear[-1] if len(clear) else -1)
        after = np.flatnonzero(valid[i + 1:])
        assert hist.after[i, r, c] == (i + 1 + after[0] if len(after) else len(valid))


def test_persistence_and_trees_beat_a_constant(world: Cube, hist: PixelHistory,
                                               sums: DriverSums, trees: TreeForecaster) -> None:
    r, c = _all_pixels(hist)
    const = float(np.nanmean(hist.ndvi[hist.times.year == 2021]))
    err = {"persistence": [], "trees": [], "constant": []}
    for i, j, k in _forecast_pairs(hist)[:40]:
        truth = _truth_ndvi(world, j)
        _, p_nd = persistence(hist, i, r, c)
        _, t_nd = trees.predict(hist, sums, i, k, r, c)
        ok = np.isfinite(p_nd) & np.isfinite(t_nd)
        err["persistence"].append(np.mean(np.abs(p_nd[ok] - truth[ok])))
        err["trees"].append(np.mean(np.abs(t_nd[ok] - truth[ok])))
        err["constant"].append(np.mean(np.abs(const - truth[ok])))
    mean = {key: float(np.mean(v)) for key, v in err.items()}
    assert mean["persistence"] < mean["constant"]
    assert mean["trees"] < mean["constant"]


def test_climatology_and_interpolation_beat_a_constant(world: Cube, hist: PixelHistory) -> None:
    r, c = _all_pixels(hist)
    const = float(np.nanmean(hist.ndvi))
    err = {"climatology": [], "linear": [], "constant": []}
    for j, t in enumerate(hist.times):
        if t.year != 2022 or not 4 <= t.month <= 10 or j == len(hist.times) - 1:
            continue
        truth = _truth_ndvi(world, j)
        _, c_nd = climatology(hist, t, r, c)
        _, l_nd = linear_fill(hist, j, r, c)
        ok = np.isfinite(c_nd) & np.isfinite(l_nd)
        err["climatology"].append(np.mean(np.abs(c_nd[ok] - truth[ok])))
        err["linear"].append(np.mean(np.abs(l_nd[ok] - truth[ok])))
        err["constant"].append(np.mean(np.abs(const - truth[ok])))
    mean = {key: float(np.mean(v)) for key, v in err.items()}
    assert mean["climatology"] < mean["constant"]
    assert mean["linear"] < mean["constant"]


def test_linear_fill_leaves_the_held_out_date_out(hist: PixelHistory) -> None:
    r, c = _all_pixels(hist)
    j = int(np.argmax(hist.valid.mean((1, 2)) * (hist.times.year == 2022)))
    refl, _ = linear_fill(hist, j, r, c)
    observed = hist.refl[j].reshape(len(schema.BANDS), -1).T
    ok = hist.valid[j].ravel()
    assert ok.any() and not np.allclose(refl[ok], observed[ok])


def test_forests_beat_a_constant(world: Cube, hist: PixelHistory, sums: DriverSums) -> None:
    from kgvsf_explore.evaluation.peers.forest import crop_of_year
    from kgvsf_explore.tasks.crop_type import f1_scores
    from kgvsf_explore.tasks.soil_moisture import r2_rmse

    split = make_split(world)
    test = split.pixels("test")
    crop = crop_of_year(world.ds, 2022)
    forest = CropForest(n_estimators=40).fit(world, split, hist)
    pred = forest.predict_map(hist, 2022)
    n_cls = len(schema.CROP_CLASSES)
    f1, _ = f1_scores(crop[test], pred[test], n_cls)
    majority = np.bincount(crop[split.pixels("finetune")]).argmax()
    f1_const, _ = f1_scores(crop[test], np.full(test.sum(), majority), n_cls)
    assert f1 > f1_const + 0.2

    smf = SoilMoistureForest(n_estimators=30).fit(world, split, hist, sums)
    rr, cc = np.nonzero(test)
    sm = world.soil_moisture
    scores = []
    for t in [d for d in hist.times if d.year == 2022][5:40:5]:
        day = int((t - pd.Timestamp("1970-01-01")).days)
        truth = np.asarray(sm.sel(day=t).values)[rr, cc]
        r2, _ = r2_rmse(truth, smf.predict(hist, sums, day, rr, cc))
        scores.append(r2)
    assert np.mean(scores) > 0.0  # a constant has R^2 <= 0


def _perturbed(world: Cube) -> Cube:
    """The same cube with soil moisture, the truth bands and the labels scrambled."""
    ds = world.ds.copy(deep=True)
    rng = np.random.default_rng(0)
    ds[schema.SOIL_MOISTURE] = ds[schema.SOIL_MOISTURE] * 0 + rng.random(
        ds[schema.SOIL_MOISTURE].shape).astype("float32")
    for b in schema.BANDS:
        name = schema.truth_name(b)
        ds[name] = ds[name] * 0 + rng.random(ds[name].shape).astype("float32")
    for name in (schema.CROP_TYPE, schema.FIELD_ID, schema.SOIL_TYPE):
        ds[name] = ds[name].copy(data=rng.permutation(ds[name].values.ravel()).reshape(
            ds[name].shape))
    return Cube(ds)


def test_no_peer_reads_soil_moisture_truth_or_labels(world: Cube, trees: TreeForecaster
                                                     ) -> None:
    other = _perturbed(world)
    h1, h2 = PixelHistory.from_cube(world), PixelHistory.from_cube(other)
    s1, s2 = DriverSums(world), DriverSums(other)
    r, c = _all_pixels(h1)
    i, _, k = _forecast_pairs(h1)[3]
    day = int(h1.days[i])
    t = h1.times[i]
    for f in (lambda h, s: forecast_features(h, s, i, k, r, c)[0],
              lambda h, s: trees.predict(h, s, i, k, r, c)[1],
              lambda h, s: persistence(h, i, r, c)[0],
              lambda h, s: climatology(h, t, r, c)[0],
              lambda h, s: linear_fill(h, i, r, c)[0],
              lambda h, s: CropForest.features(h, 2022, r, c),
              lambda h, s: SoilMoistureForest.features(h, s, day, r, c)):
        np.testing.assert_array_equal(f(h1, s1), f(h2, s2))
    assert not any(n.startswith(("sm", "soil")) or "true" in n for n in FEATURE_NAMES)


def test_scenario_reaches_the_trees_through_the_drivers(world: Cube, hist: PixelHistory,
                                                        sums: DriverSums,
                                                        trees: TreeForecaster) -> None:
    from kgvsf_explore import Scenario

    r, c = _all_pixels(hist)
    i = int(np.searchsorted(hist.times.values, np.datetime64("2022-07-01")))
    t = hist.times[i]
    a = (t + pd.Timedelta(days=1)).date()
    b = (t + pd.Timedelta(days=30)).date()
    dry = Scenario.parse(f"prcp =0 from {a} to {b}", f"tmax +4 from {a} to {b}")
    x0, _ = forecast_features(hist, sums, i, 30, r, c)
    x1, _ = forecast_features(hist, DriverSums(world, dry, block=sums.block), i, 30, r, c)
    fut_rain = FEATURE_NAMES.index("future_rain")
    past_rain = FEATURE_NAMES.index("past_rain")
    assert (x1[:, fut_rain] == 0).all() and (x0[:, fut_rain] > 0).any()
    np.testing.assert_array_equal(x0[:, past_rain], x1[:, past_rain])
    tmax = FEATURE_NAMES.index("future_tmax")
    np.testing.assert_allclose(x1[:, tmax] - x0[:, tmax], 4.0, atol=1e-3)
