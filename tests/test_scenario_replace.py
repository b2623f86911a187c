"""Tests of the replacements: another year's weather and a user's own driver series."""

from __future__ import annotations

import copy
import dataclasses
import doctest
import importlib
import json
import pkgutil
import warnings
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import make_fake_dataset

import kgvsf_explore.scenario as scenario_package
from kgvsf_explore import schema
from kgvsf_explore.errors import ScenarioClipWarning, ScenarioError
from kgvsf_explore.scenario import (
    CHANGEABLE_DRIVERS,
    SCENARIO_FORMAT_VERSION,
    Change,
    Scenario,
    SeriesReplacement,
    YearReplacement,
)

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples" / "scenarios"
PIXEL_BOX = (440000.0, 4649980.0, 440020.0, 4650000.0)  # pixel centres x 0..1, y 0..1
JULY_AUG = ("2023-07-01", "2023-08-31")


def _no_compute(*args, **kwargs):
    raise AssertionError("the scenario computed dask data")


def _years(drivers_on: str = "pixel") -> xr.Dataset:
    """4 x 5 pixels, 2021-03-01..2024-03-04: three summers and the leap day 2024-02-29."""
    return make_fake_dataset(ny=4, nx=5, n_days=1100, drivers_on=drivers_on)


def _days(ds: xr.Dataset, start: str, end: str) -> xr.Dataset:
    return ds.sel(day=slice(start, end))


@pytest.fixture
def years() -> xr.Dataset:
    return _years()


@pytest.fixture
def pix() -> xr.Dataset:
    return make_fake_dataset(ny=4, nx=5, drivers_on="pixel")  # 2021-03-01..2021-06-28


def _station(start: str = "2021-04-01", n: int = 10) -> pd.DataFrame:
    day = pd.date_range(start, periods=n)
    return pd.DataFrame(
        {"prcp": np.linspace(0, 9, n), "tmax": np.linspace(20, 29, n)}, index=day
    )


# ---------------------------------------------------------------------------------------------
# Another year's weather
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("drivers_on", ["pixel", "met", "series"])
def test_year_replacement_copies_the_source_days(drivers_on):
    ds = _years(drivers_on)
    scen = Scenario.weather_of_year(2022, *JULY_AUG)
    assert scen.variables == CHANGEABLE_DRIVERS
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScenarioClipWarning)  # a real year is physical
        out = scen.apply(ds)
    inside, source = _days(out, *JULY_AUG), _days(ds, "2022-07-01", "2022-08-31")
    for v in schema.DRIVERS:
        if v == "dayl":
            np.testing.assert_array_equal(out[v].values, ds[v].values)  # never replaced
        else:
            np.testing.assert_array_equal(inside[v].values, source[v].values)
        day = ds.day.values
        outside = (day < np.datetime64(JULY_AUG[0])) | (day > np.datetime64(JULY_AUG[1]))
        xr.testing.assert_equal(
            out[v].isel(day=outside).drop_vars(schema.GRID_MAPPING), ds[v].isel(day=outside)
        )
        assert out[v].dtype == ds[v].dtype and out[v].dims == ds[v].dims
    assert not np.array_equal(inside["tmax"].values, _days(ds, *JULY_AUG)["tmax"].values)
    np.testing.assert_array_equal(out.day.values, ds.day.values)


def test_year_replacement_one_variable_and_open_window(years):
    out = Scenario.weather_of_year(2022, variables="prcp").apply(years)
    for a, b in (("2023-05-10", "2022-05-10"), ("2021-12-31", "2022-12-31"),
                 ("2024-01-15", "2022-01-15")):
        np.testing.assert_array_equal(out["prcp"].sel(day=a), years["prcp"].sel(day=b))
    np.testing.assert_array_equal(out["tmax"].values, years["tmax"].values)


def test_leap_day_takes_28_february(years):
    to_plain = Scenario.weather_of_year(2023, "2024-02-27", "2024-03-01", variables="tmax")
    out = to_plain.apply(years)["tmax"]
    for target, source in (("2024-02-28", "2023-02-28"), ("2024-02-29", "2023-02-28"),
                           ("2024-03-01", "2023-03-01")):
        np.testing.assert_array_equal(out.sel(day=target), years["tmax"].sel(day=source))
    from_leap = Scenario.weather_of_year(2024, "2023-02-27", "2023-03-01", variables="tmax")
    out = from_leap.apply(years)["tmax"]
    for target, source in (("2023-02-28", "2024-02-28"), ("2023-03-01", "2024-03-01")):
        np.testing.assert_array_equal(out.sel(day=target), years["tmax"].sel(day=source))


def test_missing_year_raises(years):
    with pytest.raises(ScenarioError, match=r"of 2019.*\(2021-03-01\.\.2024-03-04\).*2019"):
        Scenario.weather_of_year(2019, *JULY_AUG).apply(years)
    # 2021 is only partly there: January 2021 is missing
    partial = Scenario.weather_of_year(2021, "2022-01-01", "2022-03-31", variables="prcp")
    with pytest.raises(ScenarioError, match=r"lacks 59 of the days of 2021 needed "
                                            r"\(2021-01-01\.\.2021-02-28\)"):
        partial.apply(years)


def test_year_replacement_in_a_region(years):
    scen = Scenario.weather_of_year(2022, *JULY_AUG, variables="srad", region=PIXEL_BOX)
    out = scen.apply(years)["srad"]
    changed = (out != years["srad"]).any("day").values
    assert changed[:2, :2].all() and changed.sum() == 4
    np.testing.assert_array_equal(
        _days(out, *JULY_AUG).values[:, :2, :2],
        _days(years["srad"], "2022-07-01", "2022-08-31").values[:, :2, :2],
    )


def test_year_replacement_is_identity_inside_its_own_year(years):
    scen = Scenario.weather_of_year(2022, "2022-03-01", "2022-05-31")
    assert scen.is_identity
    assert not Scenario.weather_of_year(2022, *JULY_AUG).is_identity
    out = scen.apply(years)
    for v in CHANGEABLE_DRIVERS:
        np.testing.assert_array_equal(out[v].values, years[v].values)


def test_year_replacement_validation():
    with pytest.raises(ScenarioError, match=r"YearReplacement\.variable: 'dayl'"):
        YearReplacement("dayl", 2021)
    with pytest.raises(ScenarioError, match=r"YearReplacement\.variable: unknown driver 'wind'"):
        Scenario.weather_of_year(2021, variables=["wind"])
    with pytest.raises(ScenarioError, match=r"YearReplacement\.year: expected a whole year"):
        YearReplacement("prcp", 2021.5)
    with pytest.raises(ScenarioError, match=r"YearReplacement\.end: .*before"):
        YearReplacement("prcp", 2021, "2022-08-01", "2022-07-01")
    assert YearReplacement("prcp", np.int64(2021)).year == 2021
    assert type(YearReplacement("prcp", 2021.0).year) is int


# ---------------------------------------------------------------------------------------------
# A user's own series
# ---------------------------------------------------------------------------------------------


def _check_station_applied(out: xr.Dataset, ds: xr.Dataset, station: pd.DataFrame) -> None:
    for v in station.columns:
        got = out[v].sel(day=station.index)
        expected = station[v].to_numpy(dtype="float32")
        expected = expected.reshape((-1,) + (1,) * (got.ndim - 1))
        np.testing.assert_array_equal(got.values, np.broadcast_to(expected, got.shape))
        others = ~out.day.isin(station.index)
        np.testing.assert_array_equal(out[v].sel(day=others).values, ds[v].sel(day=others).values)
        assert out[v].dtype == ds[v].dtype


@pytest.mark.parametrize("drivers_on", ["pixel", "met", "series"])
def test_series_from_dataframe(drivers_on):
    ds = make_fake_dataset(ny=4, nx=5, drivers_on=drivers_on)
    station = _station()
    out = Scenario.from_series(station).apply(ds)
    _check_station_applied(out, ds, station)
    for v in ("tmin", "srad", "vp", "dayl", "swe"):
        np.testing.assert_array_equal(out[v].values, ds[v].values)


def test_series_from_xarray_and_named_series(pix):
    station = _station()
    as_ds = xr.Dataset(
        {v: ("time", station[v].to_numpy()) for v in station}, coords={"time": station.index}
    )
    expected = Scenario.from_series(station)
    assert Scenario.from_series(as_ds) == expected
    assert Scenario.from_series(station.rename_axis("day").to_xarray()) == expected
    da = as_ds["prcp"]
    assert Scenario.from_series(da).changes == expected.changes[:1]
    assert Scenario.from_series(station["tmax"]).changes == expected.changes[1:]
    unnamed = pd.Series(station["prcp"].to_numpy(), index=station.index)
    assert Scenario.from_series(unnamed, variables="prcp").changes == expected.changes[:1]
    with pytest.raises(ScenarioError, match="has no name"):
        Scenario.from_series(unnamed)
    with pytest.raises(ScenarioError, match="must be 1-D over 'day'.*method='nearest'"):
        Scenario.from_series(pix[["tmax"]])
    _check_station_applied(Scenario.from_series(as_ds).apply(pix), pix, station)


def test_series_from_csv_file(tmp_path, pix):
    station = _station()
    path = tmp_path / "ames_station.csv"
    # unsorted rows, a date column, an empty swe column
    rows = station.iloc[::-1].rename_axis("Date").reset_index()
    rows["swe"] = np.nan
    rows.to_csv(path, index=False, date_format="%Y-%m-%d")
    scen = Scenario.from_series(path)
    assert scen.name == "ames_station"
    assert scen.variables == ("prcp", "tmax")  # the empty swe column is skipped
    assert scen == Scenario.from_series(str(path), name="ames_station")
    assert scen.changes == Scenario.from_series(station).changes
    _check_station_applied(scen.apply(pix), pix, station)
    with pytest.raises(ScenarioError, match="no column.*swe"):
        Scenario.from_series(path, variables=["prcp", "vp"])
    with pytest.raises(ScenarioError, match="holds no value"):
        Scenario.from_series(path, variables="swe")
    with pytest.raises(ScenarioError, match="cannot read the CSV file"):
        Scenario.from_series(tmp_path / "missing.csv")
    (tmp_path / "nodate.csv").write_text("prcp,tmax\n1,20\n")
    with pytest.raises(ScenarioError, match="no date.*date / day / time"):
        Scenario.from_series(tmp_path / "nodate.csv")


def test_series_nan_keeps_the_data(pix):
    station = _station()
    station.iloc[3, 0] = np.nan  # prcp of 2021-04-04 unknown
    scen = Scenario.from_series(station)
    assert str(scen.changes[0]) == "prcp from series 2021-04-01..2021-04-10 (9 days)"
    out = scen.apply(pix)
    np.testing.assert_array_equal(
        out["prcp"].sel(day="2021-04-04").values, pix["prcp"].sel(day="2021-04-04").values
    )
    assert (out["tmax"].sel(day="2021-04-04").values == np.float32(23.0)).all()


def test_series_keeps_missing_data_values(pix):
    pix["prcp"][31, 0, 0] = np.nan  # 2021-04-01
    out = Scenario.from_series(_station()).apply(pix)
    assert np.isnan(out["prcp"][31, 0, 0])
    assert (out["prcp"].values[31].ravel()[1:] == 0).all()


def test_series_window_and_partial_cover(pix):
    station = _station("2021-06-20", n=20)  # runs past the data's end (2021-06-28)
    scen = Scenario.from_series(station, start="2021-06-25", variables="tmax")
    assert str(scen.changes[0]) == (
        "tmax from series 2021-06-25..2021-07-09 (15 days) [2021-06-25..]"
    )
    out = scen.apply(pix)
    np.testing.assert_array_equal(out["tmax"].sel(day=slice(None, "2021-06-24")).values,
                                  pix["tmax"].sel(day=slice(None, "2021-06-24")).values)
    assert (out["tmax"].sel(day="2021-06-28").values == np.float32(station["tmax"].iloc[8])).all()
    with pytest.raises(ScenarioError, match=r"has no day in the window 2022-01-01\.\."):
        Scenario.from_series(station, start="2022-01-01")


def test_series_in_a_region(pix):
    box = (440000.0, 4649960.0, 440030.0, 4650000.0)
    out = Scenario.from_series(_station(), variables="prcp", region=box).apply(pix)
    changed = (out["prcp"] != pix["prcp"]).any("day").values
    assert changed[:4, :3].all() and changed.sum() == 12


@pytest.mark.parametrize(
    ("data", "kwargs", "match"),
    [
        (_station().rename(columns={"prcp": "wind"}), {},
         r"unknown driver column\(s\) \['wind'\]; drivers are named prcp, tmax, tmin, srad, vp, "
         r"swe"),
        (_station(), {"variables": ["wind"]}, r"unknown driver 'wind'; use one of prcp, tmax"),
        (_station(), {"variables": "dayl"}, r"'dayl' .*astronomical"),
        (_station().assign(tmax=lambda d: d.tmax + 273.15), {}, r"tmax.*Kelvin.*273\.15"),
        (_station().assign(prcp=lambda d: d.prcp / 1000), {}, r"prcp.*metres.*1000"),
        (_station().assign(vp=900.0 / 1000), {}, r"vp.*kPa"),
        (_station().assign(prcp=-9999.0), {}, r"missing-value code"),
        (_station().assign(srad=2e7), {}, r"srad.*J / dayl"),
        (pd.concat([_station(n=3), _station(n=2)]), {}, r"duplicated date\(s\) 2021-04-01, "
                                                        r"2021-04-02"),
        (_station().assign(prcp="x"), {}, r"column 'prcp' holds non-numeric"),
        (_station().reset_index(drop=True), {}, r"no date"),
        ([1, 2, 3], {}, r"expected a pandas DataFrame"),
    ],
)
def test_from_series_rejects(data, kwargs, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario.from_series(data, **kwargs)


def test_series_without_overlap_raises(pix):
    scen = Scenario.from_series(_station("2019-04-01"))
    with pytest.raises(ScenarioError, match=r"covers none of the data's days: the series runs "
                                            r"2019-04-01\.\.2019-04-10, the data "
                                            r"2021-03-01\.\.2021-06-28"):
        scen.apply(pix)
    windowed = Scenario.from_series(_station(), end="2021-04-10") & Scenario(
        [SeriesReplacement("prcp", ("2021-05-01",), (1.0,), start="2021-05-02")]
    )
    with pytest.raises(ScenarioError, match=r"change 3 .*within the window 2021-05-02\.\."):
        windowed.apply(pix)


def test_series_replacement_validation():
    with pytest.raises(ScenarioError, match=r"not sorted"):
        SeriesReplacement("prcp", ("2022-07-02", "2022-07-01"), (1.0, 2.0))
    with pytest.raises(ScenarioError, match=r"duplicated date"):
        SeriesReplacement("prcp", ("2022-07-01", "2022-07-01T12:00"), (1.0, 2.0))
    with pytest.raises(ScenarioError, match=r"2 value\(s\) for 1 day"):
        SeriesReplacement("prcp", ("2022-07-01",), (1.0, 2.0))
    with pytest.raises(ScenarioError, match=r"missing or infinite.*2022-07-02"):
        SeriesReplacement("prcp", ("2022-07-01", "2022-07-02"), (1.0, float("nan")))
    with pytest.raises(ScenarioError, match=r"non-empty sequence"):
        SeriesReplacement("prcp", (), ())
    with pytest.raises(ScenarioError, match=r"SeriesReplacement\.variable: 'dayl'"):
        SeriesReplacement("dayl", ("2022-07-01",), (40000.0,))
    s = SeriesReplacement("tmax", [np.datetime64("2022-07-01")], [np.float32(20.5)])
    assert s.days == ("2022-07-01",) and s.values == (20.5,) and type(s.values[0]) is float
    pd.testing.assert_series_equal(
        s.to_series(), pd.Series([20.5], index=pd.DatetimeIndex(["2022-07-01"], name="day"),
                                 name="tmax")
    )


# ---------------------------------------------------------------------------------------------
# Composition, clipping, laziness, immutability
# ---------------------------------------------------------------------------------------------


def test_composition_with_warming(years):
    window = ("2023-07-01", "2023-07-31")
    other = Scenario.weather_of_year(2022, *window, variables=["tmax", "tmin"])
    with warnings.catch_warnings():  # 2022's warmer days under 2023's vp: nothing impossible
        warnings.simplefilter("error", ScenarioClipWarning)
        out = (other & Scenario.warming(2.0)).apply(years)
    source = _days(years, "2022-07-01", "2022-07-31")
    np.testing.assert_allclose(_days(out, *window)["tmax"], source["tmax"] + 2, rtol=1e-6)
    np.testing.assert_allclose(_days(out, *window)["tmin"], source["tmin"] + 2, rtol=1e-6)
    np.testing.assert_allclose(out["tmax"].sel(day="2023-09-01"),
                               years["tmax"].sel(day="2023-09-01") + 2, rtol=1e-6)


def test_composition_order_matters(years):
    window = ("2023-07-01", "2023-07-31")
    heat_2022 = Scenario.parse("tmax +5 from 2022-07-01 to 2022-07-31")
    other = Scenario.weather_of_year(2022, *window, variables="tmax")
    source = _days(years, "2022-07-01", "2022-07-31")["tmax"].values
    # the replacement reads 2022 as the changes before it left it ...
    first_heat = _days((heat_2022 & other).apply(years), *window)["tmax"].values
    np.testing.assert_allclose(first_heat, source + 5, rtol=1e-6)
    # ... and is not affected by changes after it that touch only 2022
    then_heat = _days((other & heat_2022).apply(years), *window)["tmax"].values
    np.testing.assert_array_equal(then_heat, source)
    station = _station()
    s = Scenario.from_series(station, variables="prcp")
    doubled = (s & Scenario.parse("prcp x2")).apply(years)["prcp"].sel(day=station.index)
    assert (doubled.values == 2 * station["prcp"].to_numpy(dtype="float32")[:, None, None]).all()
    replaced = (Scenario.parse("prcp x2") & s).apply(years)["prcp"].sel(day=station.index)
    assert (replaced.values == station["prcp"].to_numpy(dtype="float32")[:, None, None]).all()


def test_replacements_are_clipped(pix):
    cold = pd.Series(0.0, index=pd.date_range("2021-05-01", periods=5), name="tmax")
    with pytest.warns(ScenarioClipWarning, match=r"tmin: 100 value\(s\) above tmax"):
        out = Scenario.from_series(cold).apply(pix)
    assert (out["tmin"] <= out["tmax"]).all()
    assert (out["tmin"].sel(day=cold.index) == 0).all()


@pytest.mark.parametrize("drivers_on", ["pixel", "met", "series"])
def test_dask_stays_lazy_and_equals_numpy(drivers_on):
    ds = _years(drivers_on)
    region = None if drivers_on == "series" else (439900, 4649700, 440300, 4650100)
    scen = (
        Scenario.weather_of_year(2022, *JULY_AUG, region=region)
        & Scenario.from_series(_station("2023-08-20", n=20), region=region)
        & Scenario.warming(2.0)
    )
    lazy = ds.chunk({"day": 100})
    with dask.config.set(scheduler=_no_compute):
        out_lazy = _quiet_apply(scen, lazy)
    assert all(dask.is_dask_collection(out_lazy[v].data) for v in schema.DRIVERS)
    xr.testing.assert_identical(out_lazy.compute(), _quiet_apply(scen, ds))


def _quiet_apply(scen: Scenario, ds: xr.Dataset) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScenarioClipWarning)
        return scen.apply(ds)


@pytest.mark.parametrize("chunked", [False, True])
def test_input_never_modified(years, chunked):
    ds = years.chunk({"day": 200}) if chunked else years
    before = copy.deepcopy(ds)
    scen = Scenario.weather_of_year(2022, *JULY_AUG) & Scenario.from_series(_station("2023-07-05"))
    out = _quiet_apply(scen, ds)
    xr.testing.assert_identical(ds, before)
    assert "kgvsf_scenario" not in ds.attrs
    assert Scenario.from_json(out.attrs["kgvsf_scenario"]) == scen


def test_frozen_equal_and_hashable():
    a = Scenario.from_series(_station()) & Scenario.weather_of_year(2021, *JULY_AUG)
    b = Scenario.from_series(_station()) & Scenario.weather_of_year(2021, *JULY_AUG)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.changes[0].values = ()  # type: ignore[misc]
    assert a != Scenario.from_series(_station().assign(prcp=1.0)) & Scenario.weather_of_year(
        2021, *JULY_AUG
    )


# ---------------------------------------------------------------------------------------------
# JSON, text and display
# ---------------------------------------------------------------------------------------------


def _mixed() -> Scenario:
    station = _station()
    station.iloc[2, 1] = np.nan
    return (
        Scenario.weather_of_year(2021, "2022-07-01", "2022-08-31", variables=["prcp", "srad"],
                                 region=(-93.7, 41.9, -93.6, 42.0), region_crs="EPSG:4326")
        & Scenario.from_series(station, start="2021-04-02")
        & Scenario.parse("tmax +1.5 from 2022-07-01 to 2022-07-31")
    )


def test_json_round_trip_v2(tmp_path):
    scen = _mixed()
    path = tmp_path / "mixed.json"
    text = scen.to_json(path)
    assert Scenario.from_json(path) == scen
    assert Scenario.from_json(text) == scen
    data = json.loads(text)
    assert data["kgvsf_scenario_version"] == SCENARIO_FORMAT_VERSION == 2
    assert data["changes"][0] == {
        "variable": "prcp", "op": "from_year", "year": 2021, "start": "2022-07-01",
        "end": "2022-08-31", "region": {"bbox": [-93.7, 41.9, -93.6, 42.0], "crs": "EPSG:4326"},
    }  # fmt: skip
    series = data["changes"][2]
    assert series["op"] == "replace" and series["variable"] == "prcp"
    assert series["days"][:2] == ["2021-04-02", "2021-04-03"] and len(series["days"]) == 9
    assert series["values"][:2] == [1.0, 2.0]
    assert data["changes"][3]["days"][1] == "2021-04-04"  # the NaN of 2021-04-03 is left out
    assert "NaN" not in text
    # only what needs version 2 is written as version 2
    assert Scenario.warming(2).to_dict()["kgvsf_scenario_version"] == 1


def test_v1_files_read_as_before():
    v1 = {
        "kgvsf_scenario_version": 1,
        "name": "hand-written",
        "changes": [
            {"variable": "tmax", "op": "offset", "value": 2, "start": "2022-07-01"},
            {"variable": "prcp", "op": "set", "value": 0, "region": {"bbox": [0, 0, 1, 1]}},
        ],
    }
    scen = Scenario.from_dict(v1)
    assert scen == Scenario(
        [Change("tmax", "offset", 2.0, start="2022-07-01"),
         Change("prcp", "set", 0.0, region=(0, 0, 1, 1))],
        name="hand-written",
    )
    assert scen.to_dict()["kgvsf_scenario_version"] == 1
    for path in SAMPLES.glob("*.json"):
        assert Scenario.from_json(path).to_json() == path.read_text()  # byte for byte
    for name in ("drought_july_heat.json", "warming_2c.json"):
        assert json.loads((SAMPLES / name).read_text())["kgvsf_scenario_version"] == 1


def test_example_file_weather_of_2021():
    scen = Scenario.from_json(SAMPLES / "weather_of_2021_july_aug.json")
    assert scen == Scenario.weather_of_year(
        2021, "2022-07-01", "2022-08-31", name="weather_of_2021_july_aug"
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"variable": "prcp", "op": "from_year", "year": 2021}, r"changes\[0\]: op 'from_year' "
                                                                r"needs kgvsf_scenario_version 2"),
        ({"variable": "prcp", "op": "replace", "days": ["2022-07-01"], "values": [1.0]},
         r"op 'replace' needs kgvsf_scenario_version 2"),
        ({"variable": "prcp", "op": "swap", "value": 1}, r"unknown op 'swap'.*from_year"),
    ],
)
def test_v1_files_cannot_hold_replacements(change, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario.from_dict({"kgvsf_scenario_version": 1, "changes": [change]})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"variable": "prcp", "op": "from_year"}, r"changes\[0\]: missing key.*year"),
        ({"variable": "prcp", "op": "from_year", "year": 2021, "value": 1},
         r"unknown key.*value"),
        ({"variable": "prcp", "op": "from_year", "year": "2021"},
         r"YearReplacement\.year: expected a whole year"),
        ({"variable": "prcp", "op": "replace", "days": "2022-07-01", "values": [1.0]},
         r"changes\[0\]\.days: expected a list"),
        ({"variable": "prcp", "op": "replace", "days": ["2022-07-01"], "values": [None]},
         r"expected numbers, got None"),
        ({"variable": "tmax", "op": "replace", "days": ["2022-07-01"], "values": [300.0]},
         r"Kelvin"),
        ({"variable": "prcp", "op": "from_year", "year": 2021, "region": {"box": 1}},
         r"changes\[0\]\.region: unknown key"),
    ],
)
def test_from_dict_rejects_bad_replacements(change, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario.from_dict({"kgvsf_scenario_version": 2, "changes": [change]})


def test_repr_str_and_html():
    scen = _mixed()
    text = repr(scen)
    assert text.startswith("Scenario('weather of 2021': prcp, srad from year 2021 ")
    assert "prcp, srad from year 2021 [2022-07-01..2022-08-31] in bbox(" in text
    assert "prcp from series 2021-04-02..2021-04-10 (9 days) [2021-04-02..]" in text
    assert "tmax from series 2021-04-02..2021-04-10 (8 days) [2021-04-02..]" in text
    assert "2.0," not in text and "21.0" not in text  # the values are not shown
    series = scen.changes[2]
    assert repr(series) == (
        "SeriesReplacement(variable='prcp', series=2021-04-02..2021-04-10 (9 days), "
        "start='2021-04-02', end=None, region=None, region_crs=None)"
    )
    assert repr(Scenario.weather_of_year(2021, *JULY_AUG)) == (
        "Scenario('weather of 2021': all from year 2021 [2023-07-01..2023-08-31])"
    )
    page = scen._repr_html_()
    assert page.count("<tr>") == 1 + len(scen.changes)
    assert "weather of 2021 (same calendar day)" in page
    assert "series 2021-04-02..2021-04-10 (9 days), mm/day" in page
    assert "<table>" in series._repr_html_() and "SeriesReplacement" in series._repr_html_()
    assert "weather of 2021" in scen.changes[0]._repr_html_()


def test_parse_year_form():
    a = Scenario.parse("prcp from year 2021 from 2022-07-01 to 2022-07-31")
    assert a.changes == (YearReplacement("prcp", 2021, "2022-07-01", "2022-07-31"),)
    b = Scenario.parse("ALL from year 2021 [2022-07-01..2022-08-31]")
    assert b.changes == Scenario.weather_of_year(2021, "2022-07-01", "2022-08-31").changes
    c = Scenario.parse("tmax, tmin from year 2012 in bbox(1, 2, 3, 4) crs EPSG:4326; prcp x0")
    assert [str(x) for x in c.changes] == [
        "tmax from year 2012 in bbox(1.0, 2.0, 3.0, 4.0) crs EPSG:4326",
        "tmin from year 2012 in bbox(1.0, 2.0, 3.0, 4.0) crs EPSG:4326",
        "prcp x0.0",
    ]
    assert Scenario(["all from year 2021"]).variables == CHANGEABLE_DRIVERS
    # the scenario's text reads back (without series or geometry regions)
    for scen in (a, b, c, Scenario.weather_of_year(2021) & Scenario.parse("tmax +1")):
        body = repr(scen).split(": ", 1)[1][:-1] if scen.name else repr(scen)[9:-1]
        assert Scenario.parse(*body.split("; ")).changes == scen.changes


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("all, prcp from year 2021", "'all' already means"),
        ("prcp, prcp from year 2021", "listed twice"),
        ("prcp from year 20x1", "whole year such as 2021"),
        ("prcp from year 2021 next", "unexpected 'next'"),
        ("dayl from year 2021", r"YearReplacement\.variable: 'dayl'"),
        ("prcp from series 2021-04-01..2021-04-10 (10 days)", "series has no text form"),
    ],
)
def test_parse_year_errors(text, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario.parse(text)


def test_change_parse_points_to_scenario_parse():
    with pytest.raises(ScenarioError, match="read it with Scenario.parse"):
        Change.parse("prcp from year 2021")
    with pytest.raises(ScenarioError, match=r"Change\.op: .*Scenario\.weather_of_year"):
        Change("prcp", "from_year", 2021)


def test_submodule_doctests():
    attempted = 0
    for info in pkgutil.iter_modules(scenario_package.__path__):
        module = importlib.import_module(f"{scenario_package.__name__}.{info.name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, info.name
        attempted += result.attempted
    assert attempted > 20


def test_json_examples_of_the_docs_load():
    docs = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"
    blocks = [b.split("```", 1)[0] for b in docs.read_text().split("```json")[1:]]
    versions = set()
    for block in blocks:
        data = json.loads(block)
        scen = Scenario.from_dict(data)
        assert scen.to_dict()["kgvsf_scenario_version"] == data["kgvsf_scenario_version"]
        versions.add(data["kgvsf_scenario_version"])
    assert versions == {1, 2}
