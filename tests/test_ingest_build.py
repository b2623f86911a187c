"""Files -> cube end to end: ``build_cube``, ``kgvsf ingest``, fields and gridded weather."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from affine import Affine
from shapely.geometry import box

import kgvsf_explore as kx
from kgvsf_explore import schema
from kgvsf_explore.cli import main
from kgvsf_explore.ingest import IngestError, build_cube, ingest, rasterise_fields
from kgvsf_explore.ingest.build import grid_of
from kgvsf_explore.ingest.fakes import write_landsat_date, write_sentinel2_date

CRS = "EPSG:32615"
T = Affine(10.0, 0.0, 446000.0, 0.0, -10.0, 4650000.0)
N = 16
DATES = pd.to_datetime(["2022-06-05", "2022-06-15"])


def _refl(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {b: (0.05 + 0.03 * i + 0.01 * rng.random((N, N))).astype(np.float32)
            for i, b in enumerate(schema.BANDS)}


@pytest.fixture()
def s2(tmp_path: Path) -> Path:
    folder = tmp_path / "s2"
    for i, d in enumerate(DATES):
        scl = np.full((N, N), 4, np.uint8)
        scl[:3, :3] = 9
        write_sentinel2_date(folder, d, _refl(i), scl, crs=CRS, transform=T)
    return folder


@pytest.fixture()
def station(tmp_path: Path) -> Path:
    days = pd.date_range("2022-06-01", "2022-06-30", freq="D")
    f = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "tmax (K)": 300.0, "tmin (K)": 285.0,
                      "precipitation (m)": 0.002, "ssrd (J m-2)": 2.2e7, "d2m (K)": 283.0})
    f.loc[10:11, "tmax (K)"] = np.nan  # a two-day gap
    path = tmp_path / "station.csv"
    f.to_csv(path, index=False)
    return path


def test_cli_ingest_station(s2: Path, station: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "my.zarr"
    rc = main(["ingest", "--images", str(s2), "--weather", str(station), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "2 image dates" in text and "weather days filled" in text
    cube = kx.open_cube(out)  # validates
    ds = cube.ds
    assert ds["tmax"].dims == ("day",) and ds.sizes["day"] == 30
    assert ds[schema.CLOUD_MASK].values[:, :3, :3].all()
    assert json.loads(ds.attrs["kgvsf_weather_filled_days"])["tmax"] == ["2022-06-11",
                                                                         "2022-06-12"]
    assert (ds[schema.FIELD_ID].values == 0).all() and "placeholder" in ds[
        schema.SOIL_TYPE].attrs["kgvsf_note"]
    assert main(["ingest", "--images", str(s2), "--weather", str(station), "--out",
                 str(out)]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err


def test_cli_reports_bad_input(tmp_path: Path, station: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    rc = main(["ingest", "--images", str(tmp_path / "empty"), "--weather", str(station),
               "--out", str(tmp_path / "x.zarr")])
    assert rc == 2
    assert "no images in" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


def test_landsat_cube_with_fields(tmp_path: Path, station: Path) -> None:
    folder = tmp_path / "ls"
    for i, d in enumerate(DATES):
        write_landsat_date(folder, d, _refl(i), np.full((N, N), 21824, np.uint16), crs=CRS,
                           transform=T, sensor="LC09")
    polys = gpd.GeoDataFrame(
        {"crop": ["Maize", "soybean", "alfalfa"]},
        geometry=[box(446000, 4649920, 446080, 4650000), box(446080, 4649840, 446160, 4649920),
                  box(446100, 4650100, 446200, 4650200)],  # the third lies outside
        crs=CRS).to_crs("EPSG:4326")
    polys.to_file(tmp_path / "fields.gpkg")
    with pytest.raises(IngestError, match=r"unknown crop class name\(s\) \['alfalfa'\].*class_map"):
        build_cube(folder, station, fields=tmp_path / "fields.gpkg")
    cube = build_cube(folder, station, fields=tmp_path / "fields.gpkg",
                      class_map={"alfalfa": "grassland"})
    ds = cube.ds
    assert json.loads(ds.attrs["kgvsf_missing_bands"]) == ["B05"]  # masked in the model
    assert json.loads(ds.attrs["kgvsf_bands_derived"]) == []
    assert set(np.unique(ds[schema.FIELD_ID].values)) == {0, 1, 2}
    assert ds[schema.CROP_TYPE].values[2, 2] == 1 and ds[schema.CROP_TYPE].values[10, 10] == 2
    assert ds[schema.CROP_TYPE].values[15, 0] == 0
    assert schema.legend_from_attrs(ds[schema.CROP_TYPE].attrs) == schema.CROP_CLASSES
    assert cube.fields is not None and len(cube.fields) == 3
    path = ingest(tmp_path / "cube_dir", folder, station, fields=tmp_path / "fields.gpkg",
                  class_map={"alfalfa": "grassland"})
    back = kx.open_cube(path)  # folder layout: fields come back
    assert back.fields is not None and set(back.fields["crop_type"]) == {1, 2, 4}


@pytest.mark.parametrize("fmt", ["parquet", "geojson", "shp"])
def test_field_formats(tmp_path: Path, s2: Path, station: Path, fmt: str) -> None:
    polys = gpd.GeoDataFrame({"crop_type": [3]}, geometry=[box(446000, 4649900, 446050, 4650000)],
                             crs=CRS)
    path = tmp_path / f"f.{fmt}"
    polys.to_parquet(path) if fmt == "parquet" else polys.to_file(path)
    cube = build_cube(s2, station, fields=path)
    assert cube.ds[schema.CROP_TYPE].values[0, 0] == 3
    assert int(cube.ds[schema.FIELD_ID].values.sum()) == 50


def test_fields_outside(s2: Path, tmp_path: Path) -> None:
    from kgvsf_explore.ingest import read_images

    grid = grid_of(read_images(s2))
    polys = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs=CRS)
    with pytest.raises(IngestError, match="no field polygon overlaps"):
        rasterise_fields(polys, grid)


def test_images_outside_weather(s2: Path, tmp_path: Path) -> None:
    days = pd.date_range("2022-06-10", "2022-06-30", freq="D")
    f = pd.DataFrame({"date": days, "tmax (degC)": 25.0, "tmin (degC)": 12.0, "prcp (mm)": 1.0,
                      "srad (W m-2)": 300.0, "vp (Pa)": 1200.0})
    f.to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises(IngestError, match=r"outside the weather 2022-06-10\.\.2022-06-30"):
        build_cube(s2, tmp_path / "w.csv")


def test_daymet_like_grid(s2: Path, tmp_path: Path) -> None:
    from pyproj import CRS as PCRS

    lcc = PCRS.from_proj4("+proj=lcc +lat_1=25 +lat_2=60 +lat_0=42.5 +lon_0=-100 +x_0=0 +y_0=0 "
                          "+ellps=WGS84 +units=m")
    from pyproj import Transformer

    cx, cy = Transformer.from_crs(CRS, lcc, always_xy=True).transform(446080, 4649920)
    x = cx + 1000.0 * np.arange(-3, 4)
    y = cy + 1000.0 * np.arange(3, -4, -1)
    days = pd.date_range("2022-06-01", "2022-06-30", freq="D")
    shape = (days.size, y.size, x.size)
    ramp = np.broadcast_to(np.arange(x.size, dtype=float), shape)
    ds = xr.Dataset({
        "tmax": (("time", "y", "x"), 25.0 + ramp, {"units": "degrees C"}),
        "tmin": (("time", "y", "x"), np.full(shape, 12.0), {"units": "degrees C"}),
        "prcp": (("time", "y", "x"), np.full(shape, 2.0), {"units": "mm/day"}),
        "srad": (("time", "y", "x"), np.full(shape, 350.0), {"units": "W/m2"}),
        "vp": (("time", "y", "x"), np.full(shape, 1100.0), {"units": "Pa"}),
        "dayl": (("time", "y", "x"), np.full(shape, 54000.0), {"units": "s"}),
        "swe": (("time", "y", "x"), np.zeros(shape), {"units": "kg/m2"}),
        "lambert_conformal_conic": ((), 0, {"crs_wkt": lcc.to_wkt()}),
    }, coords={"time": days, "y": y, "x": x})
    ds.to_netcdf(tmp_path / "daymet.nc")
    cube = build_cube(s2, tmp_path / "daymet.nc")
    assert cube.ds["tmax"].dims == ("day", "y_met", "x_met")
    assert (cube.ds.y_met.min() < cube.ds.y.min()) and (cube.ds.x_met.max() > cube.ds.x.max())
    t = cube.drivers["tmax"].isel(day=0).values  # on the pixels
    assert 27.0 < t.mean() < 29.5 and np.isfinite(t).all()
    np.testing.assert_allclose(cube.ds["dayl"].values, 54000.0)


def test_era5_like_grid_regridded(s2: Path, tmp_path: Path) -> None:
    hours = pd.date_range("2022-06-01", "2022-06-30 23:00", freq="h")
    lat = np.round(np.arange(42.3, 41.65, -0.1), 2)
    lon = np.round(np.arange(-94.0, -93.3, 0.1), 2)
    shape = (hours.size, lat.size, lon.size)
    dims = ("valid_time", "latitude", "longitude")
    ds = xr.Dataset({
        "t2m": (dims, np.full(shape, 293.15), {"units": "K"}),
        "d2m": (dims, np.full(shape, 283.15), {"units": "K"}),
        "tp": (dims, np.full(shape, 1e-4), {"units": "m"}),
        "ssrd": (dims, np.full(shape, 1e6), {"units": "J m**-2"}),
    }, coords={"valid_time": hours, "latitude": lat, "longitude": lon})
    ds.to_netcdf(tmp_path / "era5.nc")
    cube = build_cube(s2, tmp_path / "era5.nc")
    assert cube.ds["tmax"].dims == ("day", "y_met", "x_met")
    assert float(cube.ds.x_met[1] - cube.ds.x_met[0]) > 5000  # about the native 0.1 degree
    np.testing.assert_allclose(cube.ds["tmax"].values, 20.0, atol=1e-4)
    np.testing.assert_allclose(cube.ds["prcp"].values, 2.4, rtol=1e-5)
    derived = json.loads(cube.ds.attrs["kgvsf_weather_derived"])
    assert "eq. 14" in derived["vp"] and "latitude" in derived["dayl"]


def test_cli_units_and_class_map(s2: Path, tmp_path: Path, capsys) -> None:
    days = pd.date_range("2022-06-01", "2022-06-30")
    pd.DataFrame({"date": days, "tmax": 77.0, "tmin": 59.0, "rain": 0.1, "srad": 25.0,
                  "vp": 1.2}).to_csv(tmp_path / "w.csv", index=False)
    gpd.GeoDataFrame({"class": ["beans"]}, geometry=[box(446000, 4649900, 446050, 4650000)],
                     crs=CRS).to_file(tmp_path / "f.geojson")
    out = tmp_path / "c.zarr"
    args = ["ingest", "--images", str(s2), "--weather", str(tmp_path / "w.csv"), "--out",
            str(out), "--fields", str(tmp_path / "f.geojson")]
    assert main(args) == 2  # tmax named as the cube names it, but 77 degC?
    assert "tmax has no units and its mean 77.0 cannot be degC" in capsys.readouterr().err
    assert main([*args, "--units", "tmax=degF,tmin=degF"]) == 2
    assert "no units for 'rain'" in capsys.readouterr().err
    args += ["--units", "tmax=degF,tmin=degF,rain=in,srad=MJ/m2,vp=kPa"]
    assert main(args) == 2
    assert "unknown crop class name(s) ['beans']" in capsys.readouterr().err
    assert main([*args, "--class-map", "beans=soybean"]) == 0
    ds = kx.open_cube(out).ds
    np.testing.assert_allclose(ds["tmax"].values, 25.0, atol=1e-4)
    np.testing.assert_allclose(ds["prcp"].values, 2.54, rtol=1e-5)
    np.testing.assert_allclose(ds["vp"].values, 1200.0, rtol=1e-5)
    assert ds[schema.CROP_TYPE].values[0, 0] == 2
    assert (out.parent / "c.fields.parquet").is_file()
