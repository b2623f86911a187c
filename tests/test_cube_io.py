"""open_cube from datasets, Zarr stores, NetCDF files and simulator directories; to_zarr."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr
from conftest import make_fake_dataset

from kgvsf_explore import schema
from kgvsf_explore.cube import Cube, open_cube
from kgvsf_explore.errors import CubeValidationError

X0, Y1 = 440_000.0, 4_650_000.0


def simulator_encoding(ds: xr.Dataset) -> dict:
    """How the simulator stores bands: int16, scale_factor 1e-4, _FillValue -9999."""
    enc = {}
    for b in schema.BANDS:
        for name in (b, schema.truth_name(b)):
            enc[name] = {"dtype": "int16", "scale_factor": 1e-4, "_FillValue": -9999}
    return enc


def fields_gdf() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "field_id": [1, 2],
            "crop_type": ["corn", "soybean"],
            "crop_code": [1, 2],
            "soil_type": ["loam", "clay"],
        },
        geometry=[
            shapely.box(X0, Y1 - 80, X0 + 100, Y1),
            shapely.box(X0 + 100, Y1 - 80, X0 + 200, Y1),
        ],
        crs="EPSG:32615",
    )


def test_open_dataset(fake_ds):
    cube = open_cube(fake_ds)
    assert isinstance(cube, Cube)
    assert cube.ds is fake_ds  # nothing to normalise: used as it is
    with pytest.raises(CubeValidationError, match="missing band"):
        open_cube(fake_ds.drop_vars("B04"))
    assert open_cube(fake_ds.drop_vars("B04"), validate=False).bands == tuple(
        b for b in schema.BANDS if b != "B04"
    )


def test_roundtrip_through_to_zarr(fake_ds, tmp_path):
    path = open_cube(fake_ds).to_zarr(tmp_path / "c.zarr")
    cube = open_cube(path)
    assert isinstance(cube.ds["B04"].data, da.Array)  # lazy
    assert cube.ds["B04"].dtype == np.float32
    assert cube.ds[schema.CLOUD_MASK].dtype == bool
    np.testing.assert_array_equal(cube.ds["B04"].values, fake_ds["B04"].values)
    assert cube.crs.to_epsg() == 32615
    assert cube.legend("crop_type") == schema.CROP_CLASSES
    assert cube.ds.indexes["time"].equals(fake_ds.indexes["time"])


def test_simulator_int16_bands_decode_to_float32(fake_ds, tmp_path):
    store = tmp_path / "sim" / "cube.zarr"
    fake_ds.to_zarr(store, encoding=simulator_encoding(fake_ds), consolidated=False)
    cube = open_cube(tmp_path / "sim")
    for name in ("B04", "B04_true"):
        assert cube.ds[name].dtype == np.float32
    v, ref = cube.ds["B04"].values, fake_ds["B04"].values
    np.testing.assert_array_equal(np.isnan(v), np.isnan(ref))  # fill value -> NaN
    np.testing.assert_allclose(v, ref, atol=0.6e-4, equal_nan=True)
    assert cube.fields is None


def test_simulator_directory_with_fields(fake_ds, tmp_path):
    sim = tmp_path / "world"
    fake_ds.to_zarr(sim / "cube.zarr", encoding=simulator_encoding(fake_ds), consolidated=False)
    fields_gdf().to_parquet(sim / "fields.parquet")
    cube = open_cube(sim)
    assert isinstance(cube.fields, gpd.GeoDataFrame)
    assert list(cube.fields["crop_type"]) == ["corn", "soybean"]
    assert cube.fields.crs.equals(cube.crs)
    east = cube.sel_bbox(X0 + 120, Y1 - 60, X0 + 180, Y1 - 20)
    assert list(east.fields["field_id"]) == [2]
    # an explicit fields argument wins over the file
    only_one = open_cube(sim, fields=fields_gdf().iloc[:1])
    assert len(only_one.fields) == 1


def test_save_roundtrip_keeps_fields(fake_ds, tmp_path):
    cube = open_cube(fake_ds, fields=fields_gdf()).window(0, 0, 8, 12)
    cube.save(tmp_path / "out")
    back = open_cube(tmp_path / "out")
    assert back.shape == cube.shape
    assert sorted(back.fields["field_id"]) == [1, 2]
    np.testing.assert_array_equal(back.ds["B03"].values, cube.ds["B03"].values)


def test_netcdf(fake_ds, tmp_path):
    path = tmp_path / "cube.nc"
    fake_ds.to_netcdf(path, encoding=simulator_encoding(fake_ds))
    cube = open_cube(path)
    assert isinstance(cube.ds["B02"].data, da.Array)
    assert cube.ds["B02"].dtype == np.float32
    assert cube.ds[schema.CLOUD_MASK].dtype == bool
    np.testing.assert_allclose(
        cube.ds["B02"].values, fake_ds["B02"].values, atol=0.6e-4, equal_nan=True
    )
    eager = open_cube(path, chunks=None)
    assert isinstance(eager.ds["B02"].data, np.ndarray)


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_cube(tmp_path / "nope.zarr")
    txt = tmp_path / "cube.txt"
    txt.write_text("hello")
    with pytest.raises(ValueError, match="unknown format"):
        open_cube(txt)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a Zarr store"):
        open_cube(tmp_path / "empty")
    with pytest.raises(TypeError):
        open_cube(42)


@pytest.fixture(scope="module")
def chunked_store(tmp_path_factory):
    """A zarr store written with small chunks (shared: writing one costs ~1 s)."""
    chunked = make_fake_dataset().chunk({"time": 6, "y": 8, "x": 10, "day": 30})
    return open_cube(chunked).to_zarr(tmp_path_factory.mktemp("store") / "c.zarr")


def test_chunked_access_stays_lazy(chunked_store):
    cube = open_cube(chunked_store)  # "auto" keeps the store's chunks
    assert cube.ds["B04"].data.chunksize == (6, 8, 10)
    checks = {
        "ndvi": cube.ndvi(),
        "reflectance": cube.reflectance,
        "valid": cube.valid,
        "drivers": cube.drivers["tmax"],
        "bbox": cube.sel_bbox(X0 + 20, Y1 - 100, X0 + 120, Y1 - 20).ds["B04"],
        "clip": cube.clip(shapely.box(X0 + 3, Y1 - 93, X0 + 93, Y1 - 3)).ndvi(),
        "time": cube.sel_time("2021-04-01", "2021-05-01").ds["B08"],
    }
    for name, arr in checks.items():
        assert isinstance(arr.data, da.Array), name
    assert isinstance(cube.compute().ds["B04"].data, np.ndarray)
    assert isinstance(cube.ds["B04"].data, da.Array)  # compute() returned a new cube


def test_to_zarr_is_atomic_and_refuses_overwrite(fake_ds, tmp_path):
    cube = open_cube(fake_ds)
    target = tmp_path / "c.zarr"
    cube.to_zarr(target)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        cube.to_zarr(target)
    cube.window(0, 0, 4, 4).to_zarr(target, overwrite=True)
    assert open_cube(target).shape["x"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zarr"]  # no temp leftovers


def test_to_zarr_of_irregularly_chunked_selection(chunked_store, tmp_path):
    few = open_cube(chunked_store).ds[["B05", "soil_moisture", "tmax", schema.GRID_MAPPING]]
    sub = Cube(few).window(3, 5, 9, 11).sel_time("2021-03-10", None)  # uneven dask chunks
    assert len(set(sub.ds["B05"].data.chunks[1])) > 1
    out = sub.to_zarr(tmp_path / "b.zarr")
    back = open_cube(out, validate=False).ds
    for name in ("B05", "soil_moisture", "tmax"):
        np.testing.assert_array_equal(back[name].values, sub.ds[name].values)
