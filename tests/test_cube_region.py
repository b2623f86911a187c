"""Cube properties, region selection, indices, drivers, stats, display."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr
from conftest import make_fake_dataset
from pyproj import Transformer

from kgvsf_explore import schema
from kgvsf_explore.cube import Cube, open_cube
from kgvsf_explore.errors import RegionError

X0, Y1 = 440_000.0, 4_650_000.0  # cube's west and north edges (fake dataset: 16 x 20 px, 10 m)


@pytest.fixture
def cube(fake_ds) -> Cube:
    return open_cube(fake_ds)


def field_polygons(cube: Cube) -> gpd.GeoDataFrame:
    """One polygon per field_id block of the fake dataset (8 rows x 10 columns)."""
    rows = []
    for r in range(2):
        for c in range(2):
            geom = shapely.box(X0 + 100 * c, Y1 - 80 * (r + 1), X0 + 100 * (c + 1), Y1 - 80 * r)
            rows.append({"field_id": r * 10 + c + 1, "crop_type": "corn", "geometry": geom})
    return gpd.GeoDataFrame(rows, crs=cube.crs)


def test_basic_properties(cube):
    assert cube.crs.to_epsg() == 32615
    assert cube.res == 10.0
    assert cube.bounds == (X0, Y1 - 160, X0 + 200, Y1)
    assert cube.shape == {"time": 24, "day": 120, "y": 16, "x": 20}
    assert cube.bands == schema.BANDS
    assert len(cube.times) == 24 and len(cube.days) == 120
    refl = cube.reflectance
    assert refl.dims == ("time", "band", "y", "x") and refl.dtype == np.float32
    assert list(refl["band"].values) == list(schema.BANDS)
    np.testing.assert_array_equal(refl.sel(band="B04").values, cube.ds["B04"].values)
    assert cube.truth is not None and cube.truth.shape == refl.shape
    assert cube.legend("crop_type") == schema.CROP_CLASSES
    assert cube.legend("soil_type") == schema.SOIL_CLASSES
    assert cube.crop_type.dims == ("y", "x") and cube.field_id.dims == ("y", "x")
    assert cube.soil_moisture.dims == ("day", "y", "x")


def test_valid_is_not_cloudy_and_finite(cube):
    valid = cube.valid.values
    cloud = cube.ds[schema.CLOUD_MASK].values
    assert valid.dtype == bool
    np.testing.assert_array_equal(valid, ~cloud)


def test_truth_absent_gives_none(fake_ds):
    cube = Cube(fake_ds.drop_vars("B02_true"))
    assert cube.truth is None


def test_sel_bbox_in_cube_crs(cube):
    sub = cube.sel_bbox(X0 + 50, Y1 - 100, X0 + 120, Y1 - 40)
    assert sub.shape["x"] == 7 and sub.shape["y"] == 6
    assert sub.bounds == (X0 + 50, Y1 - 100, X0 + 120, Y1 - 40)
    np.testing.assert_array_equal(
        sub.ds["B04"].values, cube.ds["B04"].isel(y=slice(4, 10), x=slice(5, 12)).values
    )
    assert cube.shape["x"] == 20  # the original cube is untouched
    # pixels partly inside the box are kept
    part = cube.sel_bbox(X0 + 55, Y1 - 95, X0 + 115, Y1 - 45)
    assert part.bounds == sub.bounds


def test_sel_bbox_in_lonlat(cube):
    box = (X0 + 50, Y1 - 100, X0 + 120, Y1 - 40)
    to_ll = Transformer.from_crs(cube.crs, "EPSG:4326", always_xy=True)
    lon0, lat0, lon1, lat1 = to_ll.transform_bounds(*box)
    sub = cube.sel_bbox(lon0, lat0, lon1, lat1, crs="EPSG:4326")
    b = sub.bounds
    # the lon/lat box covers the native box (a little more: rotated grid), never less
    assert b[0] <= box[0] and b[1] <= box[1] and b[2] >= box[2] and b[3] >= box[3]
    assert sub.shape["x"] <= 9 and sub.shape["y"] <= 8


def test_sel_bbox_outside_names_bounds_and_crs(cube):
    with pytest.raises(RegionError, match=r"outside the cube.*440000\.0.*EPSG:32615"):
        cube.sel_bbox(0, 0, 10, 10)
    with pytest.raises(RegionError, match="outside the cube"):
        cube.sel_bbox(10.0, 50.0, 10.1, 50.1, crs="EPSG:4326")
    with pytest.raises(RegionError, match="empty bbox"):
        cube.sel_bbox(X0 + 50, Y1 - 40, X0 + 20, Y1 - 10)


def test_window(cube):
    sub = cube.window(2, 3, 5, 4)
    assert sub.shape["y"] == 5 and sub.shape["x"] == 4
    np.testing.assert_array_equal(sub.ds["x"].values, cube.ds["x"].values[3:7])
    np.testing.assert_array_equal(sub.ds["y"].values, cube.ds["y"].values[2:7])
    edge = cube.window(14, 18, 10, 10)  # cut at the far edges
    assert edge.shape["y"] == 2 and edge.shape["x"] == 2
    one = cube.window(0, 0, 1, 1)
    assert one.res == 10.0 and one.bounds == (X0, Y1 - 10, X0 + 10, Y1)


@pytest.mark.parametrize(
    "args", [(0, 0, 0, 5), (0, 0, 5, -1), (-1, 0, 2, 2), (16, 0, 2, 2), (0, 20, 2, 2)]
)
def test_empty_window(cube, args):
    with pytest.raises(RegionError, match="window"):
        cube.window(*args)


def test_clip_geometry_adds_mask(cube):
    tri = shapely.Polygon([(X0 + 3, Y1 - 3), (X0 + 153, Y1 - 3), (X0 + 3, Y1 - 123)])
    sub = cube.clip(tri)
    mask = sub.ds["region_mask"]
    assert mask.dims == ("y", "x") and mask.dtype == bool
    xx, yy = np.meshgrid(sub.ds["x"].values, sub.ds["y"].values)
    np.testing.assert_array_equal(mask.values, shapely.contains_xy(tri, xx, yy))
    assert 0 < mask.values.sum() < mask.size
    # outside the geometry nothing counts as valid, and indices are NaN
    assert not sub.valid.values[:, ~mask.values].any()
    assert np.isnan(sub.ndvi().values[:, ~mask.values]).all()
    assert sub.bounds[0] == X0 and sub.bounds[3] == Y1 and sub.bounds[2] <= X0 + 160


def test_clip_geodataframe_in_lonlat_matches_native(cube):
    poly = shapely.Polygon([(X0 + 23, Y1 - 13), (X0 + 173, Y1 - 33), (X0 + 93, Y1 - 143)])
    native = cube.clip(poly)
    gdf = gpd.GeoDataFrame({"name": ["a"]}, geometry=[poly], crs=cube.crs).to_crs("EPSG:4326")
    ll = cube.clip(gdf)
    np.testing.assert_array_equal(ll.ds["region_mask"].values, native.ds["region_mask"].values)
    ll2 = cube.clip(gdf.geometry.iloc[0], crs="EPSG:4326")
    np.testing.assert_array_equal(ll2.ds["region_mask"].values, native.ds["region_mask"].values)


def test_clip_errors(cube):
    far = shapely.box(0, 0, 10, 10)
    with pytest.raises(RegionError, match="does not intersect the cube.*EPSG:32615"):
        cube.clip(far)
    with pytest.raises(RegionError, match="no pixel centre"):
        cube.clip(shapely.box(X0 + 1, Y1 - 4, X0 + 4, Y1 - 1))
    with pytest.raises(TypeError):
        cube.clip("POLYGON ((0 0, 1 0, 1 1, 0 0))")


def test_nan_only_region(fake_ds):
    ds = fake_ds.copy()
    for b in schema.BANDS:
        ds[b] = ds[b].where((ds["x"] > X0 + 100) | (ds["y"] < Y1 - 80))  # NW block all NaN
    cube = open_cube(ds)
    with pytest.raises(RegionError, match="no valid observation"):
        cube.sel_bbox(X0, Y1 - 80, X0 + 100, Y1)
    with pytest.raises(RegionError, match="no valid observation"):
        cube.window(0, 0, 8, 10)
    with pytest.raises(RegionError, match="no valid observation"):
        cube.clip(shapely.box(X0 + 5, Y1 - 75, X0 + 95, Y1 - 5))
    cube.sel_bbox(X0, Y1 - 80, X0 + 100, Y1, require_valid=False)  # allowed on request
    cube.window(0, 0, 9, 10)  # one row with data is enough


def test_cloud_only_region(fake_ds):
    ds = fake_ds.copy()
    ds[schema.CLOUD_MASK] = ds[schema.CLOUD_MASK] | (ds["x"] < X0 + 30)
    with pytest.raises(RegionError, match="no valid observation"):
        open_cube(ds).window(0, 0, 16, 3)


def test_sel_time_cuts_both_axes(cube):
    sub = cube.sel_time("2021-04-01", "2021-04-30")
    assert sub.days[0].isoformat()[:10] == "2021-04-01" and len(sub.days) == 30
    assert sub.times.min() >= sub.days[0] and sub.times.max() <= sub.days[-1]
    assert len(sub.times) == 6
    with pytest.raises(RegionError, match="no image date"):
        cube.sel_time("2030-01-01", "2030-02-01")


def test_ndvi_range_and_nan_under_clouds(cube):
    ndvi = cube.ndvi()
    assert ndvi.dims == ("time", "y", "x") and ndvi.dtype == np.float32
    v = ndvi.values
    cloud = cube.ds[schema.CLOUD_MASK].values
    assert np.isnan(v[cloud]).all()
    assert np.isfinite(v[~cloud]).all()
    assert (v[~cloud] >= -1).all() and (v[~cloud] <= 1).all()
    b8, b4 = cube.ds["B08"].values, cube.ds["B04"].values
    np.testing.assert_allclose(v[~cloud], ((b8 - b4) / (b8 + b4))[~cloud], rtol=1e-5)


@pytest.mark.parametrize("name", ["ndwi", "NDMI", "evi", "savi", "nbr", "ndre"])
def test_other_indices(cube, name):
    v = cube.index(name).values
    cloud = cube.ds[schema.CLOUD_MASK].values
    assert np.isnan(v[cloud]).all() and np.isfinite(v[~cloud]).all()


def test_unknown_index(cube):
    with pytest.raises(ValueError, match="unknown index"):
        cube.index("foo")


@pytest.mark.parametrize("drivers_on", ["met", "pixel", "series"])
def test_drivers_on_pixels_every_layout(drivers_on):
    ds = make_fake_dataset(drivers_on=drivers_on)
    drv = open_cube(ds).drivers
    for name in schema.DRIVERS:
        assert drv[name].dims == ("day", "y", "x")
        assert drv[name].shape == (120, 16, 20)
        assert drv[name].dtype == np.float32
        assert np.isfinite(drv[name].values).all()
    if drivers_on == "series":
        np.testing.assert_array_equal(drv["tmax"].values[:, 3, 4], ds["tmax"].values)
    if drivers_on == "pixel":
        np.testing.assert_array_equal(drv["srad"].values, ds["srad"].values)


def test_drivers_of_a_cropped_cube(cube):
    """Cropping the met grid with a margin keeps the interpolation identical."""
    sub = cube.window(4, 5, 6, 7)
    np.testing.assert_allclose(
        sub.drivers["srad"].values,
        cube.drivers["srad"].isel(y=slice(4, 10), x=slice(5, 12)).values,
        rtol=1e-6,
    )
    assert sub.ds.sizes["x_met"] < cube.ds.sizes["x_met"] or cube.ds.sizes["x_met"] <= 4


def test_stats_finite(cube):
    stats = cube.stats()
    d = stats.to_dict()
    for name in (*schema.BANDS, *schema.DRIVERS, schema.SOIL_MOISTURE):
        assert np.isfinite(d[name]["mean"]) and np.isfinite(d[name]["std"]), name
    assert d["B04"]["count"] == int(cube.valid.sum())
    np.testing.assert_allclose(
        d["B04"]["mean"], np.nanmean(cube.ds["B04"].values[cube.valid.values]), rtol=1e-6
    )
    assert d["swe"]["std"] == 0.0
    assert isinstance(stats.to_dataset(), xr.Dataset)


def test_fields_clipped_with_the_region(fake_ds):
    cube = Cube(fake_ds, fields=None)
    cube = open_cube(fake_ds, fields=field_polygons(cube))
    assert len(cube.fields) == 4
    sub = cube.sel_bbox(X0 + 10, Y1 - 60, X0 + 60, Y1 - 10)  # inside field 1 only
    assert list(sub.fields["field_id"]) == [1]
    assert sub.fields.total_bounds.tolist() == list(sub.bounds)
    win = cube.window(6, 8, 4, 4)  # straddles the four fields
    assert sorted(win.fields["field_id"]) == [1, 2, 11, 12]
    ll = cube.fields.to_crs("EPSG:4326")
    again = open_cube(fake_ds, fields=ll)
    assert again.fields.crs.equals(cube.crs)


def test_repr_and_html_show_crs(cube):
    text = repr(cube)
    assert "EPSG:32615" in text and "2021-03-01" in text and "B02" in text
    assert "clouds" in text
    html = cube._repr_html_()
    assert "EPSG:32615" in html and "<table" in html and "<details>" in html
    clipped = cube.clip(shapely.box(X0 + 3, Y1 - 53, X0 + 53, Y1 - 3))
    assert "region" in repr(clipped)


def test_plot_map(cube):
    import holoviews as hv

    img = cube.plot_map("ndvi", time="2021-04-01")
    assert isinstance(img, hv.Image)
    x0, y0, x1, y1 = img.bounds.lbrt()
    assert x0 == pytest.approx(cube.bounds[0]) and y1 == pytest.approx(cube.bounds[3])
    assert isinstance(cube.plot_map("B04"), hv.DynamicMap)  # a date slider
    assert isinstance(cube.plot_map("crop_type"), hv.Image)
    assert cube.hvplot is not None


def test_crop_mask_by_name_or_code(cube):
    corn = cube.crop_mask("corn")
    assert corn.dims == ("y", "x") and corn.dtype == bool
    np.testing.assert_array_equal(corn.values, cube.crop_type.values == 1)
    both = cube.crop_mask("corn", 2)
    np.testing.assert_array_equal(both.values, np.isin(cube.crop_type.values, [1, 2]))
    with pytest.raises(KeyError, match="unknown crop 'maize'"):
        cube.crop_mask("maize")
