"""The Forecaster front door and the embedding helpers, on a tiny world."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.embeddings import field_means, kmeans, pca_rgb, to_geoparquet
from kgvsf_explore.errors import KGVSFError
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
    return fc.embed(cube, START, progress=False)


def test_forecast_matches_forecast_region(fc: Forecaster, cube: Cube) -> None:
    out = fc.forecast(cube, START, (5, 15), progress=False)
    ref = forecast_region(fc.model, cube, START, [5, 15], progress=False,
                          weights_id=fc.weights_id)
    xr.testing.assert_allclose(out, ref)
    assert out.attrs["weights_sha256"] == fc.weights_id
    assert "kgvsf" in repr(fc) and "abc123abc123" in repr(fc) and "tile=16" in repr(fc)


def test_compare_zero_and_sign(fc: Forecaster, cube: Cube) -> None:
    base = fc.forecast(cube, START, (15,), progress=False)
    zero = Forecaster.compare(base, base)
    assert float(np.abs(zero).max()) == 0.0
    shifted = base.assign(ndvi=base.ndvi + 0.1)
    d = Forecaster.compare(base, shifted)
    np.testing.assert_allclose(d, 0.1, atol=1e-6)  # scenario minus baseline
    assert d.attrs["subtracted"] == "baseline"

    dry = Scenario.parse("prcp =0", "tmax +4", name="hot-dry")
    both = fc.forecast(cube, START, (15,), [None, dry], progress=False)
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
    other = fc.embed(Cube(changed, fields=fields), START, progress=False)
    np.testing.assert_array_equal(other.values, emb.values)

    changed["B04"][{"time": np.flatnonzero(~later)[-1]}] = 0.9  # the image at t matters
    moved = fc.embed(Cube(changed, fields=fields), START, progress=False)
    assert float(np.abs(moved - emb).max()) > 0


def test_pca_rgb_and_kmeans(emb: xr.DataArray) -> None:
    rgb = pca_rgb(emb)
    assert rgb.dims == ("band", "y", "x") and list(rgb.band.values) == ["r", "g", "b"]
    assert rgb.shape == (3, 32, 32)
    assert float(rgb.min()) >= 0 and float(rgb.max()) <= 1
    xr.testing.assert_equal(rgb, pca_rgb(emb))
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
    box = fc.embed(cube, emb.attrs["t"], bbox=(x0, y0, x1, y1), progress=False)
    assert box.sizes["y"] == box.sizes["x"] == 16
    np.testing.assert_allclose(box.values, emb.isel(y=slice(0, 16), x=slice(0, 16)).values,
                               atol=1e-5)
