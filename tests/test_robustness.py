"""Robustness: damaged stores, clouds everywhere, gaps and non-finite values, mixed CRSs.

Each bad input gets a clear error (or a documented, safe behaviour), never silent garbage.
Checkpoint failures (truncated, corrupted, another config, interrupted save) are tested in
test_training.py; unit mix-ups (Kelvin, metres of rain, kPa, J/m2) in test_cube_validate.py.
"""

from __future__ import annotations

import errno
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import torch
import xarray as xr

from kgvsf_explore.cli import main
from kgvsf_explore.cube import Cube, open_cube
from kgvsf_explore.errors import CubeReadError, DriverGapError, RegionError
from kgvsf_explore.forecaster import Forecaster
from kgvsf_explore.models import KGVSF, PRESETS, TrainConfig
from kgvsf_explore.training import save_checkpoint
from kgvsf_explore.world import make_world, write_world

START = "2022-07-03"


@pytest.fixture(scope="module")
def world() -> xr.Dataset:
    return make_world(seed=27, size="tiny")[0]


@pytest.fixture(scope="module")
def fc() -> Forecaster:
    torch.manual_seed(0)
    return Forecaster(KGVSF(PRESETS["tiny"].model, "kgvsf").eval())


def _truncate_chunks(store: Path, var: str) -> int:
    """Cut every chunk file of ``var`` in half (an interrupted copy); returns how many."""
    chunks = [p for p in (store / var).rglob("*") if p.is_file() and
              p.name not in ("zarr.json", ".zarray", ".zattrs")]
    for chunk in chunks:
        data = chunk.read_bytes()
        chunk.write_bytes(data[: len(data) // 2])
    return len(chunks)


def test_a_truncated_chunk_is_named_not_a_codec_trace(tmp_path: Path, fc: Forecaster,
                                                       capsys) -> None:
    folder = write_world(tmp_path / "w", seed=5, size="tiny")
    n = _truncate_chunks(folder / "cube.zarr", "B04")
    with pytest.raises(CubeReadError, match="kgvsf info --check"):
        open_cube(folder)
    assert main(["info", "--check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"{n} unreadable chunk(s)" in out and out.count("B04 chunk") == n
    cube = open_cube(folder, validate=False)
    with pytest.raises(CubeReadError, match="context images"):
        fc.forecast(cube, None, START, (5,), progress=False)


def test_all_cloud_context_gives_finite_forecasts(world: xr.Dataset, fc: Forecaster) -> None:
    ds = world.copy(deep=True)
    before = ds.time.values <= np.datetime64(START)
    ds["cloud_mask"][{"time": np.flatnonzero(before)[-8:]}] = True  # the whole context clouded
    out = fc.forecast(Cube(ds), None, START, (5, 30), progress=False)
    assert bool(np.isfinite(out.reflectance).all())


def test_inf_reflectance_is_treated_as_missing(world: xr.Dataset, fc: Forecaster) -> None:
    ds = world.copy(deep=True)
    t = np.flatnonzero(ds.time.values <= np.datetime64(START))[-1]
    y, x = map(int, np.argwhere(~ds.cloud_mask[t].values)[0])  # a clear pixel at t
    ref = fc.forecast(Cube(ds), None, START, (10,), progress=False)
    ds["B04"][{"time": t, "y": y, "x": x}] = np.inf
    out = fc.forecast(Cube(ds), None, START, (10,), progress=False)
    assert bool(np.isfinite(out.reflectance).all())
    # the same as if the pixel were cloudy
    ds["B04"][{"time": t, "y": y, "x": x}] = np.nan
    ds["cloud_mask"][{"time": t, "y": y, "x": x}] = True
    cloudy = fc.forecast(Cube(ds), None, START, (10,), progress=False)
    np.testing.assert_allclose(out.reflectance, cloudy.reflectance, atol=1e-6)
    assert float(np.abs(out.reflectance - ref.reflectance).max()) > 0


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_driver_gaps_are_named_with_their_dates(world: xr.Dataset, fc: Forecaster,
                                                value: float) -> None:
    ds = world.copy(deep=True)
    day = int(np.flatnonzero(ds.day.values == np.datetime64("2022-07-10"))[0])
    ds["prcp"][{"day": day}] = value
    with pytest.raises(DriverGapError, match=r"'prcp'.*2022-07-10.*interpolate_na"):
        fc.forecast(Cube(ds), None, START, (20,), progress=False)
    ds["prcp"] = ds["prcp"].where(np.isfinite(ds["prcp"])).interpolate_na("day")  # the fix
    out = fc.forecast(Cube(ds), None, START, (20,), progress=False)
    assert bool(np.isfinite(out.ndvi).all())


def test_regions_in_another_crs_are_reprojected(world: xr.Dataset, fc: Forecaster) -> None:
    cube = Cube(world)
    x0, y0, x1, y1 = cube.bounds
    box = shapely.box(x0 + 52, y0 + 52, x1 - 52, y1 - 52)  # no pixel centre on an edge
    lonlat = gpd.GeoSeries([box], crs=cube.crs).to_crs("EPSG:4326")
    a = fc.forecast(cube, gpd.GeoDataFrame(geometry=lonlat), START, (10,), progress=False)
    b = fc.forecast(cube, gpd.GeoDataFrame(geometry=[box], crs=cube.crs), START, (10,),
                    progress=False)
    assert a.sizes == b.sizes
    np.testing.assert_allclose(a.ndvi, b.ndvi, atol=1e-6)
    far = gpd.GeoSeries([shapely.box(2.0, 48.0, 2.1, 48.1)], crs="EPSG:4326")  # Paris
    with pytest.raises(RegionError, match="does not intersect"):
        fc.forecast(cube, far, START, (10,), progress=False)


def test_disk_full_while_writing_a_forecast_keeps_the_old_one(tmp_path: Path, monkeypatch,
                                                              capsys) -> None:
    folder = write_world(tmp_path / "w", seed=5, size="tiny")
    save_checkpoint(tmp_path / "ckpt", KGVSF(PRESETS["tiny"].model, "kgvsf"),
                    PRESETS["tiny"].model, TrainConfig(objective="kgvsf"), {"step": 0})
    out = tmp_path / "f.zarr"
    args = ["forecast", "--cube", str(folder), "--weights", str(tmp_path / "ckpt"), "--start",
            START, "--horizons", "5", "--out", str(out), "--quiet"]
    assert main(args) == 0
    before = xr.open_zarr(out, consolidated=False).load()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_zarr", full)
    assert main(args[:-4] + ["10", "--out", str(out), "--quiet"]) == 2
    assert "No space left" in capsys.readouterr().err
    monkeypatch.undo()
    xr.testing.assert_identical(before, xr.open_zarr(out, consolidated=False).load())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".f.zarr")] == []
