"""Forecast intervals: conformal quantiles, calibration, JSON, weights check, CLI, scorecard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from kgvsf_explore.cli import main
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.evaluation.scorecard.forecast import model_forecasts
from kgvsf_explore.evaluation.scorecard.intervals import find_calibration, interval_rows
from kgvsf_explore.forecaster import Forecaster
from kgvsf_explore.inference.intervals import (
    AGE_CLASSES,
    FILENAME,
    Calibration,
    IntervalsError,
    IntervalsMismatchError,
    age_class,
    beyond_interval,
    calibration_cases,
    conformal_quantile,
    default_level_names,
)
from kgvsf_explore.models import KGVSF, PRESETS
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.weights import default_weights
from kgvsf_explore.world import make_world

SHA = "feed" * 16


@pytest.fixture(scope="module")
def cube() -> Cube:
    ds, fields = make_world(seed=37, size="tiny")
    return Cube(ds.load(), fields=fields)


@pytest.fixture(scope="module")
def fc() -> Forecaster:
    torch.manual_seed(0)
    return Forecaster(KGVSF(PRESETS["tiny"].model, "kgvsf").eval(), weights_id=SHA)


@pytest.fixture(scope="module")
def cal(fc: Forecaster, cube: Cube) -> Calibration:
    return fc.calibrate(cube, n_cases=48, seed=0, source={"cube": "tiny world 37", "seed": 37,
                                                           "size": "tiny"})


def test_conformal_quantile_is_the_finite_sample_rank() -> None:
    v = np.arange(1.0, 10.0)  # n = 9: ranks ceil(0.9 * 10) = 9, floor(0.1 * 10) = 1
    assert conformal_quantile(v, 0.9) == 9.0
    assert conformal_quantile(v, 0.1) == 1.0
    assert conformal_quantile(v, 0.75) == 8.0  # ceil(7.5)
    assert conformal_quantile(v[:3], 0.9) == math.inf  # too few values for the rank
    assert conformal_quantile(v[:3], 0.1) == -math.inf
    assert default_level_names(0.8) == (0.1, 0.9, "q10", "q90")
    assert default_level_names(0.9)[2:] == ("q05", "q95")
    with pytest.raises(IntervalsError, match="between 0 and 1"):
        default_level_names(80)


def test_synthetic_exchangeable_residuals_are_covered_near_the_level() -> None:
    rng = np.random.default_rng(3)
    calib = rng.standard_t(4, 2000) * 0.05 + 0.02  # heavy tails, a bias
    test = rng.standard_t(4, 50_000) * 0.05 + 0.02
    lo, hi = conformal_quantile(calib, 0.1), conformal_quantile(calib, 0.9)
    cover = np.mean((test >= lo) & (test <= hi))
    assert 0.77 <= cover <= 0.83
    assert lo < 0.02 < hi


def test_age_classes() -> None:
    got = age_class(np.array([0, 1, 10, 11, 30, 31, 400, 10**6]))
    assert [AGE_CLASSES[i][0] for i in got] == ["0", "1-10", "1-10", "11-30", "11-30", "31+",
                                                "31+", "31+"]


def test_calibration_groups_and_fallback(cal: Calibration) -> None:
    assert cal.weights_sha256 == SHA
    assert set(cal.variables) == {*PRESETS["tiny"].model.bands, "ndvi"}
    coarse = [g for g in cal.groups if g["bin"] == "*"]
    assert len(coarse) == len(cal.variables)
    assert all(g["n_cases"] <= 48 for g in cal.groups)
    for g in cal.groups:  # quantiles rise with the probability
        q = [(-math.inf if v is None and p < 0.5 else math.inf if v is None else v)
             for p, v in zip(cal.probabilities, g["q"])]
        assert q == sorted(q)
    # a group with fewer cases than min_cases gives way to a coarser one
    small = [g for g in cal.groups if g["age"] != "*" and g["n_cases"] < cal.min_cases]
    assert small, "48 cases over 5 bins x 2 seasons x 4 ages leave some groups small"
    g = small[0]
    used = cal.group(g["variable"], g["bin"], g["season"], g["age"])
    assert used is not g and used["n_cases"] >= min(cal.min_cases, used["n_cases"])
    assert cal.group("nope", "0-10", "growing", "0") is None


def test_forecast_with_interval_is_ordered_and_marked(fc: Forecaster, cube: Cube,
                                                      cal: Calibration) -> None:
    dry = Scenario.parse("prcp =0", name="dry")
    out = fc.forecast(cube, None, "2022-07-03", (5, 25, 50), [None, dry], progress=False,
                      interval=0.8)
    for var in ("reflectance", "ndvi"):
        lo, hi, mid = out[f"{var}_q10"], out[f"{var}_q90"], out[var]
        assert lo.dims == mid.dims and hi.dims == mid.dims
        assert bool((lo <= hi).all())
        assert lo.attrs["interval_level"] == 0.8
        assert "tiny world 37" in lo.attrs["interval_calibration"]
    assert bool((out["reflectance_q10"] >= 0).all())
    assert float(np.abs(out["ndvi_q90"]).max()) <= 1
    # wider at longer horizons on average (errors grow with k)
    w = (out["ndvi_q90"] - out["ndvi_q10"]).sel(scenario="observed").mean(["y", "x"])
    assert float(w.sel(horizon=50)) >= float(w.sel(horizon=5)) - 1e-6
    # a lazy forecast gets lazy bounds with the same numbers
    lazy = fc.forecast(cube, None, "2022-07-03", (5, 25, 50), [None, dry], progress=False,
                       interval=0.8, chunks=32)
    assert lazy["ndvi_q90"].chunks is not None
    xr.testing.assert_allclose(lazy["ndvi_q90"].compute(), out["ndvi_q90"], atol=1e-6)
    xr.testing.assert_allclose(lazy["reflectance_q10"].compute(), out["reflectance_q10"],
                               atol=1e-6)
    flag = beyond_interval(out)
    assert flag.dims[0] == "scenario" and list(flag.scenario.values) == ["dry"]
    assert flag.dtype == bool
    with pytest.raises(IntervalsError, match="scenario"):
        beyond_interval(out.sel(scenario="observed"))
    with pytest.raises(IntervalsError, match="probabilities|quantiles"):
        fc.forecast(cube, None, "2022-07-03", (5,), progress=False, interval=0.6)


def test_held_out_cases_are_covered_near_the_level(fc: Forecaster, cube: Cube,
                                                   cal: Calibration) -> None:
    # other cases of the same world (another draw): exchangeable with the calibration cases
    cases = calibration_cases(cube, fc.cfg, 48, seed=1)
    preds = model_forecasts(fc.model, cases)
    rows = interval_rows(cases, preds, cal, tuple(fc.cfg.bands), "kgvsf")
    cov = {(r.metric, r.bin): r.value for r in rows}
    assert 0.65 <= cov[("coverage80_ndvi_all_year", "all")] <= 0.95
    assert 0.65 <= cov[("coverage80_reflectance_all_year", "all")] <= 0.95
    assert cov[("width80_ndvi_all_year", "all")] > 0


def test_json_round_trip_and_atomic_write(cal: Calibration, tmp_path: Path,
                                          monkeypatch) -> None:
    path = cal.save(tmp_path)
    assert path == tmp_path / FILENAME
    assert not [p for p in tmp_path.iterdir() if p != path]  # no temp file left behind
    d = json.loads(path.read_text())
    assert d["format"] == "kgvsf-intervals" and d["weights_sha256"] == SHA
    assert d["levels"] == [0.5, 0.8, 0.9]
    assert d["source"]["n_cases"] == 48 and d["source"]["seed"] == 37
    back = Calibration.load(tmp_path)
    assert back.groups == cal.groups and back.probabilities == cal.probabilities
    assert back.offsets("ndvi", "10-20", "growing", "0", 0.9) == \
        cal.offsets("ndvi", "10-20", "growing", "0", 0.9)
    # a write that fails half-way keeps the previous file whole and leaves no temp file
    before = path.read_text()
    changed = Calibration(SHA, cal.probabilities, cal.groups[:1], cal.source)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("kgvsf_explore._atomic.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        changed.save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == [FILENAME]


def test_bad_files_and_other_weights_are_refused(fc: Forecaster, cal: Calibration,
                                                 tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(IntervalsError, match="not valid JSON"):
        Calibration.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"a": 1}')
    with pytest.raises(IntervalsError, match="not a kgvsf intervals file"):
        Calibration.load(tmp_path / "y.json")
    with pytest.raises(IntervalsError, match="kgvsf calibrate"):
        Calibration.load(tmp_path / "missing")
    other = Calibration("0" * 64, cal.probabilities, cal.groups, cal.source)
    other.save(tmp_path / "other.json")
    with pytest.raises(IntervalsMismatchError, match="calibrate them again"):
        fc.load_intervals(tmp_path / "other.json")
    fresh = Forecaster(fc.model, weights_id="1" * 64)
    with pytest.raises(IntervalsError, match="no interval calibration"):
        fresh.forecast(Cube(make_world(seed=37, size="tiny")[0]), None, "2022-07-03", (5,),
                       progress=False, interval=0.8)
    # the scorecard refuses a calibration made on the world it scores
    cal.save(tmp_path / "mine.json")
    got, why = find_calibration(tmp_path / "mine.json", tmp_path, SHA,
                                {"seed": 37, "size": "tiny"})
    assert got is None and "world being scored" in why
    got, why = find_calibration(tmp_path / "mine.json", tmp_path, SHA,
                                {"seed": 38, "size": "tiny"})
    assert got is not None and why is None


def test_shipped_calibration_matches_the_shipped_weights() -> None:
    from kgvsf_explore.training.checkpoint import weights_sha256

    path = default_weights() / FILENAME
    assert path.is_file(), "ship intervals.json beside the weights (kgvsf calibrate)"
    shipped = Calibration.load(path)
    cmd = shipped.source.get("command", "")
    assert shipped.weights_sha256 == weights_sha256(default_weights()), (
        f"intervals.json is stale for the shipped weights: run `{cmd}` again")
    assert not set(shipped.source["seed"]) & {101, 102, 103, 5151, 42, 2031}  # trained, scored
    fc = Forecaster.from_pretrained(device="cpu")  # finds it by itself
    assert fc.intervals.weights_sha256 == fc.weights_id


def test_cli_calibrate_then_forecast_with_interval(tmp_path: Path, capsys) -> None:
    assert main(["calibrate", "--seed", "38", "--world-size", "tiny", "--cases", "24",
                 "--out", str(tmp_path / "cal")]) == 0
    assert "24 cases" in capsys.readouterr().out
    cal = Calibration.load(tmp_path / "cal")
    assert cal.source["seed"] == [38] and "kgvsf calibrate --seed 38" in cal.source["command"]
    assert main(["make-sample", "--seed", "39", "--size", "tiny", "--out",
                 str(tmp_path / "c"), "--quiet"]) == 0
    assert main(["forecast", "--cube", str(tmp_path / "c"), "--start", "2022-07-03",
                 "--horizons", "10", "--interval", "0.8", "--intervals", str(tmp_path / "cal"),
                 "--out", str(tmp_path / "f.zarr"), "--quiet"]) == 0
    out = xr.open_zarr(tmp_path / "f.zarr", consolidated=False)
    assert {"ndvi_q10", "ndvi_q90", "reflectance_q10", "reflectance_q90"} <= set(out)
    assert bool((out["ndvi_q10"] <= out["ndvi_q90"]).all())
    assert main(["forecast", "--cube", str(tmp_path / "c"), "--start", "2022-07-03",
                 "--horizons", "10", "--interval", "80", "--out", str(tmp_path / "g.zarr"),
                 "--quiet"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "g.zarr").exists()
    # both of --cube / --seed, or neither, is a clear error
    assert main(["calibrate", "--out", str(tmp_path / "x")]) == 2
    assert "exactly one of" in capsys.readouterr().err
    # a world the weights were trained on is refused
    assert main(["calibrate", "--seed", "101", "--out", str(tmp_path / "x")]) == 2
    assert "trained on" in capsys.readouterr().err


def test_scorecard_scores_coverage_or_says_why_not(cal: Calibration, tmp_path: Path) -> None:
    from kgvsf_explore.evaluation.scorecard import evaluate_weights

    world = Cube(make_world(seed=41, size="tiny")[0].load())
    card = evaluate_weights(world, tasks=["forecast"], peers=["persistence"], quick=True,
                            cache=None, quiet=True, train_on="cube")
    df = card.to_frame()
    cov = df[df["metric"] == "coverage80_ndvi_all_year"]
    assert "all" in set(cov["bin"]) and cov["value"].between(0, 1).all()
    assert (df[df["metric"] == "width80_ndvi_all_year"]["value"] > 0).all()
    assert card.meta["intervals"]["n_cases"] > 0 and "forecast intervals" not in card.skipped
    # a calibration made for other weights is not scored, and the card says why
    cal.save(tmp_path)  # made for the tiny test network, not the shipped weights
    card = evaluate_weights(world, tasks=["forecast"], peers=["persistence"], quick=True,
                            cache=None, quiet=True, train_on="cube", intervals=tmp_path)
    assert "calibrated for weights" in card.skipped["forecast intervals"]
    assert not card.to_frame()["metric"].str.startswith("coverage").any()
