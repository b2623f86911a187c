"""Weather into cube drivers: units, sub-daily aggregation, derived variables and gaps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from kgvsf_explore import schema
from kgvsf_explore.ingest import (
    IngestError,
    IngestWarning,
    daily_drivers,
    read_gridded,
    read_station_csv,
)
from kgvsf_explore.ingest.units import convert, norm_units, split_column
from kgvsf_explore.world.solar import day_length_s, saturation_vapour_pressure_pa

DAYS = pd.date_range("2022-06-01", periods=10, freq="D")


def _daily_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "date": DAYS.strftime("%Y-%m-%d"),
        "prcp (m)": np.linspace(0, 0.01, 10),
        "tmax (K)": np.full(10, 303.15),
        "tmin (K)": np.full(10, 288.15),
        "srad (MJ/m2)": np.full(10, 25.0),
        "vp (kPa)": np.full(10, 1.5),
    })


def _csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "station.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "quantity, value, units, want",
    [("tmax", 300.0, "K", 26.85), ("tmax", 86.0, "degF", 30.0), ("tmin", 5.0, "°C", 5.0),
     ("prcp", 0.012, "m", 12.0), ("prcp", 1.2, "cm", 12.0), ("prcp", 1.0, "in", 25.4),
     ("prcp", 1e-4, "kg m-2 s-1", 8.64), ("vp", 1.5, "kPa", 1500.0), ("vp", 15.0, "hPa", 1500.0),
     ("srad", 2.0, "MJ m-2", 2e6), ("srad", 2.0, "kJ/m2", 2e3), ("srad", 100.0, "W m-2", 100.0),
     ("dayl", 12.0, "h", 43200.0), ("swe", 0.01, "m", 10.0), ("rh", 0.5, "1", 50.0)],
)
def test_unit_conversions(quantity: str, value: float, units: str, want: float) -> None:
    got, _ = convert(quantity, np.float64(value), units)
    assert got == pytest.approx(want, rel=1e-6)


def test_unknown_and_absent_units() -> None:
    with pytest.raises(IngestError, match=r"unknown units 'furlongs' for 'prcp'.*accepted"):
        convert("prcp", 1.0, "furlongs")
    with pytest.raises(IngestError, match=r"no units for 'tmax'.*units=\{'tmax'"):
        convert("tmax", 1.0, None)


def test_header_units() -> None:
    assert split_column("tmax (K)") == ("tmax", "K")
    assert split_column("prcp [mm]") == ("prcp", "mm")
    assert split_column("prcp_mm") == ("prcp", "mm")
    assert norm_units("J m**-2") == "j/m2"


def test_daily_station_csv(tmp_path: Path) -> None:
    raw = read_station_csv(_csv(tmp_path, _daily_frame()))
    d = daily_drivers(raw, lat=42.0)
    assert list(d.data_vars) == list(schema.DRIVERS)
    assert d.sizes == {"day": 10}
    np.testing.assert_allclose(d["tmax"].values, 30.0, atol=1e-4)
    np.testing.assert_allclose(d["prcp"].values[-1], 10.0, rtol=1e-5)
    np.testing.assert_allclose(d["vp"].values, 1500.0)
    dayl = day_length_s(42.0, DAYS.day_of_year.values)
    np.testing.assert_allclose(d["dayl"].values, dayl, rtol=1e-5)
    np.testing.assert_allclose(d["srad"].values, 25e6 / dayl, rtol=1e-5)
    assert (d["swe"].values == 0).all()  # 30 degC: no snow
    derived = json.loads(d.attrs["kgvsf_weather_derived"])
    assert "latitude" in derived["dayl"] and "degree-day" in derived["swe"]
    assert all(d[v].attrs["units"] == schema.DRIVER_UNITS[v] for v in schema.DRIVERS)


def test_units_mapping_overrides_and_missing_units(tmp_path: Path) -> None:
    f = _daily_frame().rename(columns={"tmax (K)": "tmax", "tmin (K)": "tmin"})
    path = _csv(tmp_path, f)
    # named as the cube names them, so taken in degC, but 303 cannot be degC
    with pytest.raises(IngestError, match="tmax has no units.*looks like Kelvin"):
        daily_drivers(read_station_csv(path), lat=42.0)
    d = daily_drivers(read_station_csv(path, units={"tmax": "K", "tmin": "K"}), lat=42.0)
    np.testing.assert_allclose(d["tmin"].values, 15.0, atol=1e-4)


def test_dewpoint_and_rh(tmp_path: Path) -> None:
    f = _daily_frame().drop(columns="vp (kPa)")
    f["tdew (degC)"] = 10.0
    d = daily_drivers(read_station_csv(_csv(tmp_path, f)), lat=42.0)
    np.testing.assert_allclose(d["vp"].values, 1228.0, rtol=2e-3)  # FAO-56: e0(10) = 1.228 kPa
    assert "eq. 14" in json.loads(d.attrs["kgvsf_weather_derived"])["vp"]
    f = f.drop(columns="tdew (degC)")
    f["rh (%)"] = 50.0
    d = daily_drivers(read_station_csv(_csv(tmp_path, f)), lat=42.0)
    es = (saturation_vapour_pressure_pa(30.0) + saturation_vapour_pressure_pa(15.0)) / 2
    np.testing.assert_allclose(d["vp"].values, 0.5 * es, rtol=1e-4)


def test_hourly_aggregation(tmp_path: Path) -> None:
    hours = pd.date_range("2022-06-01", periods=24 * 3, freq="h")
    temp = 290.0 + 10 * np.sin(np.arange(hours.size) / 24 * 2 * np.pi)
    f = pd.DataFrame({"time": hours, "t2m (K)": temp, "tp (m)": 0.0005,
                      "ssrd (J m-2)": 1e6, "d2m (K)": 283.15})
    d = daily_drivers(read_station_csv(_csv(tmp_path, f)), lat=42.0)
    assert d.sizes["day"] == 3
    np.testing.assert_allclose(d["prcp"].values, 12.0, rtol=1e-5)  # 24 x 0.5 mm: a sum
    np.testing.assert_allclose(d["tmax"].values[0], temp[:24].max() - 273.15, rtol=1e-5)
    np.testing.assert_allclose(d["tmin"].values[0], temp[:24].min() - 273.15, rtol=1e-5)
    dayl = d["dayl"].values
    np.testing.assert_allclose(d["srad"].values, 24e6 / dayl, rtol=1e-5)  # daily total / dayl
    np.testing.assert_allclose(d["vp"].values, 1228.0, rtol=2e-3)
    assert d.attrs["kgvsf_weather_subdaily"] == 1


def test_hourly_flux_is_daylight_mean() -> None:
    t = pd.date_range("2022-06-01", periods=48, freq="h")
    raw = xr.Dataset({
        "prcp": ("time", np.zeros(48), {"units": "mm"}),
        "temp": ("time", np.full(48, 20.0), {"units": "degC"}),
        "srad": ("time", np.full(48, 200.0), {"units": "W m-2"}),
        "vp": ("time", np.full(48, 1000.0), {"units": "Pa"}),
    }, coords={"time": t})
    d = daily_drivers(raw, lat=42.0)
    np.testing.assert_allclose(d["srad"].values, 200.0 * 86400 / d["dayl"].values, rtol=1e-5)


def test_short_gaps_filled_long_refused(tmp_path: Path) -> None:
    f = _daily_frame()
    f.loc[3:5, "tmax (K)"] = np.nan  # 3 days
    f = f.drop(index=7)  # a missing row
    f.loc[8, "tmax (K)"] = 305.15
    d = daily_drivers(read_station_csv(_csv(tmp_path, f)), lat=42.0)
    filled = json.loads(d.attrs["kgvsf_weather_filled_days"])
    assert filled["tmax"] == ["2022-06-04", "2022-06-05", "2022-06-06", "2022-06-08"]
    assert "2022-06-08" in filled["prcp"]
    np.testing.assert_allclose(d["tmax"].values[7], 31.0, atol=1e-4)  # between 30 and 32
    f = _daily_frame()
    f.loc[2:5, "srad (MJ/m2)"] = np.nan  # 4 days
    with pytest.raises(IngestError, match=r"srad 2022-06-03\.\.2022-06-06 \(4 days\)"):
        daily_drivers(read_station_csv(_csv(tmp_path, f)), lat=42.0)


def test_missing_variable_named(tmp_path: Path) -> None:
    """prcp and the temperatures are needed (srad and vp are estimated when absent)."""
    f = _daily_frame().drop(columns=[c for c in _daily_frame().columns if "prcp" in c])
    with pytest.raises(IngestError, match=r"lacks \['prcp'\].*srad and vp are estimated"):
        daily_drivers(read_station_csv(_csv(tmp_path, f)), lat=42.0)


def test_era5_like_netcdf(tmp_path: Path) -> None:
    hours = pd.date_range("2022-06-01", periods=48, freq="h")
    lat, lon = np.array([42.1, 42.0, 41.9]), np.array([-93.7, -93.6, -93.5])
    shape = (48, 3, 3)
    ds = xr.Dataset({
        "t2m": (("valid_time", "latitude", "longitude"), np.full(shape, 295.0), {"units": "K"}),
        "d2m": (("valid_time", "latitude", "longitude"), np.full(shape, 283.15), {"units": "K"}),
        "tp": (("valid_time", "latitude", "longitude"), np.full(shape, 1e-4), {"units": "m"}),
        "ssrd": (("valid_time", "latitude", "longitude"), np.full(shape, 1e6),
                 {"units": "J m**-2"}),
    }, coords={"valid_time": hours, "latitude": lat, "longitude": lon})
    ds.to_netcdf(tmp_path / "era5.nc")
    raw = read_gridded(tmp_path / "era5.nc")
    d = daily_drivers(raw)
    assert d["tmax"].dims == ("day", "y", "x")
    np.testing.assert_allclose(d["prcp"].values, 2.4, rtol=1e-5)
    np.testing.assert_allclose(d["tmax"].values, 21.85, rtol=1e-5)
    # day length differs per latitude row
    assert d["dayl"].values[0, 0, 0] > d["dayl"].values[0, 2, 0]


def test_swe_absent_from_the_record_is_estimated_by_a_degree_day_model(tmp_path: Path) -> None:
    f = _daily_frame()
    cols = {c.split(" ")[0]: c for c in f.columns}
    # five freezing days with 10 mm each, then a thaw at +4 degC mean
    f[cols["tmax"]] = [271.15] * 5 + [281.15] * 5
    f[cols["tmin"]] = [265.15] * 5 + [273.15] * 5
    f[cols["prcp"]] = np.full(10, 0.01) if "(m)" in cols["prcp"] else np.full(10, 10.0)
    with pytest.warns(IngestWarning, match="no swe: estimated"):
        d = daily_drivers(read_station_csv(_csv(tmp_path, f)), lat=42.0)
    swe = d["swe"].values
    np.testing.assert_allclose(swe[:5], [10, 20, 30, 40, 50], rtol=1e-5)  # snow piles up
    np.testing.assert_allclose(swe[5:], [40, 30, 20, 10, 0], atol=1e-4)  # melts 10 a day
    assert "degree-day" in json.loads(d.attrs["kgvsf_weather_estimated"])["swe"]
    assert "degree-day" in d["swe"].attrs["kgvsf_derived"]

