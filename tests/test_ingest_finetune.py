"""``kgvsf finetune``: the shipped weights continue pretraining on a user's cube."""

from __future__ import annotations

import json
from pathlib import Path

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
                      progress=False)
    assert result.steps == 2 and (out / "model.safetensors").is_file()
    assert weights_sha256(out) != weights_sha256(default_weights())  # trained on
    record = json.loads((out / "training_data.json").read_text())
    assert record["adapted_on"]["path"] == str(small_cube)
    assert record["adapted_from"]["sha256"] == weights_sha256(default_weights())
    assert "adapted from kgvsf-small" in record["description"]
    kx.Forecaster.from_pretrained(out)  # loads for forecasts


def test_finetune_one_year_cube_refused(small_cube: Path, tmp_path: Path, capsys) -> None:
    one = tmp_path / "one.zarr"
    kx.open_cube(small_cube).sel_time("2022-01-01", None).to_zarr(one)
    rc = main(["finetune", "--cube", str(one), "--out", str(tmp_path / "x"), "--steps", "2",
               "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "only cover 2022" in err and "at least two calendar years" in err
