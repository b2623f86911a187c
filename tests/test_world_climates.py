"""Worlds that differ: climates, sensors, rotations and irrigation (tiny worlds, seconds each)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from kgvsf_explore import schema
from kgvsf_explore.cube import open_cube
from kgvsf_explore.cube.cube import MISSING_BANDS_ATTR, observed_bands
from kgvsf_explore.errors import KGVSFError
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.world import make_world, write_world
from kgvsf_explore.world.climates import CLIMATES, get_climate
from kgvsf_explore.world.sample import WorldOptions, world_spec, world_streams
from kgvsf_explore.world.whatif import ndvi_of

DOCS = Path(__file__).resolve().parents[1] / "docs" / "world.md"


def _normal_year_seed(climate: str, start: int) -> tuple[int, int]:
    """The first seed from ``start`` whose tiny world has a year of kind "normal", and that
    year (the ranges of docs/world.md are for normal years)."""
    opts = WorldOptions(climate=climate)
    for seed in range(start, start + 50):
        spec = world_spec(seed, "tiny", opts)
        order = world_streams(spec)[2].permutation(3)  # as world_inputs draws the year kinds
        kinds = ["drought", "wet", "normal"]
        for i, year in enumerate(spec.years):
            if kinds[order[i % 3]] == "normal":
                return seed, year
    raise AssertionError("no seed with a normal year")


@pytest.mark.parametrize("name", sorted(CLIMATES))
def test_climate_falls_in_its_documented_ranges(name: str) -> None:
    seed, year = _normal_year_seed(name, 5000 + 97 * sorted(CLIMATES).index(name))
    ds, fields = make_world(seed=seed, size="tiny", options=WorldOptions(climate=name))
    assert json.loads(ds.attrs["kgvsf_year_kinds"])[str(year)] == "normal"
    r = get_climate(name).ranges
    prcp = ds["prcp"].mean(("y_met", "x_met")).sel(day=str(year))
    rain = float(prcp.sum())
    tmax = ds["tmax"].mean(("y_met", "x_met")).sel(day=str(year))
    monthly = tmax.groupby("day.month").mean().values
    summer = float(np.sort(monthly)[-3:].mean())
    crop = schema.crop_map(ds, year)
    peak = float(ndvi_of(ds).sel(time=str(year)).where(crop != 0).mean(("y", "x")).max())
    assert r.annual_rain_mm[0] <= rain <= r.annual_rain_mm[1], rain
    assert r.summer_tmax_c[0] <= summer <= r.summer_tmax_c[1], summer
    assert r.ndvi_peak[0] <= peak <= r.ndvi_peak[1], peak
    # the crops are the climate's, and the docs state the ranges the test checks
    assert set(fields["crop_code"]) <= set(get_climate(name).crop_shares)
    text = DOCS.read_text()
    assert f"`{name}`" in text
    assert f"{r.annual_rain_mm[0]:.0f}-{r.annual_rain_mm[1]:.0f}" in text


def test_climates_differ_where_they_should() -> None:
    """Semi-arid and Mediterranean summers are hotter than the maritime one; the Mediterranean
    rain falls in winter."""
    out = {}
    for name in ("great-plains", "mediterranean", "maritime"):
        ds, _ = make_world(seed=31, size="tiny", options=WorldOptions(climate=name))
        p = ds["prcp"].mean(("y_met", "x_met"))
        t = ds["tmax"].mean(("y_met", "x_met"))
        summer = p.where(p["day.month"].isin([6, 7, 8]), drop=True).sum()
        winter = p.where(p["day.month"].isin([12, 1, 2]), drop=True).sum()
        out[name] = (float(summer), float(winter), float(t.max()))
        assert ds.attrs["kgvsf_climate"] == name
        assert ds.attrs["latitude"] == pytest.approx(get_climate(name).lat_lon[0], abs=0.1)
    assert out["mediterranean"][0] < 0.2 * out["mediterranean"][1]
    assert out["great-plains"][2] > out["maritime"][2] + 5
    assert out["mediterranean"][2] > out["maritime"][2] + 5


def test_default_options_are_the_world_as_it_was() -> None:
    a, fa = make_world(seed=9, size="tiny")
    b, fb = make_world(seed=9, size="tiny", options=WorldOptions("corn-belt", "sentinel2",
                                                                 False, False))
    xr.testing.assert_identical(a, b)
    assert list(fa.columns) == list(fb.columns)
    assert "kgvsf_world" not in a.attrs and a[schema.CROP_TYPE].dims == ("y", "x")


def test_landsat_revisit_and_no_red_edge(tmp_path: Path) -> None:
    out = write_world(tmp_path / "l", seed=21, size="tiny",
                      options=WorldOptions(sensor="landsat"))
    cube = open_cube(out)
    gaps = np.diff(cube.times.values).astype("timedelta64[D]").astype(int)
    assert np.median(gaps) >= 8
    assert "B05" in cube.missing_bands()
    assert "B05" not in observed_bands(cube.ds)
    assert json.loads(cube.ds.attrs[MISSING_BANDS_ATTR]) == ["B05"]
    assert not bool(cube.ds["B05"].notnull().any())
    assert bool(cube.ds["B04"].notnull().any())
    s2, _ = make_world(seed=21, size="tiny")
    assert len(cube.times) < 0.75 * s2.sizes["time"]


def test_rotation_changes_corn_and_soybean_between_years(tmp_path: Path) -> None:
    out = write_world(tmp_path / "r", seed=23, size="tiny",
                      options=WorldOptions(rotation=True))
    cube = open_cube(out)  # a (year, y, x) crop_type validates and opens
    ct = cube.ds[schema.CROP_TYPE]
    assert ct.dims == (schema.YEAR_DIM, "y", "x")
    fields = cube.fields
    cs = fields[fields["crop_code"].isin([1, 2])]
    assert len(cs) >= 5
    changed = (cs["crop_2021"] != cs["crop_2022"]).mean()
    assert changed >= 0.3
    # the raster agrees with the table, year by year
    fid = cube.ds[schema.FIELD_ID].values
    legend = cube.legend(schema.CROP_TYPE)
    for _, row in cs.iterrows():
        for year in (2021, 2022):
            codes = np.unique(cube.crop_map(year).values[fid == row["field_id"]])
            assert [legend[int(c)] for c in codes] == [row[f"crop_{year}"]]
    assert cube.crop_type.dims == ("y", "x")  # the last year's map
    # the rotation is drawn from a new stream: weather and field layout are the default's
    base, _ = make_world(seed=23, size="tiny")
    # (stored drivers are rounded to 1e-4 mm: DRIVER_DECIMALS)
    np.testing.assert_allclose(base["prcp"].values, cube.ds["prcp"].values, atol=6e-5)
    np.testing.assert_array_equal(base[schema.FIELD_ID].values, fid)


def test_crop_map_reads_old_two_dimensional_layers() -> None:
    ds, _ = make_world(seed=3, size="tiny")
    assert schema.crop_map(ds) is not None
    xr.testing.assert_identical(schema.crop_map(ds, 2021), ds[schema.CROP_TYPE])
    rot, _ = make_world(seed=3, size="tiny", options=WorldOptions(rotation=True))
    with pytest.raises(KeyError, match="2019"):
        schema.crop_map(rot, 2019)


def test_irrigation_softens_a_drought() -> None:
    opts = WorldOptions(irrigation=True)
    drought = Scenario.parse("prcp x0 from 2022-05-01 to 2022-08-31",
                             "tmax +2 from 2022-05-01 to 2022-08-31", name="drought")
    base, fields = make_world(seed=5, size="tiny", options=opts)
    dry, _ = make_world(seed=5, size="tiny", options=opts, scenario=drought)
    change = (ndvi_of(dry) - ndvi_of(base)).sel(time=slice("2022-06-01", "2022-09-30"))
    change = change.mean("time")
    fid = base[schema.FIELD_ID]
    table = fields.set_index("field_id")
    compared = 0
    for code in (1, 2):  # corn, soybean: some fields irrigated, others rain-fed
        irr = table.index[table["irrigated"] & (table["crop_code"] == code)]
        rain = table.index[~table["irrigated"] & (table["crop_code"] == code)]
        if len(irr) == 0 or len(rain) == 0:
            continue
        d_irr = float(change.where(fid.isin(list(irr))).mean())
        d_rain = float(change.where(fid.isin(list(rain))).mean())
        assert abs(d_irr) < abs(d_rain), (code, d_irr, d_rain)
        assert d_rain < -0.05
        compared += 1
    assert compared >= 1


def test_unknown_climate_or_sensor_is_a_clear_error() -> None:
    with pytest.raises(KGVSFError, match="choose one of"):
        WorldOptions(climate="tundra")
    with pytest.raises(KGVSFError, match="--sensor"):
        WorldOptions(sensor="modis")


def test_whatif_reruns_the_same_kind_of_world() -> None:
    from kgvsf_explore.world.whatif import counterfactual, effect_by_crop

    opts = WorldOptions(climate="great-plains", sensor="landsat")
    base, _ = make_world(seed=12, size="tiny", options=opts)
    dry = Scenario.parse("prcp x0 from 2022-04-01 to 2022-08-31", name="dry")
    cf = counterfactual(base, dry)
    assert cf.attrs["kgvsf_world"] == base.attrs["kgvsf_world"]
    xr.testing.assert_identical(cf[schema.CROP_TYPE], base[schema.CROP_TYPE])
    assert float(cf["prcp"].sel(day="2022-06").sum()) == 0.0
    table = effect_by_crop(base, cf, "2022-05-01", "2022-09-30")
    assert "winter_wheat" in table.index and table["sm_change"].mean() < 0
