"""The kgvsf command line on tiny worlds and the shipped sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import kgvsf_explore as kx
from kgvsf_explore.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "data_samples" / "scenarios"


def test_make_sample_with_scenario_gives_the_counterfactual(tmp_path: Path, capsys) -> None:
    assert main(["make-sample", "--seed", "9", "--size", "tiny", "--out",
                 str(tmp_path / "base"), "--quiet"]) == 0
    assert main(["make-sample", "--seed", "9", "--size", "tiny", "--out",
                 str(tmp_path / "warm"), "--quiet",
                 "--scenario", str(SCENARIOS / "warming_2c.json")]) == 0
    assert "wrote sample world seed=9" in capsys.readouterr().out
    base = kx.open_cube(tmp_path / "base")
    warm = kx.open_cube(tmp_path / "warm")
    np.testing.assert_allclose(warm.ds["tmax"], base.ds["tmax"] + 2.0, atol=1e-4)
    xr.testing.assert_equal(warm.ds["field_id"], base.ds["field_id"])
    assert json.loads(warm.ds.attrs["kgvsf_scenario"])["name"] == "warming_2c"
    assert (tmp_path / "warm" / "scenario.json").is_file()
    assert len(warm.fields) == len(base.fields)


def test_make_sample_refuses_to_overwrite_and_says_how(tmp_path: Path, capsys) -> None:
    out = tmp_path / "w"
    assert main(["make-sample", "--seed", "1", "--size", "tiny", "--out", str(out),
                 "--quiet"]) == 0
    assert main(["make-sample", "--seed", "2", "--size", "tiny", "--out", str(out),
                 "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_info_and_whatif(tmp_path: Path, capsys) -> None:
    main(["make-sample", "--seed", "4", "--size", "tiny", "--out", str(tmp_path / "c"),
          "--quiet"])
    assert main(["info", str(tmp_path / "c")]) == 0
    assert "EPSG:32615" in capsys.readouterr().out
    assert main(["whatif", "--cube", str(tmp_path / "c"), "--scenario",
                 str(SCENARIOS / "drought_july_heat.json"), "--start", "2022-06-15",
                 "--end", "2022-09-30", "--out", str(tmp_path / "w")]) == 0
    table = (tmp_path / "w" / "true_effect_by_crop.csv").read_text()
    assert "corn" in table and (tmp_path / "w" / "true_effect.png").stat().st_size > 10_000


def test_bad_arguments_exit_with_usage() -> None:
    with pytest.raises(SystemExit):
        main(["make-sample", "--seed", "1", "--out", "x", "--size", "huge"])


def test_shipped_sample_opens_and_validates() -> None:
    cube = kx.open_cube(kx.sample_path())
    assert cube.ds.attrs["kgvsf_seed"] == 42
    assert cube.shape["y"] == cube.shape["x"] == 128
    assert set(cube.fields.crop_type) == set(kx.schema.CROP_CLASSES.values())


def test_pretrain_then_forecast_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "w"
    assert main(["pretrain", "--objective", "kgvsf", "--preset", "tiny", "--worlds", "13",
                 "--world-size", "tiny", "--out", str(out), "--quiet"]) == 0
    assert (out / "model.safetensors").is_file() and (out / "training_data.json").is_file()
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) >= 3
    main(["make-sample", "--seed", "14", "--size", "tiny", "--out", str(tmp_path / "c"),
          "--quiet"])
    assert main(["forecast", "--cube", str(tmp_path / "c"), "--weights", str(out), "--start",
                 "2022-05-01", "--horizons", "3,33", "--out", str(tmp_path / "f.zarr"),
                 "--quiet"]) == 0
    f = xr.open_zarr(tmp_path / "f.zarr", consolidated=False)
    assert list(f.horizon.values) == [3, 33] and bool(np.isfinite(f.ndvi).all())


def test_pretrain_steps_keeps_the_phase_split(tmp_path: Path) -> None:
    import json

    out = tmp_path / "w"
    assert main(["pretrain", "--preset", "tiny", "--worlds", "13", "--world-size", "tiny",
                 "--steps", "10", "--patience", "0", "--out", str(out), "--quiet"]) == 0
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["patience"] == 0  # never stops early
    from kgvsf_explore.models import PRESETS

    tiny = PRESETS["tiny"].train
    assert train["phase1_steps"] + train["phase2_steps"] == 10
    want = round(10 * tiny.phase1_steps / (tiny.phase1_steps + tiny.phase2_steps))
    assert train["phase1_steps"] == want
    data = json.loads((out / "training_data.json").read_text())
    assert data["worlds"] == {"seeds": [13], "size": "tiny"}
    assert "10 steps" in data["description"]
    with pytest.raises(SystemExit):
        main(["pretrain", "--preset", "tiny", "--worlds", "13", "--patience", "-1",
              "--out", str(tmp_path / "x"), "--quiet"])


def test_pretrain_stream_reads_cubes_from_disk(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from kgvsf_explore.training import loop

    seen: list[list[bool]] = []
    real = loop.make_loaders

    def spy(*args, **kwargs):
        stream, val = real(*args, **kwargs)
        seen.append([getattr(s, "sampler", None) is not None and not s.sampler._in_memory
                     for s in stream.sources])
        return stream, val

    monkeypatch.setattr(loop, "make_loaders", spy)
    main(["make-sample", "--seed", "14", "--size", "tiny", "--out", str(tmp_path / "c"),
          "--quiet"])
    out = tmp_path / "w"
    assert main(["pretrain", "--preset", "tiny", "--cube", str(tmp_path / "c"), "--stream",
                 "--steps", "4", "--out", str(out), "--quiet"]) == 0
    assert seen and all(seen[0])  # every training source reads the store in blocks
    data = json.loads((out / "training_data.json").read_text())
    assert "cubes read from disk in blocks" in data["description"]
