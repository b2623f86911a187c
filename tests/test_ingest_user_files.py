"""``write_user_files``: a cube written as a user's files ingests back to the same cube."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kgvsf_explore as kx
from kgvsf_explore.ingest import ingest
from kgvsf_explore.ingest.fakes import write_user_files
from kgvsf_explore.world import make_world


@pytest.fixture(scope="module")
def world() -> kx.Cube:
    ds, _ = make_world(seed=5, size="tiny")
    return kx.open_cube(ds.isel(y=slice(0, 16), x=slice(0, 16)))


@pytest.mark.parametrize("sensor", ["sentinel2", "landsat"])
def test_files_ingest_back(world: kx.Cube, tmp_path: Path, sensor: str) -> None:
    files = write_user_files(world, tmp_path / sensor, sensor=sensor, start="2022-05-01",
                             end="2022-06-30")
    cube = kx.open_cube(ingest(tmp_path / "c.zarr", files["images"], files["weather"]))
    want = world.times[(world.times >= "2022-05-01") & (world.times <= "2022-06-30")]
    assert list(cube.times.normalize()) == list(want.normalize())
    missing = json.loads(cube.ds.attrs["kgvsf_missing_bands"])
    assert missing == (["B05"] if sensor == "landsat" else [])
    src = world.ds["B04"].sel(time=want).values
    got = cube.ds["B04"].values
    ok = np.isfinite(src) & np.isfinite(got)
    assert ok.sum() > 0.2 * ok.size
    assert (np.isfinite(got) <= np.isfinite(src)).all()  # clouds stay clouds (SCL at 20 m)
    np.testing.assert_allclose(got[ok], src[ok], atol=2e-4)  # integer DN rounding
    # the station CSV in K / m / MJ m-2 / hPa comes back in the cube's units
    tmax = world.ds["tmax"].mean([d for d in world.ds["tmax"].dims if d != "day"])
    back = cube.ds["tmax"].sel(day="2022-06-15").values
    np.testing.assert_allclose(back, tmax.sel(day="2022-06-15").values, atol=1e-3)
