"""Tests of kgvsf_explore.scenario: building, (de)serialising and applying weather scenarios."""

from __future__ import annotations

import copy
import dataclasses
import doctest
import json
import os
import warnings
from pathlib import Path

import dask
import numpy as np
import pytest
import shapely
import xarray as xr
from conftest import make_fake_dataset
from pyproj import Transformer

from kgvsf_explore import scenario as scenario_module
from kgvsf_explore import schema
from kgvsf_explore.cube.regrid import drivers_on_pixels
from kgvsf_explore.errors import ScenarioClipWarning, ScenarioError
from kgvsf_explore.scenario import Change, Scenario, saturation_vapour_pressure

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples" / "scenarios"

# The fake dataset's grids (see conftest.make_fake_dataset): 10 m pixels with centres at
# x = 440005 + 10 i (i < 20), y = 4649995 - 10 j (j < 16); a met grid with 80 m spacing and
# centres x_met in {439920, 440000, ..., 440240}, y_met in {4650080, 4650000, ..., 4649760}.
PIXEL_BOX = (440000.0, 4649900.0, 440100.0, 4650000.0)  # 10 x 10 pixel centres


def _no_compute(*args, **kwargs):
    raise AssertionError("the scenario computed dask data")


@pytest.fixture
def pix() -> xr.Dataset:
    return make_fake_dataset(drivers_on="pixel")


@pytest.fixture
def met() -> xr.Dataset:
    return make_fake_dataset(drivers_on="met")


@pytest.fixture
def series() -> xr.Dataset:
    return make_fake_dataset(drivers_on="series")


def _apply_quiet(scen: Scenario, obj) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScenarioClipWarning)
        return scen.apply(obj)


# ---------------------------------------------------------------------------------------------
# Applying over the whole period
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("drivers_on", ["pixel", "met", "series"])
def test_offset_scale_set_whole_period(drivers_on):
    ds = make_fake_dataset(drivers_on=drivers_on)
    out = Scenario.parse("tmax +3", "srad x0.5", "swe =10").apply(ds)
    np.testing.assert_allclose(out["tmax"].values, ds["tmax"].values + 3, rtol=1e-6)
    np.testing.assert_allclose(out["srad"].values, ds["srad"].values * 0.5, rtol=1e-6)
    assert (out["swe"].values == 10).all()
    for v in ("prcp", "tmin", "vp", "dayl"):
        np.testing.assert_array_equal(out[v].values, ds[v].values)
    assert set(out.data_vars) == set(schema.DRIVERS)
    assert all(out[v].dtype == np.float32 for v in schema.DRIVERS)
    assert out["tmax"].dims == ds["tmax"].dims
    assert out["tmax"].attrs == ds["tmax"].attrs
    assert Scenario.from_json(out.attrs["kgvsf_scenario"]) == Scenario.parse(
        "tmax +3", "srad x0.5", "swe =10"
    )


def test_set_keeps_missing_values(pix):
    pix["prcp"][0, 0, 0] = np.nan
    out = Scenario.parse("prcp =2").apply(pix)
    assert np.isnan(out["prcp"][0, 0, 0])
    assert (out["prcp"].values[1:] == 2).all()


def test_window_changes_only_days_inside(pix):
    scen = Scenario.parse("tmax -2 from 2021-04-01 to 2021-04-10")
    out = scen.apply(pix)
    inside = (pix.day >= np.datetime64("2021-04-01")) & (pix.day <= np.datetime64("2021-04-10"))
    assert int(inside.sum()) == 10
    diff = (out["tmax"] - pix["tmax"]).values
    np.testing.assert_allclose(diff[inside.values], -2, rtol=1e-6)
    np.testing.assert_array_equal(out["tmax"].values[~inside.values], pix["tmax"].values[~inside])


def test_open_window(pix):
    out = Scenario([Change("srad", "scale", 0.0, start="2021-06-01")]).apply(pix)
    after = (pix.day >= np.datetime64("2021-06-01")).values
    assert (out["srad"].values[after] == 0).all()
    np.testing.assert_array_equal(out["srad"].values[~after], pix["srad"].values[~after])


def test_window_matching_no_day_raises(pix):
    scen = Scenario.parse("tmax +1 from 2022-07-01 to 2022-07-31")
    with pytest.raises(ScenarioError, match=r"2022-07-01\.\.2022-07-31.*2021-03-01\.\.2021-06-28"):
        scen.apply(pix)


# ---------------------------------------------------------------------------------------------
# Regions
# ---------------------------------------------------------------------------------------------


def test_region_bbox_on_pixel_grid(pix):
    out = Scenario([Change("prcp", "set", 5.0, region=PIXEL_BOX)]).apply(pix)
    inside = np.zeros((16, 20), bool)
    inside[:10, :10] = True
    assert (out["prcp"].values[:, inside] == 5).all()
    np.testing.assert_array_equal(out["prcp"].values[:, ~inside], pix["prcp"].values[:, ~inside])


def test_region_and_window_together(pix):
    scen = Scenario([Change("tmax", "offset", 4.0, "2021-03-05", "2021-03-06", region=PIXEL_BOX)])
    diff = (scen.apply(pix)["tmax"] - pix["tmax"]).values
    changed = diff != 0
    assert changed.sum() == 2 * 10 * 10
    assert changed[4:6, :10, :10].all()


def test_region_bbox_on_met_grid(met):
    box = (439990.0, 4649990.0, 440090.0, 4650010.0)  # x_met 440000, 440080; y_met 4650000
    out = Scenario([Change("tmax", "offset", 1.5, region=box)]).apply(met)
    diff = (out["tmax"] - met["tmax"]).values
    inside = np.zeros((met.sizes["y_met"], met.sizes["x_met"]), bool)
    inside[1, 1:3] = True
    np.testing.assert_allclose(diff[:, inside], 1.5, rtol=1e-5)
    assert (diff[:, ~inside] == 0).all()


def test_small_region_on_met_grid_asks_for_pixel_drivers(met):
    scen = Scenario([Change("prcp", "scale", 0.0, region=(440010, 4649950, 440030, 4649970))])
    with pytest.raises(ScenarioError, match=r"pixel-grid drivers.*cube\.drivers"):
        scen.apply(met)
    out = scen.apply(drivers_on_pixels(met))  # on the pixel grid the same region works
    assert (out["prcp"].values[:, 3:5, 1:3] == 0).all()


def test_region_outside_pixel_grid_raises(pix):
    scen = Scenario([Change("prcp", "scale", 0.0, region=(0, 0, 10, 10))])
    with pytest.raises(ScenarioError, match="contains no cell centre"):
        scen.apply(pix)


def test_region_on_series_raises(series):
    scen = Scenario([Change("prcp", "scale", 0.0, region=PIXEL_BOX)])
    with pytest.raises(ScenarioError, match="region needs spatial drivers"):
        scen.apply(series)


def _utm_to_lonlat(geom):
    t = Transformer.from_crs("EPSG:32615", "EPSG:4326", always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def test_region_geometry_in_other_crs(pix):
    # An L-shaped polygon whose edges lie on pixel edges (5 m from every centre).
    utm = shapely.Polygon(
        [(440020, 4649980), (440120, 4649980), (440120, 4649940), (440060, 4649940),
         (440060, 4649880), (440020, 4649880)]
    )  # fmt: skip
    wkt = shapely.to_wkt(_utm_to_lonlat(utm), rounding_precision=-1)
    out = Scenario([Change("srad", "set", 0.0, region=wkt, region_crs="EPSG:4326")]).apply(pix)
    xx, yy = np.meshgrid(pix.x.values, pix.y.values)
    expected = shapely.contains_xy(utm, xx, yy)
    assert expected.sum() == 10 * 4 + 4 * 6
    assert (out["srad"].values[:, expected] == 0).all()
    np.testing.assert_array_equal(
        out["srad"].values[:, ~expected], pix["srad"].values[:, ~expected]
    )


def test_region_bbox_in_other_crs(pix):
    lon0, lat0, lon1, lat1 = _utm_to_lonlat(shapely.box(*PIXEL_BOX)).bounds
    # shrink slightly so the reprojected box stays within the pixel edges of PIXEL_BOX
    eps = 1e-6
    box = (lon0 + eps, lat0 + eps, lon1 - eps, lat1 - eps)
    out = Scenario([Change("prcp", "set", 5.0, region=box, region_crs=4326)]).apply(pix)
    changed = (out["prcp"] != pix["prcp"]).any("day").values
    assert changed[:10, :10].all()
    assert changed.sum() <= 12 * 12  # a lon/lat box is slightly rotated in UTM


def test_region_crs_without_data_crs_raises(pix):
    scen = Scenario([Change("prcp", "set", 0.0, region=PIXEL_BOX, region_crs="EPSG:32615")])
    with pytest.raises(ScenarioError, match="data has no CRS"):
        scen.apply(pix.drop_vars(schema.GRID_MAPPING))
    # a CRS in ds.attrs["crs"] works too
    out = scen.apply(pix.drop_vars(schema.GRID_MAPPING).assign_attrs(crs="EPSG:32615"))
    assert (out["prcp"].values[:, :10, :10] == 0).all()


class _FakeCube:
    """Stands in for kgvsf_explore.Cube: drivers on (day, y, x) and a .crs."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def drivers(self) -> xr.Dataset:
        return drivers_on_pixels(self._ds)

    @property
    def crs(self) -> str:
        return self._ds[schema.GRID_MAPPING].attrs["crs_wkt"]


def test_apply_to_cube_like_object(met):
    cube = _FakeCube(met)
    scen = Scenario([Change("tmax", "offset", 2.0, region=PIXEL_BOX, region_crs="EPSG:32615")])
    out = scen.apply(cube)
    assert out["tmax"].dims == ("day", "y", "x")
    diff = (out["tmax"] - cube.drivers["tmax"]).values
    np.testing.assert_allclose(diff[:, :10, :10], 2.0, rtol=1e-5)
    assert (diff[:, 10:, :] == 0).all()


def test_apply_rejects_other_objects(pix):
    with pytest.raises(ScenarioError, match=r"to_dataset"):
        Scenario.parse("tmax +1").apply(pix["tmax"])
    with pytest.raises(ScenarioError, match="no driver variable"):
        Scenario.parse("tmax +1").apply(pix[["B04"]])
    with pytest.raises(ScenarioError, match="targets 'swe'"):
        Scenario.parse("swe =0").apply(pix.drop_vars("swe"))


# ---------------------------------------------------------------------------------------------
# Composition, identity, immutability, laziness
# ---------------------------------------------------------------------------------------------


def test_composition_order(pix):
    a, b = Scenario.parse("prcp x0.5", name="a"), Scenario.parse("prcp +1", name="b")
    ab, ba = (a & b), (b & a)
    assert ab.name == "a & b" and ba.name == "b & a"
    assert ab.changes == a.changes + b.changes
    p = pix["prcp"].values
    np.testing.assert_allclose(ab.apply(pix)["prcp"].values, p * 0.5 + 1, rtol=1e-6)
    np.testing.assert_allclose(ba.apply(pix)["prcp"].values, (p + 1) * 0.5, rtol=1e-6)
    assert not np.allclose(ab.apply(pix)["prcp"].values, ba.apply(pix)["prcp"].values)
    assert (Scenario.parse("tmax +1") & a).name == "a"


def test_identity(pix):
    for scen in (Scenario(), Scenario.parse("tmax +0", "prcp x1")):
        assert scen.is_identity
        out = scen.apply(pix)
        for v in schema.DRIVERS:
            xr.testing.assert_identical(out[v].drop_vars(schema.GRID_MAPPING), pix[v])
    assert out[schema.GRID_MAPPING].attrs == pix[schema.GRID_MAPPING].attrs  # CRS kept as coord
    assert not Scenario.parse("prcp =0").is_identity


@pytest.mark.parametrize("drivers_on", ["pixel", "met", "series"])
def test_input_never_mutated(drivers_on):
    ds = make_fake_dataset(drivers_on=drivers_on)
    before = copy.deepcopy(ds)
    region = None if drivers_on == "series" else (439900, 4649700, 440300, 4650100)
    scen = Scenario.parse("tmin +20", "prcp -100", "vp x3") & Scenario(
        [Change("srad", "set", 0, start="2021-04-01", region=region)]
    )
    out = _apply_quiet(scen, ds)
    xr.testing.assert_identical(ds, before)
    assert "kgvsf_scenario" not in ds.attrs and "kgvsf_scenario" in out.attrs
    assert not out["tmin"].equals(ds["tmin"])


def test_frozen_and_hashable():
    scen = Scenario.parse("tmax +1", name="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        scen.name = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        scen.changes[0].value = 2.0  # type: ignore[misc]
    geom = shapely.box(*PIXEL_BOX)
    assert len({scen, Scenario.parse("tmax +1", name="x")}) == 1
    assert hash(Change("prcp", "set", 0, region=geom)) == hash(
        Change("prcp", "set", 0, region=geom)
    )


@pytest.mark.parametrize("drivers_on", ["pixel", "met"])
def test_dask_stays_lazy_and_equals_numpy(drivers_on):
    ds = make_fake_dataset(drivers_on=drivers_on)
    lazy = ds.chunk({"day": 30})
    scen = Scenario.parse("tmax -15", "tmin +5", "prcp -3", "vp x2") & Scenario(
        [Change("srad", "scale", 2.0, start="2021-04-01", end="2021-05-01", region=PIXEL_BOX)]
    )
    with dask.config.set(scheduler=_no_compute), warnings.catch_warnings():
        warnings.simplefilter("error", ScenarioClipWarning)  # dask clips silently
        out_lazy = scen.apply(lazy)
    assert all(out_lazy[v].chunks is not None for v in schema.DRIVERS)
    with pytest.warns(ScenarioClipWarning):
        out_np = scen.apply(ds)
    xr.testing.assert_identical(out_lazy.compute(), out_np)


# ---------------------------------------------------------------------------------------------
# Clipping impossible results
# ---------------------------------------------------------------------------------------------


def test_clip_tmin_above_tmax(pix):
    with pytest.warns(ScenarioClipWarning, match=r"tmin: \d+ value\(s\) above tmax"):
        out = Scenario.parse("tmin +20").apply(pix)
    assert (out["tmin"] <= out["tmax"]).all()
    assert (out["tmin"] == out["tmax"]).any()
    assert out["vp"].dtype == out["tmin"].dtype == np.float32


def test_lowered_tmin_leaves_vp_alone(pix):
    """vp above e0(tmin) is possible (real daily means often are): not clipped."""
    out = Scenario.parse("tmin -15").apply(pix)
    assert (out["vp"] > saturation_vapour_pressure(out["tmin"])).any()
    np.testing.assert_array_equal(out["vp"].values, pix["vp"].values)


def test_clip_lowered_tmax_pulls_tmin_and_vp(pix):
    with pytest.warns(ScenarioClipWarning, match=r"vp: \d+ value\(s\) above e0\(tmax\)"):
        out = Scenario.parse("tmax -30").apply(pix)
    assert (out["tmin"] <= out["tmax"]).all()
    e_max = saturation_vapour_pressure(out["tmax"].astype("float64"))
    assert (out["vp"] <= e_max * (1 + 1e-6)).all()
    assert (out["vp"] < pix["vp"]).any()


def test_clip_negative_precipitation_and_warning(pix):
    with pytest.warns(ScenarioClipWarning, match=r"prcp: \d+ value\(s\) below 0"):
        out = Scenario.parse("prcp -100").apply(pix)
    assert (out["prcp"] >= 0).all()
    assert (out["prcp"] == 0).all()


def test_clip_vp_upper_bound(pix):
    with pytest.warns(ScenarioClipWarning, match=r"vp: \d+ value\(s\) above e0\(tmax\)"):
        out = Scenario.parse("vp x5").apply(pix)
    assert (out["vp"] <= saturation_vapour_pressure(out["tmax"])).all()
    assert (out["vp"] > saturation_vapour_pressure(out["tmin"])).any()


def test_no_warning_without_clipping(pix):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScenarioClipWarning)
        Scenario.parse("tmax +3", "tmin +1", "prcp x2").apply(pix)


def test_clipping_leaves_untouched_values_alone(pix):
    pix["tmin"][0] = pix["tmax"][0] + 1  # the input already breaks tmin <= tmax on day 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScenarioClipWarning)
        out = Scenario.parse("tmax +1 from 2021-03-10 to 2021-03-20").apply(pix)
    np.testing.assert_array_equal(out["tmin"].values, pix["tmin"].values)
    np.testing.assert_array_equal(out["vp"].values, pix["vp"].values)


# ---------------------------------------------------------------------------------------------
# JSON form
# ---------------------------------------------------------------------------------------------


def _full_scenario() -> Scenario:
    geom = shapely.Polygon([(-93.1, 41.9), (-93.0, 41.9), (-93.05, 42.0123456789)])
    return Scenario(
        (
            Change("tmax", "offset", 3.0, "2022-07-01", "2022-07-31"),
            Change("prcp", "scale", 0.0, region=(440000, 4649000, 441000, 4650000)),
            Change("vp", "set", 900.0, end="2022-01-01", region=geom, region_crs="EPSG:4326"),
        ),
        name="hot-dry",
    )


def test_json_round_trip(tmp_path):
    scen = _full_scenario()
    path = tmp_path / "s.json"
    text = scen.to_json(path)
    assert Scenario.from_json(path) == scen
    assert Scenario.from_json(str(path)) == scen
    assert Scenario.from_json(text) == scen
    assert Scenario.from_dict(json.loads(path.read_text())) == scen
    data = scen.to_dict()
    assert data["kgvsf_scenario_version"] == 1
    assert data["changes"][0] == {
        "variable": "tmax", "op": "offset", "value": 3.0, "start": "2022-07-01",
        "end": "2022-07-31", "region": None,
    }  # fmt: skip
    assert data["changes"][1]["region"] == {"bbox": [440000, 4649000, 441000, 4650000], "crs": None}
    assert data["changes"][2]["region"]["crs"] == "EPSG:4326"
    assert data["changes"][2]["region"]["wkt"].startswith("POLYGON")
    assert sorted(os.listdir(tmp_path)) == ["s.json"]


def test_to_json_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    Scenario.parse("tmax +1").to_json(path)
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)  # _atomic looks it up at call time
    with pytest.raises(OSError, match="disk full"):
        Scenario.parse("tmax +2").to_json(path)
    assert path.read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["s.json"]


def test_example_files_load():
    drought = Scenario.from_json(SAMPLES / "drought_july_heat.json")
    assert [(c.variable, c.op, c.value) for c in drought.changes] == [
        ("prcp", "set", 0.0), ("tmax", "offset", 3.0), ("tmin", "offset", 3.0),
    ]  # fmt: skip
    assert {(c.start, c.end) for c in drought.changes} == {("2022-06-15", "2022-08-15")}
    warming = Scenario.from_json(SAMPLES / "warming_2c.json")
    assert warming == Scenario.parse("tmax +2", "tmin +2", name=warming.name)
    for path in SAMPLES.glob("*.json"):
        assert json.loads(Scenario.from_json(path).to_json()) == json.loads(path.read_text())


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"kgvsf_scenario_version": 1, "changes": [], "colour": 1}, r"unknown key.*colour"),
        ({"changes": []}, "missing 'kgvsf_scenario_version'"),
        ({"kgvsf_scenario_version": 3, "changes": []}, "newer kgvsf_explore"),
        ({"kgvsf_scenario_version": "1", "changes": []}, "positive integer"),
        ({"kgvsf_scenario_version": 1, "changes": {}}, "expected a list"),
        (
            {"kgvsf_scenario_version": 1, "changes": [{"variable": "tmax", "op": "offset"}]},
            r"changes\[0\]: missing key.*value",
        ),
        (
            {
                "kgvsf_scenario_version": 1,
                "changes": [{"variable": "tmax", "op": "offset", "value": 1, "until": "x"}],
            },
            r"changes\[0\]: unknown key.*until",
        ),
        (
            {
                "kgvsf_scenario_version": 1,
                "changes": [
                    {"variable": "tmax", "op": "offset", "value": 1, "region": {"box": [0]}}
                ],
            },
            r"changes\[0\]\.region: unknown key.*box",
        ),
        (
            {
                "kgvsf_scenario_version": 1,
                "changes": [
                    {
                        "variable": "tmax",
                        "op": "offset",
                        "value": 1,
                        "region": {"bbox": [0, 0, 1, 1], "wkt": "POINT (0 0)"},
                    }
                ],
            },
            "exactly one of 'bbox' and 'wkt'",
        ),
        (
            {
                "kgvsf_scenario_version": 1,
                "changes": [{"variable": "tmax", "op": "offset", "value": "3"}],
            },
            r"changes\[0\]: Change\.value: expected a number",
        ),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_from_dict_rejects(data, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario.from_dict(data)


def test_from_json_bad_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        Scenario.from_json(bad)
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        Scenario.from_json(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------
# Text grammar and display
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tmax +3", Change("tmax", "offset", 3.0)),
        ("tmax -2.5", Change("tmax", "offset", -2.5)),
        ("prcp x0.5", Change("prcp", "scale", 0.5)),
        ("prcp *2", Change("prcp", "scale", 2.0)),
        ("prcp =0", Change("prcp", "set", 0.0)),
        ("tmin =-5", Change("tmin", "set", -5.0)),
        ("TMAX + 1e-1", Change("tmax", "offset", 0.1)),
        ("srad x.5 from 2022-07-01", Change("srad", "scale", 0.5, start="2022-07-01")),
        (
            "tmax +3 from 2022-07-01 to 2022-07-31",
            Change("tmax", "offset", 3.0, "2022-07-01", "2022-07-31"),
        ),
        (
            "tmax +3 [2022-07-01..2022-07-31]",
            Change("tmax", "offset", 3.0, "2022-07-01", "2022-07-31"),
        ),
        ("tmax +3 [..2022-07-31]", Change("tmax", "offset", 3.0, end="2022-07-31")),
        (
            "prcp x0 to 2022-08-01 in bbox(1, 2, 3, 4) crs EPSG:4326",
            Change("prcp", "scale", 0.0, end="2022-08-01", region=(1, 2, 3, 4), region_crs=4326),
        ),
    ],
)
def test_parse_grammar(text, expected):
    assert Change.parse(text) == expected
    assert Scenario.parse(text).changes == (expected,)
    assert Change.parse(str(expected)) == expected  # str() is parseable again


def test_parse_many_and_name():
    scen = Scenario.parse("tmax +3; prcp x0.5", "prcp =0\nvp x1.1", name="mix")
    assert [str(c) for c in scen.changes] == ["tmax +3.0", "prcp x0.5", "prcp =0.0", "vp x1.1"]
    assert scen.name == "mix"
    assert Scenario(["tmax +3"]) == Scenario.parse("tmax +3")
    assert Scenario.parse() == Scenario()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("tmax", "expected '<variable> <op><number>'"),
        ("tmax ^3", "expected '<variable> <op><number>'"),
        ("tmax +-3", "double sign"),
        ("tmax +3 next week", "unexpected 'next week'"),
        ("tmax +3 from 2022-01-01 from 2022-02-01", "given twice"),
        ("tmax +3 in bbox(1, 2, 3)", "4 comma-separated numbers"),
        ("tmax +3 crs EPSG:4326", "'crs' needs a region"),
        ("wind +3", "unknown driver 'wind'"),
        ("prcp x-1", "must be >= 0"),
    ],
)
def test_parse_errors(text, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario.parse(text)


def test_repr_and_html():
    scen = Scenario.parse(
        "tmax +3 from 2022-07-01 to 2022-07-31", "prcp x0 [2022-07-01..2022-07-31]", name="hot-dry"
    )
    window = "[2022-07-01..2022-07-31]"
    assert repr(scen) == f"Scenario('hot-dry': tmax +3.0 {window}; prcp x0.0 {window})"
    assert str(scen) == repr(scen)
    assert repr(Scenario()) == "Scenario(no changes)"
    page = _full_scenario()._repr_html_()
    assert page.count("<tr>") == 4 and "hot-dry" in page and "EPSG:4326" in page
    assert "identity" in Scenario()._repr_html_()


def test_module_doctests():
    result = doctest.testmod(scenario_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 10


# ---------------------------------------------------------------------------------------------
# Validation at construction
# ---------------------------------------------------------------------------------------------


_T = {"variable": "tmax", "op": "offset", "value": 1}  # a valid change to vary one field of
_BOWTIE = "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({**_T, "variable": "wind"}, r"Change\.variable: unknown.*prcp, tmax"),
        ({**_T, "variable": "dayl"}, r"Change\.variable: 'dayl'.*astronomical"),
        ({**_T, "op": "add"}, r"Change\.op: unknown.*offset, scale, set"),
        ({**_T, "value": float("nan")}, r"Change\.value: .*finite"),
        ({**_T, "value": float("inf")}, r"Change\.value: .*finite"),
        ({**_T, "value": None}, r"Change\.value: expected a number"),
        ({**_T, "value": True}, r"Change\.value: expected a number"),
        ({**_T, "value": 273.15}, r"Change\.value: .*units"),
        ({"variable": "prcp", "op": "scale", "value": -0.5}, r"Change\.value: .*must be >= 0"),
        ({"variable": "prcp", "op": "set", "value": -1}, r"Change\.value: .*cannot be negative"),
        ({"variable": "srad", "op": "set", "value": -1}, r"Change\.value: .*cannot be negative"),
        ({"variable": "swe", "op": "set", "value": -1}, r"Change\.value: .*cannot be negative"),
        ({"variable": "vp", "op": "set", "value": -1}, r"Change\.value: .*cannot be negative"),
        ({"variable": "tmax", "op": "set", "value": 300}, r"Change\.value: .*\[-80\.0, 65\.0\]"),
        ({"variable": "tmin", "op": "set", "value": -100}, r"Change\.value: .*\[-90\.0, 50\.0\]"),
        ({**_T, "start": "2022-08-01", "end": "2022-07-01"}, r"Change\.end: .*before.*swap"),
        ({**_T, "start": "someday"}, r"Change\.start: cannot read 'someday'"),
        ({**_T, "region": (1, 0, 0, 1)}, r"Change\.region: degenerate bbox"),
        ({**_T, "region": (0, 0, 1, 0)}, r"Change\.region: degenerate bbox"),
        ({**_T, "region": (0, 0, 1, float("nan"))}, r"Change\.region: a bbox must be 4 finite"),
        ({**_T, "region": (0, 0, 1)}, r"Change\.region: expected a bbox"),
        ({**_T, "region": "POLYGON ((0 0"}, r"Change\.region: cannot read the string as WKT"),
        ({**_T, "region": "POINT (0 0)"}, r"Change\.region: .*no area"),
        ({**_T, "region": _BOWTIE}, r"Change\.region: .*invalid.*make_valid"),
        ({**_T, "region_crs": "EPSG:4326"}, r"Change\.region_crs: given without a region"),
        ({**_T, "region": (0, 0, 1, 1), "region_crs": "EPSG:nope"}, r"Change\.region_crs: .*CRS"),
    ],
)
def test_change_validation(kwargs, match):
    with pytest.raises(ScenarioError, match=match):
        Change(**kwargs)


def test_change_normalisation():
    c = Change("tmax", "offset", np.float32(2), start="2022-07-01T15:00", end="20220731")
    assert (c.value, c.start, c.end) == (2.0, "2022-07-01", "2022-07-31")
    assert type(c.value) is float
    assert Change("tmax", "offset", 1, region=[0, 0, 1, 1]).region == (0.0, 0.0, 1.0, 1.0)
    assert Change("tmax", "offset", 1, region=(0, 0, 1, 1), region_crs=4326).region_crs == (
        "EPSG:4326"
    )
    wkt = Change("tmax", "offset", 1, region="POLYGON ((0 0, 1 0, 1 1, 0 0))")
    assert isinstance(wkt.region, shapely.Polygon)


def test_scenario_validation():
    with pytest.raises(ScenarioError, match=r"Scenario\.changes\[0\]: expected a Change"):
        Scenario((1,))  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match=r"Scenario\.name: expected a string"):
        Scenario((), name=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Scenario.parse("tmax +1") & 3  # noqa: B018


def test_named_constructors(fake_ds) -> None:
    dry = Scenario.dry_spell("2021-04-01", "2021-04-30")
    heat = Scenario.heat_wave("2021-04-10", "2021-04-20", delta=6.0)
    warm = Scenario.warming(2.0)
    wet = Scenario.rain_scaled(1.5)
    for s in (dry, heat, warm, wet):
        assert Scenario.from_dict(s.to_dict()) == s
    both = (dry & heat).apply(fake_ds)
    day = "2021-04-15"
    assert float(both["prcp"].sel(day=day).max()) == 0.0
    np.testing.assert_allclose(both["tmax"].sel(day=day), fake_ds["tmax"].sel(day=day) + 6.0,
                               rtol=1e-6)
    np.testing.assert_allclose(both["tmin"].sel(day=day), fake_ds["tmin"].sel(day=day) + 3.0,
                               rtol=1e-6)
    out = warm.apply(fake_ds)
    np.testing.assert_allclose(out["tmax"], fake_ds["tmax"] + 2.0, rtol=1e-6)
    assert warm.name == "+2.0 degC" and wet.name == "rain x1.5"
