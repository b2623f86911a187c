"""``kgvsf evaluate-weights``: every task and peer on a tiny world, the same cases for every
method, skipped tasks said so, and the written outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgvsf_explore import schema
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.evaluation.scorecard import PEERS, evaluate_weights
from kgvsf_explore.world import make_world

KEYS = {"task", "metric", "bin", "method", "value", "n_cases", "n_dates"}


@pytest.fixture(scope="module")
def world() -> Cube:
    return Cube(make_world(seed=62, size="tiny")[0].load())


@pytest.fixture(scope="module")
def card(world: Cube, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("scorecard")
    return evaluate_weights(world, out=out, quick=True, train_on="cube", cache=None,
                            quiet=True), out


def test_every_task_and_peer_is_scored(card) -> None:
    sc, _ = card
    df = sc.to_frame()
    assert not sc.skipped
    assert set(df["task"]) == {"forecast", "gapfill", "crop_type", "soil_moisture", "whatif"}
    assert {"kgvsf", *PEERS} <= set(df["method"])
    fill = df[(df["task"] == "gapfill") & (df["method"] == "kgvsf-fill")
              & (df["metric"] == "refl_mse_mean")]
    assert len(fill) == 1 and 0 < float(fill["value"].iloc[0]) < 0.05
    for task, metric in (("crop_type", "macro_f1"), ("soil_moisture", "r2")):
        season = df[(df["task"] == task) & (df["metric"] == metric)
                    & (df["method"] == "kgvsf-season-head")]
        assert len(season) == 1 and np.isfinite(float(season["value"].iloc[0]))
    assert np.isfinite(df["value"].astype(float)).mean() > 0.9
    fc = sc.table("forecast", "ndvi_mae_mean_all_year")
    assert {"kgvsf", "persistence", "climatology", "trees"} <= set(fc.columns)
    assert "all" in fc.index


def test_every_method_is_scored_on_the_same_cases(card) -> None:
    sc, _ = card
    err = sc.extra["forecast_errors"]
    per_method = err.groupby("method")["case"].apply(lambda s: tuple(sorted(s)))
    assert per_method.nunique() == 1 and len(per_method) >= 4
    pixels = err.groupby("case")["pixels"].nunique()
    assert (pixels == 1).all()  # one pixel set per case, shared by every method
    gaps = sc.extra["gapfill_errors"].groupby("method")["date"].apply(lambda s: tuple(sorted(s)))
    assert gaps.nunique() == 1
    df = sc.to_frame()
    for task in ("crop_type", "soil_moisture"):
        rows = df[df["task"] == task]
        assert rows.groupby("method")["n_cases"].first().nunique() == 1


def test_outputs_are_written(card) -> None:
    sc, out = card
    rows = json.loads((Path(out) / "results.json").read_text())
    assert rows and all(set(r) == KEYS for r in rows)
    report = (Path(out) / "report.md").read_text()
    for title in ("## Forecast", "## Gap filling", "## Crop type", "## Soil moisture",
                  "## What-if", "growing season"):
        assert title in report
    assert (Path(out) / "forecast_by_horizon.png").stat().st_size > 1000
    assert json.loads((Path(out) / "meta.json").read_text())["test_period"][0].startswith("2022")


def test_tasks_without_their_truth_are_skipped_with_a_reason(world: Cube) -> None:
    ds = world.ds.drop_vars([schema.SOIL_MOISTURE, schema.CROP_TYPE, schema.FIELD_ID])
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("kgvsf_seed", "kgvsf_size")}
    sc = evaluate_weights(Cube(ds), tasks=("crop_type", "soil_moisture", "whatif"), quick=True,
                          train_on="cube", cache=None, quiet=True)
    assert set(sc.skipped) == {"crop_type", "soil_moisture", "whatif"}
    assert "simulator" in sc.skipped["whatif"] and "labels" in sc.skipped["crop_type"]
    assert not sc.rows


def test_bad_task_names_are_refused(world: Cube) -> None:
    from kgvsf_explore.errors import KGVSFError

    with pytest.raises(KGVSFError, match="unknown task or peer"):
        evaluate_weights(world, tasks=("forecasts",), quiet=True)


@pytest.fixture(scope="module")
def user_cube_run(world: Cube, tmp_path_factory: pytest.TempPathFactory):
    """One ``kgvsf evaluate-weights --cube`` run (forecast and gap filling) on the world
    written without its truth bands and sample-world attrs, as a user's cube would be; the
    command's :class:`Scorecard` is kept (a spy on ``evaluate_weights``) for the tests that
    read it."""
    from kgvsf_explore.cli import main
    from kgvsf_explore.evaluation import scorecard

    ds = world.ds.drop_vars([schema.truth_name(b) for b in schema.BANDS])
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("kgvsf_seed", "kgvsf_size")}
    folder = tmp_path_factory.mktemp("user_cube")
    cube_path = Cube(ds).to_zarr(folder / "cube.zarr")
    out, card = folder / "sc", folder / "CARD.md"
    cards = []

    def keep(*args, **kwargs):
        cards.append(evaluate_weights(*args, **kwargs))
        return cards[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scorecard, "evaluate_weights", keep)
        rc = main(["evaluate-weights", "--cube", str(cube_path), "--quick", "--train-on",
                   "cube", "--tasks", "forecast,gapfill", "--out", str(out), "--cache",
                   str(folder / "cache"), "--card", str(card), "--quiet"])
    assert len(cards) == 1
    return rc, cube_path, out, card, cards[0]


def test_the_command_line_writes_the_results(user_cube_run) -> None:
    rc, cube_path, out, card, _ = user_cube_run
    assert rc == 0
    rows = json.loads((out / "results.json").read_text())
    assert {r["task"] for r in rows} == {"forecast", "gapfill"}
    text = card.read_text()
    assert "## Scorecard" in text and f"--cube {cube_path}" in text and "## Training" in text


def test_a_cube_without_truth_is_scored_on_its_observed_images(user_cube_run) -> None:
    sc = user_cube_run[-1]
    assert not sc.skipped
    assert sc.meta["trees_trained_on"].startswith("this cube")
    err = sc.extra["forecast_errors"]
    assert len(err) and np.isfinite(err["refl_mse"]).all()
    assert len(sc.extra["gapfill_errors"])
