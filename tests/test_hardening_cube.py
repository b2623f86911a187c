"""Cube validation: clear errors for impossible values, empty cubes and infinite drivers.

Before the hardening ``tmax`` 1e30 was reported as "looks like Kelvin", a cube with no images
as "B0x_true entirely NaN", and ``kgvsf info`` passed a cube whose infinite drivers a forecast
then refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_fake_dataset

import kgvsf_explore as kx
from kgvsf_explore.cli import main
from kgvsf_explore.cube.validate import validate_dataset
from kgvsf_explore.errors import CubeValidationError


def test_an_absurd_temperature_is_out_of_range_not_kelvin() -> None:
    ds = make_fake_dataset()
    with pytest.raises(CubeValidationError) as err:
        validate_dataset(ds.assign(tmax=ds.tmax * 0 + 1e30))
    assert "outside the plausible range" in str(err.value) and "Kelvin" not in str(err.value)
    with pytest.raises(CubeValidationError, match="looks like Kelvin"):  # still caught
        validate_dataset(ds.assign(tmax=ds.tmax + 273.15, tmin=ds.tmin + 273.15))


@pytest.mark.parametrize("dim, words", [("time", "no image dates"),
                                        ("day", "no days of drivers")])
def test_a_cube_without_images_or_days_says_so(dim: str, words: str) -> None:
    ds = make_fake_dataset().isel({dim: slice(0, 0)})
    with pytest.raises(CubeValidationError, match=words) as err:
        validate_dataset(ds)
    assert "_true" not in str(err.value)


def test_infinite_drivers_in_the_sample_are_problems() -> None:
    ds = make_fake_dataset()
    bad = ds.assign(srad=ds.srad.where(ds.day != ds.day[10], np.inf))
    with pytest.raises(CubeValidationError, match="srad: .* infinite"):
        validate_dataset(bad)


def test_driver_gaps_reads_every_day() -> None:
    from kgvsf_explore.cube.validate import driver_gaps

    ds = make_fake_dataset(drivers_on="pixel")
    assert driver_gaps(ds) == []
    day = ds.day.values[77]
    bad = ds.assign(tmax=ds.tmax.where(ds.day != day, -np.inf)).chunk({"day": 16})
    (line,) = driver_gaps(bad)
    assert "'tmax'" in line and "infinite" in line and "1 day(s): 2021-05-17" in line


def test_info_finds_infinite_drivers_the_sample_misses(tmp_path: Path, capsys) -> None:
    ds = make_fake_dataset(ny=24, nx=24, n_days=900, drivers_on="pixel")  # sampled, not read
    day = ds.day.values[650]
    ds["prcp"] = ds.prcp.where(ds.day != day, np.inf)
    kx.open_cube(ds)  # the sample validation reads does not see that day
    path = kx.Cube(ds).to_zarr(tmp_path / "c.zarr")
    assert main(["info", str(path)]) == 1
    out = capsys.readouterr().out
    assert "driver 'prcp' is missing (NaN) or infinite on 1 day(s): 2022-12-11" in out
