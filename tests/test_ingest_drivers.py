"""Missing drivers estimated (never silently) and srad's time base detected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import kgvsf_explore as kx
from kgvsf_explore.ingest._errors import IngestWarning
from kgvsf_explore.ingest.estimate import (
    extraterrestrial_mj,
    hargreaves_srad,
    srad_from_et0,
    srad_time_base,
)
from kgvsf_explore.ingest.weather import daily_drivers, read_station_csv
from kgvsf_explore.world.solar import saturation_vapour_pressure_pa

LAT = 41.99


@pytest.fixture(scope="module")
def sample_weather() -> xr.Dataset:
    """The sample world's drivers averaged over its weather grid, two years."""
    ds = kx.open_cube(kx.sample_path()).ds
    names = ["prcp", "tmax", "tmin", "srad", "vp", "dayl", "swe"]
    return ds[names].mean(["y_met", "x_met"]).sel(day=slice("2021-01-01", "2022-12-31")).load()


def _csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "station.csv"
    frame.to_csv(path, index=False)
    return path


def test_hargreaves_is_fao56_eq50() -> None:
    ra = extraterrestrial_mj(LAT, np.array([182]))
    got = hargreaves_srad(30.0, 18.0, ra, 15 * 3600.0, krs=0.16)
    np.testing.assert_allclose(got, 0.16 * np.sqrt(12.0) * ra * 1e6 / (15 * 3600.0))
    # coastal kRs scales it, the clear-sky cap 0.75 Ra bounds it
    np.testing.assert_allclose(hargreaves_srad(30.0, 18.0, ra, 15 * 3600.0, krs=0.19),
                               got * 0.19 / 0.16)
    capped = hargreaves_srad(45.0, 0.0, ra, 15 * 3600.0)
    np.testing.assert_allclose(capped, 0.75 * ra * 1e6 / (15 * 3600.0))
    # Hargreaves & Samani's ET0 form inverted gives back the radiation it was computed from
    rs = 20.0  # MJ m-2
    et0 = 0.0135 * (24.0 + 17.8) * rs * 0.408
    np.testing.assert_allclose(srad_from_et0(et0, 30.0, 18.0, ra, 86400.0), rs * 1e6 / 86400.0,
                               rtol=1e-9)


def test_minimal_station_record_gets_estimated_drivers(tmp_path: Path,
                                                       sample_weather: xr.Dataset) -> None:
    """date, tmin, tmax, prcp only: srad and vp are estimated, warned about and recorded."""
    m = sample_weather
    frame = pd.DataFrame({"date": m.day.dt.strftime("%Y-%m-%d").values, "tmin": m.tmin.values,
                          "tmax": m.tmax.values, "prcp": m.prcp.values})
    with pytest.warns(IngestWarning) as record:
        d = daily_drivers(read_station_csv(_csv(tmp_path, frame)), lat=LAT)
    said = " ".join(str(w.message) for w in record)
    assert "no srad: estimated (Hargreaves" in said and "no vp: estimated" in said
    assert "no units given for ['prcp', 'tmax', 'tmin']" in said
    est = json.loads(d.attrs["kgvsf_weather_estimated"])
    assert set(est) == {"srad", "vp", "swe"} and "FAO-56 eq. 50" in est["srad"]
    # the degree-day snowpack follows the simulator's snow once the record has seen a winter
    # start (it begins snow-free on 1 January, when the simulator's snow has piled up since
    # autumn): measured r 0.76 over the two years, 0.99 from May of the first year on
    assert float(m.swe.max()) > 0
    assert np.corrcoef(d["swe"].values, m.swe.values)[0, 1] > 0.7
    assert np.corrcoef(d["swe"].values[120:], m.swe.values[120:])[0, 1] > 0.95
    assert "estimated" in d["srad"].attrs["kgvsf_derived"]
    np.testing.assert_allclose(d["vp"].values, saturation_vapour_pressure_pa(m.tmin.values),
                               rtol=1e-5)
    # the estimate follows the simulator's radiation: correlated, a similar mean
    r = np.corrcoef(d["srad"].values, m.srad.values)[0, 1]
    assert r > 0.5
    assert abs(float(d["srad"].mean()) / float(m.srad.mean()) - 1) < 0.25
    assert float(d["tmax"].mean()) == pytest.approx(float(m.tmax.mean()), rel=1e-5)
    with pytest.warns(IngestWarning):
        coastal = daily_drivers(read_station_csv(_csv(tmp_path, frame)), lat=LAT, krs=0.19)
    assert float(coastal["srad"].mean()) > float(d["srad"].mean())
    assert "kRs 0.19 (coastal)" in json.loads(coastal.attrs["kgvsf_weather_estimated"])["srad"]


def test_srad_from_et0_when_given(tmp_path: Path) -> None:
    days = pd.date_range("2022-06-01", periods=10)
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "tmin (degC)": 15.0,
                          "tmax (degC)": 29.0, "prcp (mm)": 0.0, "et0 (mm)": 6.0})
    with pytest.warns(IngestWarning, match="ET0"):
        d = daily_drivers(read_station_csv(_csv(tmp_path, frame)), lat=LAT)
    rs_mj = 6.0 / (0.0135 * (22.0 + 17.8)) / 0.408
    np.testing.assert_allclose(d["srad"].values * d["dayl"].values / 1e6, rs_mj, rtol=1e-4)


def test_24_hour_mean_srad_detected_and_converted(tmp_path: Path,
                                                  sample_weather: xr.Dataset) -> None:
    m = sample_weather
    doy = m.day.dt.dayofyear.values
    ra = extraterrestrial_mj(LAT, doy)
    assert srad_time_base(m.srad.values, m.dayl.values, ra)[0] == "daylight"
    flux24 = m.srad.values * m.dayl.values / 86400.0
    base, ratios = srad_time_base(flux24, m.dayl.values, ra)
    assert base == "24h" and ratios["p95_daylight"] < 0.5 < ratios["p95_24h"]
    frame = pd.DataFrame({"date": m.day.dt.strftime("%Y-%m-%d").values,
                          "tmin (degC)": m.tmin.values, "tmax (degC)": m.tmax.values,
                          "prcp (mm)": m.prcp.values, "srad (W/m2)": flux24,
                          "vp (Pa)": m.vp.values})
    with pytest.warns(IngestWarning, match="24-hour mean"):
        d = daily_drivers(read_station_csv(_csv(tmp_path, frame)), lat=LAT)
    np.testing.assert_allclose(d["srad"].values, m.srad.values, rtol=2e-3)
    assert "24 h mean" in json.loads(d.attrs["kgvsf_weather_derived"])["srad"]
    # said explicitly: kept as given
    d2 = daily_drivers(read_station_csv(_csv(tmp_path, frame)), lat=LAT, srad_mean="daylight")
    np.testing.assert_allclose(d2["srad"].values, flux24, rtol=1e-5)
    # a daylight-mean flux stays as it is, without a warning
    frame["srad (W/m2)"] = m.srad.values
    frame["swe (mm)"] = m.swe.values  # measured snow: nothing else to estimate
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", IngestWarning)
        d3 = daily_drivers(read_station_csv(_csv(tmp_path, frame)), lat=LAT)
    np.testing.assert_allclose(d3["srad"].values, m.srad.values, rtol=1e-5)


def test_validation_warns_about_a_24_hour_mean_srad() -> None:
    """Through the Python API (a cube built by hand): both time bases are in range, so only
    the comparison with the extraterrestrial radiation tells them apart."""
    import warnings

    from kgvsf_explore.cube.validate import CubeValidationWarning, validate_dataset

    ds = kx.open_cube(kx.sample_path()).ds
    with warnings.catch_warnings():
        warnings.simplefilter("error", CubeValidationWarning)
        validate_dataset(ds)  # the daylight mean: no warning
    bad = ds.assign(srad=ds["srad"] * ds["dayl"] / 86400.0)
    bad["srad"].attrs = ds["srad"].attrs
    with pytest.warns(CubeValidationWarning, match="24-hour mean.*86400 / ds\\['dayl'\\]"):
        validate_dataset(bad)
