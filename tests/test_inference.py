"""Region forecasts, the forecast CLI, and the evaluation helpers, on tiny worlds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from kgvsf_explore.cli import main
from kgvsf_explore.cube import Cube, open_cube
from kgvsf_explore.errors import KGVSFError
from kgvsf_explore.evaluation import forecast_skill, scenario_response
from kgvsf_explore.inference import forecast_region
from kgvsf_explore.models import KGVSF, PRESETS, TrainConfig
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.training import save_checkpoint
from kgvsf_explore.world import make_world, write_world

CFG = PRESETS["tiny"].model


@pytest.fixture(scope="module")
def cube() -> Cube:
    return Cube(make_world(seed=21, size="tiny")[0])


@pytest.fixture(scope="module")
def model() -> KGVSF:
    torch.manual_seed(0)
    return KGVSF(CFG, "kgvsf").eval()


def test_forecast_region_dims_coords_and_attrs(cube: Cube, model: KGVSF) -> None:
    out = forecast_region(model, cube, "2022-07-03", [5, 17, 60], progress=False)
    assert out["reflectance"].dims == ("horizon", "band", "y", "x")
    assert out.sizes == {"horizon": 3, "band": 7, "y": 32, "x": 32}
    np.testing.assert_array_equal(out.x, cube.ds.x)
    np.testing.assert_array_equal(out.y, cube.ds.y)
    t = pd.Timestamp(out.attrs["t"])
    assert t <= pd.Timestamp("2022-07-03") and t in pd.DatetimeIndex(cube.ds.time.values)
    assert list(pd.DatetimeIndex(out.time.values) - t) == [pd.Timedelta(days=d) for d in
                                                           (5, 17, 60)]
    assert "spatial_ref" in out and out.reflectance.attrs["grid_mapping"] == "spatial_ref"
    assert json.loads(out.attrs["scenarios"]) == [None]
    assert bool(np.isfinite(out.reflectance).all())
    assert float(out.ndvi.min()) >= -1 and float(out.ndvi.max()) <= 1


def test_scenarios_share_context_and_match_single_runs(cube: Cube, model: KGVSF) -> None:
    dry = Scenario.parse("prcp =0", "tmax +4", name="hot-dry")
    both = forecast_region(model, cube, "2022-07-03", [20], [None, dry], progress=False)
    assert list(both.scenario.values) == ["observed", "hot-dry"]
    alone = forecast_region(model, cube, "2022-07-03", [20], dry, progress=False)
    np.testing.assert_allclose(both.reflectance.sel(scenario="hot-dry"), alone.reflectance,
                               atol=1e-5)
    diff = both.ndvi.sel(scenario="hot-dry") - both.ndvi.sel(scenario="observed")
    assert float(np.abs(diff).max()) > 0  # the weather matters to KG-VSF


def test_subregion_and_bad_requests(cube: Cube, model: KGVSF) -> None:
    out = forecast_region(model, cube, "2022-07-03", [10], rows=slice(5, 12), cols=slice(0, 9),
                          progress=False)
    assert out.sizes["y"] == 7 and out.sizes["x"] == 9
    np.testing.assert_array_equal(out.x, cube.ds.x[0:9])
    with pytest.raises(KGVSFError, match="range"):
        forecast_region(model, cube, "2022-07-03", [90], progress=False)
    with pytest.raises(KGVSFError, match="no image on or before"):
        forecast_region(model, cube, "2019-01-01", [5], progress=False)
    with pytest.raises(KGVSFError, match="runs past the drivers"):
        forecast_region(model, cube, "2022-12-20", [30], progress=False)


def test_forecast_cli_writes_zarr(tmp_path: Path, model: KGVSF) -> None:
    world = write_world(tmp_path / "w", seed=21, size="tiny")
    ckpt = tmp_path / "ckpt"
    save_checkpoint(ckpt, model, CFG, TrainConfig(objective="kgvsf"), {"step": 0})
    scen = tmp_path / "dry.json"
    Scenario.parse("prcp x0", name="dry").to_json(scen)
    cube = open_cube(world)
    x0, y1 = float(cube.ds.x[2]), float(cube.ds.y[2])
    bbox = f"{x0 - 5},{y1 - 100},{x0 + 100},{y1 + 5}"
    rc = main(["forecast", "--cube", str(world), "--weights", str(ckpt), "--start",
               "2022-06-20", "--horizons", "5,15", "--bbox", bbox, "--scenario", str(scen),
               "--out", str(tmp_path / "f.zarr"), "--quiet"])
    assert rc == 0
    out = xr.open_zarr(tmp_path / "f.zarr", consolidated=False)
    assert out.reflectance.dims == ("horizon", "band", "y", "x")
    assert out.attrs["weights_sha256"] and json.loads(out.attrs["scenarios"])[0]["name"] == "dry"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".f.zarr")]

    # several scenarios, block by block through dask: same numbers as the in-memory store
    hot = tmp_path / "hot.json"
    Scenario.parse("tmax +3", name="hot").to_json(hot)
    args = ["forecast", "--cube", str(world), "--weights", str(ckpt), "--start", "2022-06-20",
            "--horizons", "5,15", "--scenario", str(scen), "--scenario", str(hot), "--quiet"]
    assert main(args + ["--out", str(tmp_path / "mem.zarr")]) == 0
    assert main(args + ["--chunks", "16", "--out", str(tmp_path / "blocks.zarr")]) == 0
    mem = xr.open_zarr(tmp_path / "mem.zarr", consolidated=False)
    blocks = xr.open_zarr(tmp_path / "blocks.zarr", consolidated=False)
    assert list(mem.scenario.values) == ["observed", "dry", "hot"]
    xr.testing.assert_allclose(mem.load(), blocks.load(), atol=1e-5)
    assert main(args + ["--horizons", "90", "--out", str(tmp_path / "bad.zarr")]) == 2
    assert not (tmp_path / "bad.zarr").exists()


def test_skill_table_and_scenario_response(cube: Cube, model: KGVSF) -> None:
    table = forecast_skill(model, cube, n_cases=12, progress=False)
    assert {"cases", "kgvsf", "persistence", "climatology", "skill_vs_persistence"} <= set(
        table.columns)
    assert (table[["kgvsf", "persistence", "climatology"]] >= 0).all().all()
    assert table["cases"].sum() <= 12
    resp = scenario_response(model, 21, size="tiny")
    assert resp["true_change"] < 0  # the simulator: drought lowers NDVI of rain-fed crops
    assert -1 <= resp["correlation"] <= 1 and 0 <= resp["same_sign_share"] <= 1


def test_forecast_vs_truth_table(model: KGVSF) -> None:
    from kgvsf_explore.evaluation import drought_scenario, forecast_vs_truth

    base, _ = make_world(seed=22, size="tiny")
    scen = drought_scenario(pd.Timestamp("2022-06-30"), 40)
    cf, _ = make_world(seed=22, size="tiny", scenario=scen)
    table = forecast_vs_truth(model, base, cf, scen, "2022-06-30", horizons=(10, 40))
    assert {"true_change", "forecast_change", "date"} <= set(table.columns)
    assert set(table.index.get_level_values("k")) <= set(range(5, 46))
    assert table.loc["corn", "true_change"].min() < 0


def test_true_forecast_answers_the_same_question(cube: Cube, model: KGVSF) -> None:
    from kgvsf_explore.evaluation import image_horizons, true_forecast
    from kgvsf_explore.world.whatif import counterfactual, ndvi_of

    hz = image_horizons(cube, "2022-07-03", [10, 20])
    t = pd.Timestamp(forecast_region(model, cube, "2022-07-03", [5], progress=False).attrs["t"])
    assert all(t + pd.Timedelta(days=k) in cube.times for k in hz)
    dry = Scenario.parse("prcp =0 from 2022-07-01 to 2022-08-15", name="dry")
    box = (float(cube.ds.x[2]), float(cube.ds.y[20]), float(cube.ds.x[20]), float(cube.ds.y[2]))
    out = forecast_region(model, cube, "2022-07-03", hz, [None, dry], region=box,
                          progress=False)
    truth = true_forecast(cube, out)
    assert truth.ndvi.dims == out.ndvi.dims and truth.ndvi.shape == out.ndvi.shape
    np.testing.assert_array_equal(truth.time.values, out.time.values)
    target = out.time.values[-1]
    expect = ndvi_of(counterfactual(cube.ds, dry)).sel(time=target, y=out.y, x=out.x)
    np.testing.assert_allclose(truth.ndvi.sel(scenario="dry").isel(horizon=-1), expect,
                               rtol=1e-6)
    observed = ndvi_of(cube.ds).sel(time=target, y=out.y, x=out.x)
    np.testing.assert_allclose(truth.ndvi.sel(scenario="observed").isel(horizon=-1), observed,
                               rtol=1e-6)
    with pytest.raises(KGVSFError, match="make-sample"):
        true_forecast(Cube(cube.ds.assign_attrs(kgvsf_seed=None).drop_attrs()), out)


def test_tile_driver_table_equals_the_regridded_mean(cube: Cube) -> None:
    from kgvsf_explore.cube.regrid import TileDrivers, drivers_on_pixels

    ds, names = cube.ds, ["prcp", "tmax", "srad"]
    ref = drivers_on_pixels(ds.isel(day=slice(100, 140)), tuple(names))
    on_pixels = ref.assign_coords(day=ds.day[100:141][:40])
    for layout in (ds, drivers_on_pixels(ds, tuple(names))):  # met grid, pixel grid
        table = TileDrivers(layout, ds.y.values, ds.x.values, names, slice(100, 140),
                            (slice(3, 30), slice(0, 32)))
        for rows, cols in [(slice(3, 19), slice(0, 16)), (slice(14, 30), slice(16, 32))]:
            expect = on_pixels.isel(y=rows, x=cols).mean(("y", "x"))
            np.testing.assert_allclose(table.mean(rows, cols),
                                       np.stack([expect[n].values for n in names], -1),
                                       rtol=1e-5, atol=1e-5)
