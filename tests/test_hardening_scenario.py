"""Scenario files are bounded and applying many changes is linear in their number.

Before the hardening a scenario file had no size limit, 100,000 nested ``[`` raised
``RecursionError``, a 50 MB name was copied into the output, and every change added several
full-array passes (and dask layers): 5,000 changes ran over 300 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import dask.array
import numpy as np
import pytest
import xarray as xr
from conftest import make_fake_dataset

from kgvsf_explore.errors import ScenarioError
from kgvsf_explore.scenario import Change, Scenario, jsonform

VERSION = {"kgvsf_scenario_version": 1}


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.json"
    path.write_text(text)
    return path


def test_deep_nesting_is_a_scenario_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = _file(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ScenarioError, match="nests arrays/objects 100000 deep"):
        Scenario.from_json(path)
    deep = json.loads("[" * 40 + "1" + "]" * 40)
    text = json.dumps({**VERSION, "changes": [{"op": "offset", "variable": "tmax",
                                               "value": deep}]})
    with pytest.raises(ScenarioError, match="deep"):
        Scenario.from_json(text)


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path,
                                                                monkeypatch) -> None:
    path = _file(tmp_path, json.dumps({**VERSION, "name": "x" * jsonform.MAX_FILE_BYTES}))

    def no_read(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_text", no_read)
    with pytest.raises(ScenarioError, match="more than the 5,000,000"):
        Scenario.from_json(path)


def test_a_long_name_is_refused_and_not_copied_into_the_message() -> None:
    text = json.dumps({**VERSION, "name": "n" * 1_000_000, "changes": []})
    with pytest.raises(ScenarioError, match="1,000,000 characters") as err:
        Scenario.from_json(text)
    assert len(str(err.value)) < 400
    ok = Scenario.from_json(json.dumps({**VERSION, "name": "n" * jsonform.MAX_NAME_CHARS}))
    assert len(ok.name) == jsonform.MAX_NAME_CHARS


def test_too_many_changes_are_refused() -> None:
    change = {"op": "offset", "variable": "tmax", "value": 0.1}
    data = {**VERSION, "changes": [change] * (jsonform.MAX_CHANGES + 1)}
    with pytest.raises(ScenarioError, match="10,001 changes, more than the 10,000"):
        Scenario.from_dict(data)
    assert len(Scenario.from_dict({**VERSION, "changes": [change] * 50}).changes) == 50


def _many_changes(n: int, seed: int = 0) -> list[Change]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        op = ("offset", "scale", "set")[i % 3]
        value = {"offset": rng.uniform(-0.5, 0.5), "scale": rng.uniform(0.9, 1.1),
                 "set": rng.uniform(15, 25)}[op]
        start = f"2021-03-{1 + int(rng.integers(0, 20)):02d}"
        end = f"2021-04-{1 + int(rng.integers(0, 28)):02d}"
        region = None if i % 4 else (440_000, 4_649_900, 440_100, 4_650_000)
        out.append(Change("tmax", op, float(value), start=start, end=end, region=region))
    return out


def _one_at_a_time(da: xr.DataArray, changes: list[Change]) -> np.ndarray:
    """The reference: one full-array ``xr.where`` per change, as before the hardening."""
    day = da.indexes["day"]
    for c in changes:
        new = da + c.value if c.op == "offset" else da * c.value if c.op == "scale" else (
            xr.where(da.isnull(), da, c.value))
        inside = (day >= np.datetime64(c.start)) & (day < np.datetime64(c.end)
                                                     + np.timedelta64(1, "D"))
        mask = xr.DataArray(inside, dims=("day",), coords={"day": day})
        if c.region is not None:
            xmin, ymin, xmax, ymax = c.region
            mask = mask & (da.x >= xmin) & (da.x <= xmax) & (da.y >= ymin) & (da.y <= ymax)
        da = xr.where(mask, new, da).astype(np.float32).transpose(*da.dims)
    return da.values


@pytest.mark.parametrize("lazy", [False, True])
def test_many_changes_give_the_same_numbers_as_one_at_a_time(lazy: bool) -> None:
    ds = make_fake_dataset(drivers_on="pixel", n_days=60)
    drivers = ds[["tmax", "tmin"]]
    drivers["tmin"] = drivers["tmin"] - 40  # no clipping: the comparison is the arithmetic
    if lazy:
        drivers = drivers.chunk({"day": 17, "y": 7, "x": 9})
    changes = _many_changes(60)
    out = Scenario(tuple(changes)).apply(drivers)
    expected = _one_at_a_time(drivers["tmax"].load(), changes)
    assert out["tmax"].dtype == np.float32
    np.testing.assert_array_equal(out["tmax"].values, expected)
    assert (out["tmax"].values != drivers["tmax"].values).any()
    np.testing.assert_array_equal(out["tmin"].values, drivers["tmin"].values)


def test_the_work_per_change_does_not_grow_with_their_number() -> None:
    ds = make_fake_dataset(drivers_on="pixel", n_days=60)[["tmax", "tmin"]]
    lazy = ds.chunk({"day": 30})
    layers = []
    for n in (10, 1000):
        out = Scenario(tuple(_many_changes(n))).apply(lazy)
        assert isinstance(out["tmax"].data, dask.array.Array)
        layers.append(len(out["tmax"].data.dask.layers))
    assert layers[0] == layers[1]  # one pass for the whole run of changes, not one per change


def test_input_is_not_modified_in_place() -> None:
    ds = make_fake_dataset(drivers_on="pixel", n_days=60)[["tmax", "tmin"]]
    before = ds["tmax"].values.copy()
    Scenario(tuple(_many_changes(30))).apply(ds)
    np.testing.assert_array_equal(ds["tmax"].values, before)
    lazy = ds.chunk({"day": 20})
    Scenario(tuple(_many_changes(30))).apply(lazy)["tmax"].load()
    np.testing.assert_array_equal(ds["tmax"].values, before)


def test_a_series_from_year_1000_is_a_scenario_error(tmp_path: Path) -> None:
    from kgvsf_explore import open_cube, sample_path

    ds = open_cube(sample_path()).ds
    csv = tmp_path / "old.csv"
    csv.write_text("date,tmax,tmin\n1000-07-01,30,18\n1000-07-02,31,19\n")
    scen = Scenario.from_series(csv)
    with pytest.raises(ScenarioError, match="covers none of the data's days"):
        scen.apply(ds)
