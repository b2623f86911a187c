"""``kgvsf finetune``: the shipped weights continue pretraining on a user's cube."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kgvsf_explore as kx
from kgvsf_explore.cli import main
from kgvsf_explore.training.checkpoint import weights_sha256
from kgvsf_explore.weights import default_weights


@pytest.fixture(scope="module")
def small_cube(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cube = kx.open_cube(kx.sample_path())
    x0, _, _, y1 = cube.bounds
    path = tmp_path_factory.mktemp("ft") / "small.zarr"
    cube.sel_bbox(x0, y1 - 320, x0 + 320, y1).to_zarr(path)
    return path


def test_finetune_from_shipped_weights(small_cube: Path, tmp_path: Path, capsys) -> None:
    from kgvsf_explore.ingest.finetune import finetune

    out = tmp_path / "adapted"
    result = finetune(small_cube, out, steps=2, batch_size=2, eval_every=2, val_batches=1,
                      progress=False, check_cases=8)
    assert result.steps == 2 and (out / "model.safetensors").is_file()
    assert weights_sha256(out) != weights_sha256(default_weights())  # trained on
    record = json.loads((out / "training_data.json").read_text())
    assert record["adapted_on"]["path"] == str(small_cube)
    assert record["adapted_from"]["sha256"] == weights_sha256(default_weights())
    assert f"adapted from {default_weights().name}" in record["description"]
    kx.Forecaster.from_pretrained(out)  # loads for forecasts


def test_finetune_one_year_cube_holds_out_its_last_dates(small_cube: Path, tmp_path: Path,
                                                         capsys) -> None:
    """A single season of data finetunes: the last 30 % of its period is held out for
    validation (no sample crosses the cut), and the adapted model is scored against
    persistence on those dates."""
    from kgvsf_explore.training.data import split_years

    one_cube = kx.open_cube(small_cube).sel_time("2022-01-01", None)
    (train,), val, year = split_years(one_cube)
    assert year == 2022 and train.times[-1] < val.times[0]
    span = (one_cube.times[-1] - one_cube.times[0]).days
    assert abs((one_cube.times[-1] - val.times[0]).days - 0.3 * span) <= 10
    one = tmp_path / "one.zarr"
    one_cube.to_zarr(one)
    out = tmp_path / "x"
    rc = main(["finetune", "--cube", str(one), "--out", str(out), "--steps", "2",
               "--batch-size", "2", "--eval-every", "2", "--check-cases", "8", "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "held-out dates" in printed and "persistence" in printed
    check = json.loads((out / "training_data.json").read_text())["held_out_skill"]
    assert check["adapted"]["period"][0] == str(val.times[0].date())
    assert check["adapted"]["cases"] > 0 and np.isfinite(check["adapted"]["model_mse"])
    assert check["beats_persistence"] == (check["adapted"]["skill_vs_persistence"] > 0)
