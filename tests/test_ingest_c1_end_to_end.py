"""A folder of Landsat Collection 1 SR GeoTIFFs with Fmask files and a station CSV with only
``date, tmin, tmax, prcp`` go through ``kgvsf ingest``, ``finetune`` and ``forecast`` with no
manual step; the cube says which drivers were derived."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import kgvsf_explore as kx
from kgvsf_explore import schema
from kgvsf_explore.cli import main
from kgvsf_explore.ingest.fakes import write_user_files


@pytest.fixture(scope="module")
def c1_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sample = kx.open_cube(kx.sample_path())
    part = kx.open_cube(sample.ds.isel(y=slice(0, 32), x=slice(0, 32)))
    folder = tmp_path_factory.mktemp("c1")
    return write_user_files(part, folder, sensor="landsat_c1", start="2021-06-01",
                            weather="minimal")


def test_c1_folder_and_minimal_station_to_forecast(c1_files: dict[str, Path], tmp_path: Path,
                                                   capsys) -> None:
    header = pd.read_csv(c1_files["weather"], nrows=1).columns.tolist()
    assert header == ["date", "tmin", "tmax", "prcp"]
    assert any(p.name.endswith("_fmask.tif") for p in c1_files["images"].iterdir())
    cube_path = tmp_path / "c1.zarr"
    rc = main(["ingest", "--images", str(c1_files["images"]), "--weather",
               str(c1_files["weather"]), "--out", str(cube_path), "--quiet"])
    assert rc == 0
    captured = capsys.readouterr()
    printed = captured.out
    # the command prints each warning as one line
    assert any("kgvsf: warning:" in line and "estimated" in line
               for line in captured.err.splitlines())
    assert "reflectance x0.0001 +0 (Landsat Collection 1 SR: collection 01 in the name)" in (
        printed)
    assert "quality layers read as: fmask" in printed
    assert "weather ESTIMATED (not measured)" in printed and "Hargreaves" in printed

    cube = kx.open_cube(cube_path)
    estimated = json.loads(cube.ds.attrs["kgvsf_weather_estimated"])
    assert set(estimated) == {"srad", "vp", "swe"}
    assert "estimated" in cube.ds["srad"].attrs["kgvsf_derived"]
    assert schema.SURFACE_FLAG in cube.ds
    # the reflectance is the world's: C1 read with its own rule, not Collection 2's
    world = kx.open_cube(kx.sample_path()).ds.isel(y=slice(0, 32), x=slice(0, 32))
    b04 = world["B04"].sel(time=cube.ds.time).values
    got = cube.ds["B04"].values
    both = np.isfinite(b04) & np.isfinite(got)
    assert both.mean() > 0.3
    np.testing.assert_allclose(got[both], b04[both], atol=6e-5)
    flags = cube.ds[schema.SURFACE_FLAG].values
    np.testing.assert_array_equal(flags == 4, cube.ds[schema.CLOUD_MASK].values)

    capsys.readouterr()
    assert main(["info", str(cube_path)]) == 0
    info = capsys.readouterr().out
    assert "B04" in info and "valid" in info and "srad" in info and "estimated" in info

    adapted = tmp_path / "adapted"
    rc = main(["finetune", "--cube", str(cube_path), "--out", str(adapted), "--steps", "2",
               "--batch-size", "2", "--eval-every", "2", "--check-cases", "8", "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    held = json.loads((adapted / "training_data.json").read_text())["held_out_skill"]["adapted"]
    assert f"{held['date_pairs']} date pairs, {held['cases']} cases" in printed
    assert 1 <= held["forecast_dates"] <= held["date_pairs"] <= held["cases"]
    assert held["dates"] >= held["forecast_dates"]
    bins = held["by_horizon"].values()
    assert sum(b["cases"] for b in bins) == held["cases"]
    assert all(1 <= b["date_pairs"] <= b["cases"] for b in bins)
    assert (held["warning"] is not None) == (held["date_pairs"] < 10)
    assert ("WARNING: the held-out skill rests on" in printed) == (held["date_pairs"] < 10)

    out = tmp_path / "fc.zarr"
    rc = main(["forecast", "--cube", str(cube_path), "--weights", str(adapted), "--start",
               "2022-07-01", "--horizons", "15", "--out", str(out), "--quiet"])
    assert rc == 0
    fc = xr.open_zarr(out)
    assert np.isfinite(fc["ndvi"].values).mean() > 0.99
