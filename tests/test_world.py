"""The sample world: deterministic from its seed, schema-valid, and causally right."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from kgvsf_explore import schema
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.world import make_world, write_world
from kgvsf_explore.world.whatif import effect_by_crop

SEED = 11  # not the shipped seed


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def base() -> xr.Dataset:
    ds, _ = make_world(seed=SEED, size="tiny")
    return ds


def _ndvi(ds: xr.Dataset) -> xr.DataArray:
    return (ds["B08_true"] - ds["B04_true"]) / (ds["B08_true"] + ds["B04_true"])


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    a = write_world(tmp_path / "a", seed=SEED, size="tiny")
    b = write_world(tmp_path / "b", seed=SEED, size="tiny")
    c = write_world(tmp_path / "c", seed=SEED + 1, size="tiny")
    da, db, dc = _tree_digest(a), _tree_digest(b), _tree_digest(c)
    assert da == db
    assert da.keys() == dc.keys()
    assert da["cube.zarr/B04/c/0/0/0"] != dc["cube.zarr/B04/c/0/0/0"]
    assert da["fields.parquet"] != dc["fields.parquet"]


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    out = write_world(tmp_path / "w", seed=SEED, size="tiny")
    before = _tree_digest(out)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_world(out, seed=SEED + 1, size="tiny")
    assert _tree_digest(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_world_follows_schema(base: xr.Dataset) -> None:
    from kgvsf_explore.cube import validate_dataset

    validate_dataset(base, require_truth=True)
    for band in schema.BANDS:
        assert base[band].dims == ("time", "y", "x")
        truth = base[schema.truth_name(band)]
        assert float(truth.min()) >= 0 and float(truth.max()) <= 1
    # bands are NaN exactly where the cloud mask says so
    assert bool((base["B04"].isnull() == base[schema.CLOUD_MASK]).all())
    assert 0.1 < float(base[schema.CLOUD_MASK].mean()) < 0.7
    assert set(np.unique(base[schema.CROP_TYPE])) == set(schema.CROP_CLASSES)
    sm = base[schema.SOIL_MOISTURE]
    assert 0.02 < float(sm.min()) and float(sm.max()) < 0.5
    assert float(base["prcp"].min()) >= 0
    assert bool((base["tmin"] <= base["tmax"]).all())
    steps = np.diff(base["time"].values).astype("timedelta64[D]").astype(int)
    assert steps.min() >= 1 and np.median(steps) <= 5


def test_years_differ(base: xr.Dataset) -> None:
    kinds = json.loads(base.attrs["kgvsf_year_kinds"])
    rain = base["prcp"].mean(("y_met", "x_met")).groupby("day.year").sum()
    by_kind = {kinds[str(int(y))]: float(r) for y, r in zip(rain.year.values, rain.values)}
    if "drought" in by_kind and "wet" in by_kind:
        assert by_kind["drought"] < 0.8 * by_kind["wet"]
    assert len(set(np.round(rain.values))) == len(rain)


def test_crops_follow_their_calendar(base: xr.Dataset) -> None:
    nd = _ndvi(base)
    crop = base[schema.CROP_TYPE]
    for code, peak_months in {1: (7, 8, 9), 2: (7, 8, 9), 3: (4, 5, 6)}.items():
        monthly = nd.where(crop == code).mean(("y", "x")).groupby("time.month").mean()
        assert int(monthly.idxmax()) in peak_months, (code, monthly.values.round(2))
        assert float(monthly.max()) > 0.6
        assert float(monthly.sel(month=slice(1, 2)).max()) < 0.4


def test_less_rain_lowers_soil_moisture_and_ndvi(base: xr.Dataset) -> None:
    dry = Scenario.parse("prcp x0.3", name="dry")
    cf, _ = make_world(seed=SEED, size="tiny", scenario=dry)
    # same world: same fields, same draws
    xr.testing.assert_equal(cf[schema.FIELD_ID], base[schema.FIELD_ID])
    np.testing.assert_allclose(cf["prcp"], 0.3 * base["prcp"], rtol=1e-5, atol=1e-6)
    table = effect_by_crop(base, cf, "2022-05-01", "2022-09-30")
    for crop in ("corn", "soybean", "grassland"):
        assert table.loc[crop, "sm_change"] < -0.01, table
        assert table.loc[crop, "ndvi_change"] < -0.02, table
    # pixel by pixel: summer soil moisture never rises when rain falls
    sm_b = base[schema.SOIL_MOISTURE].sel(day=slice("2022-06-01", "2022-08-31")).mean("day")
    sm_d = cf[schema.SOIL_MOISTURE].sel(day=slice("2022-06-01", "2022-08-31")).mean("day")
    assert bool((sm_d <= sm_b + 1e-3).all())
    # fewer rainy days -> no more clouds than before
    assert float(cf[schema.CLOUD_MASK].mean()) <= float(base[schema.CLOUD_MASK].mean())


def test_warming_speeds_up_development(base: xr.Dataset) -> None:
    warm = Scenario.parse("tmax +3", "tmin +3", name="warm")
    cf, _ = make_world(seed=SEED, size="tiny", scenario=warm)
    crop = base[schema.CROP_TYPE]

    def greenup_doy(ds: xr.Dataset, code: int, year: str) -> float:
        nd = _ndvi(ds).sel(time=year).where(crop == code).mean(("y", "x"))
        above = nd.time.where(nd >= 0.5, drop=True)
        return float(above.dt.dayofyear.min())

    for code in (1, 2):  # corn, soybean: canopy closes earlier under warming
        for year in ("2021", "2022"):
            assert greenup_doy(cf, code, year) < greenup_doy(base, code, year)
    # winter wheat: ripens and browns earlier (NDVI in late June lower)
    nd_b = _ndvi(base).sel(time=slice("2022-06-10", "2022-06-30")).where(crop == 3).mean()
    nd_w = _ndvi(cf).sel(time=slice("2022-06-10", "2022-06-30")).where(crop == 3).mean()
    assert float(nd_w) < float(nd_b)


@pytest.mark.parametrize("seed", [3, 2024])
def test_any_seed_and_windowed_region_scenario(seed: int) -> None:
    base, _ = make_world(seed=seed, size="tiny")
    x0, x1 = float(base.x[0]), float(base.x[15])
    y0, y1 = float(base.y[31]), float(base.y[0])
    sc = Scenario.from_dict({
        "kgvsf_scenario_version": 1, "name": "local dry July",
        "changes": [{"variable": "prcp", "op": "set", "value": 0.0, "start": "2022-06-20",
                     "end": "2022-08-10", "region": {"bbox": [x0 - 5, y0 - 5, x1 + 5, y1 + 5]}}],
    })
    cf, _ = make_world(seed=seed, size="tiny", scenario=sc)
    sm = cf[schema.SOIL_MOISTURE].sel(day="2022-08-10") - base[schema.SOIL_MOISTURE].sel(
        day="2022-08-10")
    inside, outside = sm.isel(x=slice(0, 14)), sm.isel(x=slice(18, None))
    assert float(inside.mean()) < -0.005
    assert float(np.abs(outside).max()) < 1e-6
    before = cf[schema.SOIL_MOISTURE].sel(day=slice(None, "2022-06-19"))
    xr.testing.assert_equal(before, base[schema.SOIL_MOISTURE].sel(day=slice(None, "2022-06-19")))


def test_shipped_sample_regenerates_bit_for_bit(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from kgvsf_explore.data import sample_path
    from kgvsf_explore.world import SHIPPED_SEED, SHIPPED_SIZE

    shipped = sample_path()
    made = write_world(tmp_path / "sample", seed=SHIPPED_SEED, size=SHIPPED_SIZE)
    a, b = _tree_digest(made), _tree_digest(shipped)
    # the fields table's parquet bytes embed the writing pandas/pyarrow versions: its content
    # (columns, types, values) must be the same, every other file byte for byte
    table = "fields.parquet"
    assert pq.read_table(made / table).equals(pq.read_table(shipped / table))
    assert {k: v for k, v in a.items() if k != table} == {
        k: v for k, v in b.items() if k != table}


def test_random_weather_variants_are_valid_and_seeded() -> None:
    import pandas as pd

    from kgvsf_explore.world.variants import random_weather_scenario

    a = random_weather_scenario(np.random.default_rng([5, 1]), (2021, 2022))
    b = random_weather_scenario(np.random.default_rng([5, 1]), (2021, 2022))
    assert a == b and 2 <= len(a.changes) <= 8
    for change in a.changes:
        assert pd.Timestamp(change.start).month in range(4, 10)
        assert change.variable in ("prcp", "tmax", "tmin")
    ds, _ = make_world(seed=SEED, size="tiny", scenario=a)  # the simulator accepts it
    assert json.loads(ds.attrs["kgvsf_scenario"])["name"] == "random-weather"
