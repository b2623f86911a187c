"""The Forecaster front door and the embedding helpers, on a tiny world."""

from __future__ import annotations

import json
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.embeddings import field_means, kmeans, pca_rgb, to_geoparquet
from kgvsf_explore.errors import KGVSFError, RegionError
from kgvsf_explore.forecaster import Forecaster
from kgvsf_explore.inference.region import forecast_region
from kgvsf_explore.models import KGVSF, PRESETS
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.world import make_world

START = "2022-07-03"


@pytest.fixture(scope="module")
def world() -> tuple[xr.Dataset, gpd.GeoDataFrame]:
    return make_world(seed=31, size="tiny")


@pytest.fixture(scope="module")
def cube(world) -> Cube:
    ds, fields = world
    return Cube(ds, fields=fields)


@pytest.fixture(scope="module")
def fc() -> Forecaster:
    torch.manual_seed(0)
    return Forecaster(KGVSF(PRESETS["tiny"].model, "kgvsf").eval(), weights_id="abc123" * 4)


@pytest.fixture(scope="module")
def emb(fc: Forecaster, cube: Cube) -> xr.DataArray:
    return fc.embed(cube, None, START, progress=False)


def test_forecast_matches_forecast_region(fc: Forecaster, cube: Cube) -> None:
    out = fc.forecast(cube, None, START, (5, 15), progress=False)
    ref = forecast_region(fc.model, cube, START, [5, 15], progress=False,
                          weights_id=fc.weights_id)
    xr.testing.assert_allclose(out, ref)
    assert out.attrs["weights_sha256"] == fc.weights_id
    assert "kgvsf" in repr(fc) and "abc123abc123" in repr(fc) and "tile=16" in repr(fc)


def test_compare_zero_and_sign(fc: Forecaster, cube: Cube) -> None:
    base = fc.forecast(cube, None, START, (15,), progress=False)
    zero = Forecaster.compare(base, base)
    assert float(np.abs(zero).max()) == 0.0
    shifted = base.assign(ndvi=base.ndvi + 0.1)
    d = Forecaster.compare(base, shifted)
    np.testing.assert_allclose(d, 0.1, atol=1e-6)  # scenario minus baseline
    assert d.attrs["subtracted"] == "baseline"

    dry = Scenario.parse("prcp =0", "tmax +4", name="hot-dry")
    both = fc.forecast(cube, None, START, (15,), [None, dry], progress=False)
    diff = Forecaster.compare(both)
    assert list(diff.scenario.values) == ["hot-dry"]
    assert "observed" in diff.attrs["subtracted"]
    expect = both.ndvi.sel(scenario="hot-dry") - both.ndvi.sel(scenario="observed")
    np.testing.assert_allclose(diff.sel(scenario="hot-dry"), expect)
    with pytest.raises(KGVSFError):
        Forecaster.compare(base)


def test_embed_dims_coords_and_causality(fc: Forecaster, cube: Cube, world,
                                         emb: xr.DataArray) -> None:
    assert emb.dims == ("feature", "y", "x")
    assert emb.sizes["y"] == 32 and emb.sizes["x"] == 32 and emb.sizes["feature"] > 0
    np.testing.assert_array_equal(emb.x, cube.ds.x)
    np.testing.assert_array_equal(emb.y, cube.ds.y)
    assert "spatial_ref" in emb.coords
    assert bool(np.isfinite(emb).all())
    t = pd.Timestamp(emb.attrs["t"])
    assert t <= pd.Timestamp(START) and emb.attrs["weights_sha256"] == fc.weights_id

    ds, fields = world
    changed = ds.copy(deep=True)
    later = changed.time.values > np.datetime64(t)
    changed["B04"][{"time": np.flatnonzero(later)[:3]}] = 0.9
    other = fc.embed(Cube(changed, fields=fields), None, START, progress=False)
    np.testing.assert_array_equal(other.values, emb.values)

    changed["B04"][{"time": np.flatnonzero(~later)[-1]}] = 0.9  # the image at t matters
    moved = fc.embed(Cube(changed, fields=fields), None, START, progress=False)
    assert float(np.abs(moved - emb).max()) > 0


def test_pca_rgb_and_kmeans(emb: xr.DataArray) -> None:
    rgb = pca_rgb(emb)
    assert rgb.dims == ("band", "y", "x") and list(rgb.band.values) == ["r", "g", "b"]
    assert rgb.shape == (3, 32, 32)
    assert float(rgb.min()) >= 0 and float(rgb.max()) <= 1
    xr.testing.assert_equal(rgb, pca_rgb(emb))
    # the first three principal components, as an SVD of the centred pixels finds them
    x = emb.values.reshape(emb.shape[0], -1).T.astype("float64")
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    scores = x @ vt[:3].T
    mine = rgb.values.reshape(3, -1).T
    for j in range(3):  # the same image up to each axis' sign and the display stretch
        r = np.corrcoef(scores[:, j], mine[:, j])[0, 1]
        assert abs(r) > 0.95, (j, r)
    labels = kmeans(emb, k=4, seed=0)
    assert labels.dims == ("y", "x")
    assert set(np.unique(labels.values)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(labels.values, kmeans(emb, k=4, seed=0).values)


def test_field_means_geoparquet(emb: xr.DataArray, cube: Cube, tmp_path: Path) -> None:
    gdf = field_means(emb, cube.fields, cube.field_id)
    ids = np.unique(cube.field_id.values)
    ids = ids[ids > 0]
    assert len(gdf) == len(ids) == gdf.field_id.nunique()
    cols = [f"emb_{i}" for i in range(emb.sizes["feature"])]
    assert all(c in gdf.columns for c in cols)
    fid = int(gdf.field_id.iloc[0])
    expect = emb.where(cube.field_id == fid).mean(("y", "x")).values
    np.testing.assert_allclose(gdf.loc[0, cols].to_numpy(float), expect, rtol=1e-4, atol=1e-5)
    path = to_geoparquet(gdf, tmp_path / "fields.parquet")
    back = gpd.read_parquet(path)
    assert len(back) == len(gdf) and back.crs == gdf.crs
    assert list(tmp_path.iterdir()) == [path]


def test_from_pretrained_loads_shipped_weights() -> None:
    fc = Forecaster.from_pretrained()
    assert "kgvsf" in repr(fc) and len(fc.weights_id) == 64
    assert fc.model.cfg.tile == 32


def test_embed_of_a_box_matches_the_full_map_inside_whole_tiles(
    fc: Forecaster, cube: Cube, emb: xr.DataArray
) -> None:
    ds = cube.ds
    # a box covering exactly the top-left model tile: same tile, same context, same values
    x0, x1 = float(ds.x[0]) - 5, float(ds.x[15]) + 5
    y0, y1 = float(ds.y[15]) - 5, float(ds.y[0]) + 5
    box = fc.embed(cube, (x0, y0, x1, y1), emb.attrs["t"], progress=False)
    assert box.sizes["y"] == box.sizes["x"] == 16
    np.testing.assert_allclose(box.values, emb.isel(y=slice(0, 16), x=slice(0, 16)).values,
                               atol=1e-5)


# ------------------------------------------------------------------------ regions and dask


def test_a_region_in_blocks_equals_the_in_memory_region(fc: Forecaster, cube: Cube) -> None:
    dry = Scenario.dry_spell("2022-07-01", "2022-08-15", name="dry")
    eager = fc.forecast(cube, None, START, (5, 20), [None, dry], progress=False)
    lazy = fc.forecast(cube, None, START, (5, 20), [None, dry], chunks=16)
    assert dask.is_dask_collection(lazy.reflectance)
    assert lazy.reflectance.chunks[-2:] == ((16, 16), (16, 16))
    xr.testing.assert_allclose(lazy.compute(), eager, atol=1e-5)
    # block edges that cut model tiles, and a block edge rounded up to the tile
    box = (float(cube.ds.x[3]), float(cube.ds.y[30]), float(cube.ds.x[29]), float(cube.ds.y[2]))
    odd = fc.forecast(cube, box, START, (10,), chunks=7)
    assert odd.reflectance.chunks[-1][0] == 16 and odd.sizes["x"] == 27
    ref = fc.forecast(cube, box, START, (10,), progress=False)
    np.testing.assert_allclose(odd.reflectance.values, ref.reflectance.values, atol=1e-5)

    emb_eager = fc.embed(cube, None, START, progress=False)
    emb_lazy = fc.embed(cube, None, START, chunks=16)
    assert dask.is_dask_collection(emb_lazy)
    np.testing.assert_allclose(emb_lazy.values, emb_eager.values, atol=1e-5)


def test_geometry_region_masks_outside_pixels(fc: Forecaster, cube: Cube) -> None:
    import shapely

    x0, y0, x1, y1 = cube.bounds
    disc = shapely.Point((x0 + x1) / 2, (y0 + y1) / 2).buffer(100.0)  # 10-pixel radius
    out = fc.forecast(cube, gpd.GeoDataFrame(geometry=[disc], crs=cube.crs), START, (10,),
                      progress=False)
    inside = np.isfinite(out.ndvi.values[0])
    assert out.sizes["x"] == out.sizes["y"] == 20
    xx, yy = np.meshgrid(out.x.values, out.y.values)
    np.testing.assert_array_equal(inside, shapely.contains_xy(disc, xx, yy))
    full = fc.forecast(cube, disc.bounds, START, (10,), progress=False)
    np.testing.assert_allclose(out.ndvi.values[0][inside], full.ndvi.values[0][inside],
                               atol=1e-6)


def test_bad_regions_say_what_is_wrong(fc: Forecaster, cube: Cube) -> None:
    x0, y0, x1, y1 = cube.bounds
    with pytest.raises(RegionError, match="outside the cube"):
        fc.forecast(cube, (x1 + 100, y0, x1 + 500, y1), START, (5,), progress=False)
    with pytest.raises(RegionError, match="empty bbox"):
        fc.forecast(cube, (x1, y0, x0, y1), START, (5,), progress=False)
    with pytest.raises(RegionError, match="4 numbers"):
        fc.forecast(cube, (x0, y0, x1), START, (5,), progress=False)
    with pytest.raises(RegionError, match="bbox"):
        fc.forecast(cube, "2022-07-01", START, (5,), progress=False)
    with pytest.raises(KGVSFError, match="range"):
        fc.forecast(cube, None, START, (0,), progress=False)


def test_forecast_is_deterministic_and_leaves_the_cube_untouched(fc: Forecaster,
                                                                  cube: Cube) -> None:
    before = cube.ds.copy(deep=True)
    hot = Scenario.warming(3.0, "2022-07-01", "2022-07-31", name="hot")
    a = fc.forecast(cube, None, START, (10, 30), [None, hot], progress=False)
    b = fc.forecast(cube, None, START, (10, 30), [None, hot], progress=False)
    xr.testing.assert_identical(a, b)
    xr.testing.assert_identical(cube.ds, before)
    assert json.loads(a.attrs["scenarios"])[1]["name"] == "hot"


def test_embed_several_dates(fc: Forecaster, cube: Cube, emb: xr.DataArray) -> None:
    many = fc.embed(cube, None, [START, "2022-08-01"], progress=False)
    assert many.dims == ("time", "feature", "y", "x") and many.sizes["time"] == 2
    assert pd.Timestamp(many.time.values[0]) == pd.Timestamp(emb.attrs["t"])
    np.testing.assert_allclose(many.isel(time=0).values, emb.values, atol=1e-6)
    last = fc.embed(cube, progress=False)
    assert pd.Timestamp(last.attrs["t"]) == cube.times[-1]


def test_large_region_chunks_automatically(fc: Forecaster, cube: Cube,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from kgvsf_explore.inference import chunked

    monkeypatch.setattr(chunked, "AUTO_CHUNK_PIXELS", 100)
    out = fc.forecast(cube, None, START, (5,))
    assert dask.is_dask_collection(out.reflectance)


def test_cluster_fields(emb: xr.DataArray, cube: Cube) -> None:
    from kgvsf_explore.embeddings import cluster_fields

    gdf = cluster_fields(field_means(emb, cube.fields, cube.field_id), k=3, seed=1)
    assert set(gdf.cluster.unique()) <= {0, 1, 2} and gdf.cluster.nunique() == 3
    again = cluster_fields(field_means(emb, cube.fields, cube.field_id), k=3, seed=1)
    assert (gdf.cluster == again.cluster).all()
    with pytest.raises(KGVSFError, match="emb_"):
        cluster_fields(cube.fields)
