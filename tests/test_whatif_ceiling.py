"""The what-if ceiling script: its rows are what-ifs and its scores are the scorecard's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from kgvsf_explore.evaluation.peers.features import FEATURE_NAMES
from kgvsf_explore.schema import DRIVERS

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "whatif_ceiling.py"


@pytest.fixture(scope="module")
def ceiling():
    spec = importlib.util.spec_from_file_location("whatif_ceiling", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rows(ceiling):
    parts = ceiling.training_rows(11, 2, np.random.default_rng(0), pixels=40, size="tiny")
    return [p for p in parts if p is not None]


def test_rows_hold_other_weather_ahead_and_the_true_change(rows):
    assert rows, "no variant of the tiny world gave a what-if row"
    x, y = rows[0]
    nf, nd = len(FEATURE_NAMES), len(DRIVERS)
    assert x.shape == (len(y), nf + 2 * nd + 2)
    assert np.isfinite(y).all() and np.abs(y).max() > 0
    # the variant's drivers over (t, t+k] (features) against the observed ones (extra columns)
    scen_future = x[:, FEATURE_NAMES.index(f"future_{DRIVERS[0]}"):][:, :nd]
    base_future = x[:, nf:nf + nd]
    assert np.nanmax(np.abs(scen_future - base_future)) > 0
    # soil texture and crop code are whole numbers of the world's legends
    assert set(np.unique(x[:, -2])) <= {0.0, 1.0, 2.0}


def test_score_gives_the_scorecard_metrics(ceiling, rows):
    from sklearn.dummy import DummyRegressor

    x = np.concatenate([r[0] for r in rows])
    y = np.concatenate([r[1] for r in rows])
    keep = np.arange(x.shape[1] - 2)
    model = DummyRegressor(strategy="constant", constant=0.0).fit(x[:, keep], y)
    scores, per_crop = ceiling.score(model, 12, keep, size="tiny")
    assert set(scores) == {"rain-50%-30d", "heat+3C-14d", "wet-x2-30d"}
    for s in scores.values():
        # predicting zero is "no change": same RMSE
        assert s["rmse"] == pytest.approx(s["no_change_rmse"], rel=1e-5)
    assert {r["crop_type"] for r in per_crop} >= {"corn", "soybean"}
