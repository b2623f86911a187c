"""validate_dataset: every schema violation is reported, named, with a fix; checks stay cheap."""

from __future__ import annotations

import threading
import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import make_fake_dataset
from pyproj import CRS

from kgvsf_explore import schema
from kgvsf_explore.cube import validate_dataset
from kgvsf_explore.cube.validate import CubeValidationWarning
from kgvsf_explore.errors import CubeValidationError


def test_fake_dataset_is_valid(fake_ds):
    validate_dataset(fake_ds)
    validate_dataset(fake_ds, require_truth=True)


@pytest.mark.parametrize("drivers_on", ["met", "pixel", "series"])
def test_every_driver_layout_is_valid(drivers_on):
    validate_dataset(make_fake_dataset(drivers_on=drivers_on))


def test_missing_band_names_it_and_lists_present(fake_ds):
    with pytest.raises(CubeValidationError, match=r"missing band\(s\) \['B04'\]") as exc:
        validate_dataset(fake_ds.drop_vars("B04"))
    assert "B02" in str(exc.value)  # says which bands exist


def test_missing_driver_and_static(fake_ds):
    ds = fake_ds.drop_vars(["vp", schema.SOIL_TYPE])
    with pytest.raises(CubeValidationError, match=r"missing driver\(s\) \['vp'\]") as exc:
        validate_dataset(ds)
    assert "missing static layer(s) ['soil_type']" in str(exc.value)


def test_missing_truth_only_when_required(fake_ds):
    ds = fake_ds.drop_vars("B08_true")
    validate_dataset(ds)
    with pytest.raises(CubeValidationError, match="B08_true"):
        validate_dataset(ds, require_truth=True)


def test_wrong_dims_expected_vs_got(fake_ds):
    ds = fake_ds.copy()
    ds["B04"] = fake_ds["B04"].transpose("y", "x", "time")
    with pytest.raises(CubeValidationError, match=r"B04: dims \('y', 'x', 'time'\).*transpose"):
        validate_dataset(ds)
    ds = fake_ds.copy()
    ds[schema.CROP_TYPE] = fake_ds[schema.CROP_TYPE].isel(y=0)
    with pytest.raises(CubeValidationError, match=r"crop_type: wrong dims: expected \('y', 'x'\)"):
        validate_dataset(ds)


def test_non_monotonic_time(fake_ds):
    order = np.arange(fake_ds.sizes["time"])
    order[[3, 4]] = order[[4, 3]]
    with pytest.raises(CubeValidationError, match="'time' is not increasing.*sortby"):
        validate_dataset(fake_ds.isel(time=order))


def test_duplicated_time(fake_ds):
    order = np.r_[0, 0, np.arange(1, fake_ds.sizes["time"])]
    with pytest.raises(CubeValidationError, match="duplicated dates"):
        validate_dataset(fake_ds.isel(time=order))


def test_gap_in_day_names_first_missing_date(fake_ds):
    days = fake_ds.indexes["day"]
    ds = fake_ds.drop_sel(day=[days[10], days[11]])
    with pytest.raises(CubeValidationError, match=r"2 missing date\(s\), first missing 2021-03-11"):
        validate_dataset(ds)


def test_non_datetime_time_axis(fake_ds):
    ds = fake_ds.assign_coords(time=np.arange(fake_ds.sizes["time"]))
    with pytest.raises(CubeValidationError, match="'time' is not datetime64.*pd.to_datetime"):
        validate_dataset(ds)


def test_y_must_decrease(fake_ds):
    with pytest.raises(CubeValidationError, match="'y' must be strictly decreasing"):
        validate_dataset(fake_ds.sortby("y"))


def test_irregular_x(fake_ds):
    x = fake_ds["x"].values.copy()
    x[5:] += 3.0
    with pytest.raises(CubeValidationError, match="'x' is irregularly spaced"):
        validate_dataset(fake_ds.assign_coords(x=x))


def test_kelvin_by_values(fake_ds):
    ds = fake_ds.copy()
    ds["tmax"] = fake_ds["tmax"] + 273.15  # units attribute still says degC
    with pytest.raises(CubeValidationError, match="tmax: mean .* looks like Kelvin; subtract 273"):
        validate_dataset(ds)


def test_kelvin_by_units_attr(fake_ds):
    ds = fake_ds.copy()
    ds["tmin"] = fake_ds["tmin"].assign_attrs(units="K")
    with pytest.raises(CubeValidationError, match="tmin: units attribute 'K' looks like Kelvin"):
        validate_dataset(ds)


def test_metres_of_rain(fake_ds):
    ds = fake_ds.copy()
    ds["prcp"] = fake_ds["prcp"] / 1000
    with pytest.raises(CubeValidationError, match="prcp: .*looks like metres; multiply by 1000"):
        validate_dataset(ds)
    ds = fake_ds.copy()
    ds["prcp"] = fake_ds["prcp"].assign_attrs(units="m")
    with pytest.raises(CubeValidationError, match="prcp: units attribute 'm' looks like metres"):
        validate_dataset(ds)


def test_kpa_vapour_pressure(fake_ds):
    ds = fake_ds.copy()
    ds["vp"] = fake_ds["vp"] / 1000
    with pytest.raises(CubeValidationError, match="vp: .*looks like kPa; multiply by 1000"):
        validate_dataset(ds)
    ds = fake_ds.copy()
    ds["vp"] = fake_ds["vp"].assign_attrs(units="kPa")
    with pytest.raises(CubeValidationError, match="vp: units attribute 'kPa' looks like kilo"):
        validate_dataset(ds)


def test_srad_daily_total_joules(fake_ds):
    ds = fake_ds.copy()
    ds["srad"] = fake_ds["srad"] * fake_ds["dayl"]
    with pytest.raises(CubeValidationError, match="srad: .*looks like J/m2 per day"):
        validate_dataset(ds)
    ds = fake_ds.copy()
    ds["srad"] = fake_ds["srad"].assign_attrs(units="J m-2")
    with pytest.raises(CubeValidationError, match="srad: units attribute 'J m-2'.*dayl"):
        validate_dataset(ds)


def test_equivalent_unit_spellings_accepted(fake_ds):
    ds = fake_ds.copy()
    ds["srad"] = fake_ds["srad"].assign_attrs(units="W m-2")
    ds["prcp"] = fake_ds["prcp"].assign_attrs(units="mm day-1")
    ds["tmax"] = fake_ds["tmax"].assign_attrs(units="degrees C")
    validate_dataset(ds)


def test_dayl_in_hours(fake_ds):
    ds = fake_ds.copy()
    ds["dayl"] = fake_ds["dayl"] / 3600
    with pytest.raises(CubeValidationError, match="dayl: .*looks like hours"):
        validate_dataset(ds)


def test_reflectance_as_scaled_integers(fake_ds):
    ds = fake_ds.copy()
    ds["B04"] = fake_ds["B04"] * 10000
    with pytest.raises(CubeValidationError, match="B04: values up to .* scaled integers.*1e-4"):
        validate_dataset(ds)


def test_band_entirely_nan(fake_ds):
    ds = fake_ds.copy()
    ds["B11"] = fake_ds["B11"] * np.nan
    # not listed as missing: a warning that says to list it (the model takes band subsets)
    with pytest.warns(CubeValidationWarning, match=r"B11: entirely NaN.*kgvsf_missing_bands"):
        validate_dataset(ds)
    # listed: a valid cube without the band
    ds.attrs["kgvsf_missing_bands"] = '["B11"]'
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_dataset(ds)
        validate_dataset(ds.drop_vars(["B11", "B11_true"]))  # absent and listed: fine too
    ds.attrs["kgvsf_missing_bands"] = '["B11", "B99"]'
    with pytest.raises(CubeValidationError, match=r"unknown band\(s\) \['B99'\]"):
        validate_dataset(ds)
    ds.attrs["kgvsf_missing_bands"] = "[B11"
    with pytest.raises(CubeValidationError, match="not a JSON list"):
        validate_dataset(ds)
    ds.attrs["kgvsf_missing_bands"] = '["B11"]'
    with pytest.raises(CubeValidationError, match="list it in ds.attrs"):  # absent, not listed
        validate_dataset(ds.drop_vars("B05"))
    every = fake_ds.assign_attrs(kgvsf_missing_bands=str(list(schema.BANDS)).replace("'", '"'))
    with pytest.raises(CubeValidationError, match="no observation at all"):
        validate_dataset(every)


def test_missing_crs_says_how_to_add_it(fake_ds):
    ds = fake_ds.drop_vars(schema.GRID_MAPPING)
    with pytest.raises(CubeValidationError, match="no CRS found.*crs_wkt.*attrs\\['crs'\\]"):
        validate_dataset(ds)
    ds.attrs["crs"] = "EPSG:32615"  # the alternative place is accepted
    validate_dataset(ds)


def test_latlon_crs_rejected(fake_ds):
    ds = fake_ds.copy()
    ds[schema.GRID_MAPPING] = xr.DataArray(0, attrs={"crs_wkt": CRS.from_epsg(4326).to_wkt()})
    with pytest.raises(
        CubeValidationError, match="geographic.*reproject to a projected CRS such as UTM"
    ):
        validate_dataset(ds)


def test_all_problems_listed_together(fake_ds):
    ds = fake_ds.drop_vars([schema.GRID_MAPPING, "swe"])
    ds["tmax"] = ds["tmax"] + 273.15
    with pytest.raises(CubeValidationError, match="3 problems") as exc:
        validate_dataset(ds)
    msg = str(exc.value)
    assert "swe" in msg and "Kelvin" in msg and "no CRS" in msg


def test_images_outside_driver_days(fake_ds):
    ds = fake_ds.isel(day=slice(10, None))
    with pytest.raises(CubeValidationError, match="not covered by the daily drivers"):
        validate_dataset(ds)


def _counting_lazy_dataset(counter: list[int]) -> xr.Dataset:
    """A schema-valid cube of 30 x 1024 x 1024 px whose image blocks count their reads."""
    nt, ny, nx, chunk = 30, 1024, 1024, 256
    lock = threading.Lock()

    def block(b, block_info=None):
        with lock:
            counter[0] += 1
        return np.full(b.shape, 0.1, dtype="float32")

    template = da.zeros((nt, ny, nx), chunks=(1, chunk, chunk), dtype="float32")
    small = make_fake_dataset(ny=2, nx=2, n_days=150, drivers_on="series")
    day = pd.date_range("2021-03-01", periods=150, freq="D")
    ds = xr.Dataset(
        coords={
            "time": day[::5],
            "day": day,
            "y": 4_650_000 - 5 - 10.0 * np.arange(ny),
            "x": 440_005 + 10.0 * np.arange(nx),
        }
    )
    ds[schema.GRID_MAPPING] = small[schema.GRID_MAPPING]
    for b in schema.BANDS:
        ds[b] = (("time", "y", "x"), template.map_blocks(block, dtype="float32"))
    ds[schema.CLOUD_MASK] = (("time", "y", "x"), da.zeros_like(template, dtype=bool))
    for d in schema.DRIVERS:
        ds[d] = small[d]
    for s in (schema.CROP_TYPE, schema.FIELD_ID, schema.SOIL_TYPE):
        ds[s] = (("y", "x"), da.zeros((ny, nx), chunks=chunk, dtype="int8"), small[s].attrs)
    return ds


def test_validation_samples_lazy_cubes():
    counter = [0]
    ds = _counting_lazy_dataset(counter)
    total_blocks = len(schema.BANDS) * 30 * 16
    validate_dataset(ds)
    assert 0 < counter[0] <= total_blocks // 10  # a few windows of a few dates


def test_met_grid_must_cover_pixels(fake_ds):
    with pytest.raises(
        CubeValidationError, match="x_met: the drivers' native grid.*does not cover"
    ):
        validate_dataset(fake_ds.isel(x_met=slice(2, None)))
