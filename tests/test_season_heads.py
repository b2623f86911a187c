"""Season embeddings and the heads fitted on a user's labels (crop map, soil moisture)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from shapely.geometry import box

from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.errors import KGVSFError, OutputPathError
from kgvsf_explore.forecaster import Forecaster
from kgvsf_explore.heads import (
    CropMapHead,
    HeadError,
    LabelGridError,
    SoilMoistureHead,
    TooFewLabelsError,
    UnknownClassError,
    season_dates,
)
from kgvsf_explore.heads.labels import class_raster
from kgvsf_explore.models import KGVSF, PRESETS
from kgvsf_explore.world import make_world

SEASON = ("2022-05-01", "2022-06-15")
FAST = {"hidden": 16, "steps": 150, "batch_size": 128}


@pytest.fixture(scope="module")
def cube() -> Cube:
    ds, fields = make_world(seed=31, size="tiny")
    return Cube(ds.load(), fields=fields)


@pytest.fixture(scope="module")
def fc() -> Forecaster:
    torch.manual_seed(0)
    return Forecaster(KGVSF(PRESETS["tiny"].model, "kgvsf").eval(), weights_id="ab12" * 16)


@pytest.fixture(scope="module")
def emb(fc: Forecaster, cube: Cube) -> xr.DataArray:
    return fc.season_embeddings(cube, None, SEASON, progress=False)


def synthetic(n: int = 24, t: int = 12, f: int = 6, seed: int = 0, like=None):
    """Season embeddings whose class (vertical stripes, 3 classes) shows in the timing of a
    bump on feature 0, plus the label raster; on the tiny world's grid when ``like``."""
    rng = np.random.default_rng(seed)
    cls = np.repeat(np.arange(3), n // 3 + 1)[:n][None].repeat(n, 0)  # (y, x)
    dates = pd.date_range("2022-04-01", periods=t, freq="10D")
    x = rng.normal(0, 1, (t, f, n, n)).astype("float32")
    for c in range(3):
        peak = 3 + 3 * c
        bump = np.exp(-0.5 * ((np.arange(t) - peak) / 1.2) ** 2)[:, None]
        x[:, 0][:, cls == c] += 3 * bump
    if like is None:
        ys, xs = 4_650_000 - 10.0 * np.arange(n), 446_000 + 10.0 * np.arange(n)
        coords = {}
    else:
        ys, xs = like.y.values[:n], like.x.values[:n]
        coords = {"spatial_ref": like.spatial_ref}
    clear = rng.random((t, n, n)) > 0.2
    da = xr.DataArray(x, dims=("time", "feature", "y", "x"), coords={
        "time": dates.values, "feature": np.arange(f), "y": ys, "x": xs, **coords,
        "doy": ("time", dates.day_of_year.values), "clear": (("time", "y", "x"), clear)},
        attrs={"weights_sha256": "ab12" * 16, "season": "synthetic"})
    labels = xr.DataArray(cls, dims=("y", "x"), coords={"y": ys, "x": xs})
    return da, labels


# ---------------------------------------------------------------- season embeddings
def test_season_embeddings_dims_coords_and_values(fc, cube, emb) -> None:
    dates = season_dates(cube, SEASON)
    assert emb.dims == ("time", "feature", "y", "x")
    assert emb.shape == (len(dates), fc.cfg.dim + fc.cfg.pixel_dim, 32, 32)
    np.testing.assert_array_equal(emb.time.values, dates.values)
    np.testing.assert_array_equal(emb.doy.values, dates.day_of_year.values)
    np.testing.assert_array_equal(emb.clear.values,
                                  cube.valid.sel(time=dates.values).values)
    assert emb.attrs["weights_sha256"] == fc.weights_id and "spatial_ref" in emb.coords
    one = fc.embed(cube, None, dates[3], progress=False)
    np.testing.assert_allclose(emb.isel(time=3).values, one.values, rtol=1e-5, atol=1e-5)
    lazy = fc.season_embeddings(cube, None, SEASON, chunks=16, progress=False)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, emb.values, rtol=1e-5, atol=1e-5)
    assert len(season_dates(cube, 2021)) > 50
    assert fc.season_embeddings(cube, None, SEASON, progress=False, chunks=None).equals(emb)


def test_season_dates_errors(cube) -> None:
    with pytest.raises(HeadError, match="no image date"):
        season_dates(cube, 1999)
    with pytest.raises(HeadError, match="year"):
        season_dates(cube, "summer")
    with pytest.raises(HeadError, match="ends before"):
        season_dates(cube, ("2022-06-01", "2022-05-01"))


# ----------------------------------------------------------------------- crop map
def test_crop_head_separates_a_synthetic_problem() -> None:
    da, labels = synthetic()
    train = labels.where(labels.y > labels.y[12], -1)  # top half labelled
    head = CropMapHead(**FAST).fit(da, train, progress=False)
    out = head.predict(da)
    bottom = (labels.y <= labels.y[12]).values[:, None].repeat(24, 1)
    acc = (out.crop_map.values == labels.values)[bottom].mean()
    assert acc > 0.95
    assert out.crop_map.dims == ("y", "x") and out.probability.dims == ("class", "y", "x")
    np.testing.assert_allclose(out.probability.sum("class").values, 1.0, atol=1e-5)
    assert list(out["class"].values) == ["0", "1", "2"]
    assert out.crop_map.attrs["flag_values"] == [0, 1, 2]


def test_crop_head_from_polygons_matches_the_raster(cube) -> None:
    da, labels = synthetic(like=cube.ds)
    xs, ys = da.x.values, da.y.values
    polys, names = [], ["corn", "soy", "wheat"]
    for c in range(3):  # one polygon per stripe, inset by a pixel at the edges
        cols = np.nonzero(labels.values[0] == c)[0]
        polys.append(box(xs[cols[0]] - 4, ys[-1] - 4, xs[cols[-1]] + 4, ys[0] + 4))
    gdf = gpd.GeoDataFrame({"crop": names}, geometry=polys, crs=cube.crs)
    far = gpd.GeoDataFrame({"crop": ["far"]}, geometry=[box(0, 0, 10, 10)], crs=cube.crs)
    idx, classes = class_raster(pd.concat([gdf, far]), da)
    assert classes == names  # a class that covers no pixel of the grid is left out
    np.testing.assert_array_equal(idx, labels.values)
    # the same polygons in another CRS land on the same pixels
    idx2, _ = class_raster(gdf.to_crs("EPSG:4326"), da)
    assert (idx2 == labels.values).mean() > 0.97
    head = CropMapHead(**FAST).fit(da, gdf, progress=False)
    out = head.predict(da)
    assert head.classes == names
    assert (out.crop_map.values == labels.values).mean() > 0.95
    assert out.crop_map.attrs["flag_meanings"] == "corn soy wheat"


def test_crop_head_on_model_embeddings_with_field_polygons(fc, cube, emb) -> None:
    head = CropMapHead(**FAST).fit(emb, cube.fields, class_column="crop_type", progress=False)
    out = head.predict(emb)
    assert out.crop_map.shape == (32, 32) and head.weights_sha256 == emb.attrs["weights_sha256"]
    truth = np.asarray(cube.ds.crop_type.values)
    names = {v: k for k, v in cube.legend("crop_type").items()}
    pred = np.vectorize(lambda i: names.get(head.classes[i], -9))(out.crop_map.values)
    assert (pred == truth).mean() > 0.5  # fitted pixels, a random-init tiny network
    # lazy (dask) embeddings are read block by block and give the same map
    lazy = fc.season_embeddings(cube, None, SEASON, chunks=16, progress=False)
    out_lazy = head.predict(lazy, block_pixels=300)
    np.testing.assert_allclose(out_lazy.probability.values, out.probability.values, atol=1e-3)


def test_crop_head_save_load_round_trip(tmp_path) -> None:
    da, labels = synthetic()
    head = CropMapHead(**FAST).fit(da, labels, progress=False)
    path = head.save(tmp_path / "head")
    assert {p.name for p in path.iterdir()} >= {"head.safetensors", "head.json"}
    cfg = json.loads((path / "head.json").read_text())
    assert cfg["kind"] == "crop_map" and cfg["classes"] == [0, 1, 2]
    back = CropMapHead.load(path)
    a, b = head.predict(da), back.predict(da)
    np.testing.assert_array_equal(a.probability.values, b.probability.values)
    np.testing.assert_array_equal(a.crop_map.values, b.crop_map.values)
    with pytest.raises(OutputPathError, match="overwrite"):
        head.save(path)
    head.save(path, overwrite=True)
    with pytest.raises(HeadError, match="crop_map"):
        SoilMoistureHead.load(path)
    with pytest.raises(HeadError, match="not a head folder"):
        CropMapHead.load(tmp_path)


def test_crop_head_errors(cube) -> None:
    da, labels = synthetic()
    shifted = labels.assign_coords(x=labels.x + 5.0)
    with pytest.raises(LabelGridError, match="not on the embeddings' grid"):
        CropMapHead(**FAST).fit(da, shifted)
    with pytest.raises(UnknownClassError, match=r"\[2\]"):
        CropMapHead(**FAST).fit(da, labels, classes=[0, 1])
    few = xr.full_like(labels, -1)
    few[0, :3] = [0, 1, 2]
    with pytest.raises(TooFewLabelsError, match="labelled pixels"):
        CropMapHead(**FAST).fit(da, few)
    rare = labels.where(labels != 2, 0).copy()
    rare[0, 0] = 2
    with pytest.raises(TooFewLabelsError, match="class 2"):
        CropMapHead(**FAST).fit(da, rare)
    with pytest.raises(TooFewLabelsError, match="one class"):
        CropMapHead(**FAST).fit(da, xr.zeros_like(labels))
    with pytest.raises(HeadError, match="dims"):
        CropMapHead(**FAST).fit(da.isel(time=0), labels)
    with pytest.raises(HeadError, match="not fitted"):
        CropMapHead().predict(da)
    gdf = gpd.GeoDataFrame({"crop": ["a"]}, geometry=[box(0, 0, 1, 1)])
    with pytest.raises(LabelGridError, match="no CRS"):
        CropMapHead(**FAST).fit(da, gdf)
    real, _ = synthetic(like=cube.ds)
    far = gpd.GeoDataFrame({"crop": ["a"]}, geometry=[box(0, 0, 10, 10)], crs=cube.crs)
    with pytest.raises(LabelGridError, match="check their CRS"):
        CropMapHead(**FAST).fit(real, far)
    with pytest.raises(UnknownClassError, match="class_column"):
        CropMapHead(**FAST).fit(real, far.rename(columns={"crop": "zzz"}))
    head = CropMapHead(**FAST).fit(da, labels, progress=False)
    with pytest.raises(HeadError, match="other|weights"):
        head.predict(da.assign_attrs(weights_sha256="ff" * 32))
    assert issubclass(HeadError, KGVSFError)


# ------------------------------------------------------------------ soil moisture
def sm_truth(da: xr.DataArray) -> xr.DataArray:
    """Soil moisture on each date: a function of feature 1 over the last two dates."""
    f1 = da.isel(feature=1)
    return (0.25 + 0.04 * (f1 + f1.shift(time=1).fillna(0))).astype("float32")


def test_soil_moisture_head_raster_and_points(tmp_path) -> None:
    da, _ = synthetic(f=4)
    truth = sm_truth(da)
    train = truth.where(truth.x < truth.x[12])
    head = SoilMoistureHead(window=3, **FAST).fit(da, train, progress=False)
    pred = head.predict(da)
    assert pred.dims == ("time", "y", "x") and pred.attrs["units"] == "m3/m3"
    right = (truth.x >= truth.x[12]).values
    t, p = truth.values[:, :, right], pred.values[:, :, right]
    r2 = 1 - ((t - p) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    assert r2 > 0.8
    # a table of points gives the same kind of fit
    rng = np.random.default_rng(1)
    ti, yi, xi = rng.integers(0, 12, 600), rng.integers(0, 24, 600), rng.integers(0, 12, 600)
    table = pd.DataFrame({"x": da.x.values[xi], "y": da.y.values[yi],
                          "time": da.time.values[ti], "sm": truth.values[ti, yi, xi]})
    head2 = SoilMoistureHead(window=3, **FAST).fit(da, table, progress=False)
    p2 = head2.predict(da).values[:, :, right]
    assert 1 - ((t - p2) ** 2).sum() / ((t - t.mean()) ** 2).sum() > 0.7
    back = SoilMoistureHead.load(head.save(tmp_path / "sm"))
    np.testing.assert_array_equal(back.predict(da).values, pred.values)


def test_soil_moisture_forecast_lead_and_errors() -> None:
    da, _ = synthetic(f=4)
    truth = sm_truth(da)
    daily = truth.interp(time=pd.date_range("2022-04-01", "2022-08-18", freq="3D"),
                         method="nearest", kwargs={"fill_value": "extrapolate"})
    head = SoilMoistureHead(lead_days=10, window=2, **FAST).fit(da, daily, progress=False)
    pred = head.predict(da)
    np.testing.assert_array_equal(pred.time.values,
                                  (pd.DatetimeIndex(da.time.values) + pd.Timedelta("10D")).values)
    np.testing.assert_array_equal(pred.image_time.values, da.time.values)
    assert np.isfinite(pred.values).all()
    with pytest.raises(LabelGridError, match="outside the grid"):
        SoilMoistureHead(**FAST).fit(da, pd.DataFrame({"x": [0.0], "y": [0.0], "time": [
            da.time.values[0]], "sm": [0.2]}))
    with pytest.raises(LabelGridError, match="lacks"):
        SoilMoistureHead(**FAST).fit(da, pd.DataFrame({"x": [0.0], "value": [0.2]}))
    few = truth.isel(time=[0]).where((truth.x < truth.x[1]) & (truth.y > truth.y[5]))
    with pytest.raises(TooFewLabelsError, match="5 soil moisture observations"):
        SoilMoistureHead(**FAST).fit(da, few)
    with pytest.raises(HeadError, match="lead_days"):
        SoilMoistureHead(lead_days=-1)


def test_cli_crop_map(tmp_path, fc, cube) -> None:
    from kgvsf_explore.cli import main
    from kgvsf_explore.training.checkpoint import save_checkpoint
    from kgvsf_explore.world import write_world

    weights = save_checkpoint(tmp_path / "w", fc.model, fc.cfg, None, {})
    write_world(tmp_path / "c", seed=31, size="tiny")
    fields = cube.fields
    fields.to_parquet(tmp_path / "fields.parquet")
    args = ["crop-map", "--cube", str(tmp_path / "c"), "--labels",
            str(tmp_path / "fields.parquet"), "--class-column", "crop_type", "--year", "2022",
            "--weights", str(weights), "--steps", "60", "--every", "8",
            "--save-head", str(tmp_path / "h"),
            "--out", str(tmp_path / "map.zarr"), "--quiet"]
    assert main(args) == 0
    out = xr.open_zarr(tmp_path / "map.zarr", consolidated=False)
    assert out.crop_map.shape == (32, 32) and out.probability.sizes["class"] >= 3
    assert CropMapHead.load(tmp_path / "h").classes == list(out["class"].values)
    bad = args[:4] + [str(tmp_path / "nope.parquet")] + args[5:-3] + [
        "--out", str(tmp_path / "m2.zarr"), "--quiet"]
    assert main(bad) == 2


def test_soil_moisture_head_reads_the_weather_up_to_the_day(cube, tmp_path) -> None:
    from kgvsf_explore.evaluation.peers.drivers import DriverSums
    from kgvsf_explore.heads._base import days_of

    da, _ = synthetic(f=4, like=cube.ds)
    sums = DriverSums(cube)
    rr, cc = (a.ravel() for a in np.mgrid[0:24, 0:24])
    ip = sums.names.index("prcp")
    rain = np.stack([sums.mean(d - 6, d, rr, cc)[:, ip].reshape(24, 24) for d in days_of(da)])
    assert rain.std() > 0
    # the soil answers the last week's rain, which no embedding feature carries
    truth = xr.DataArray((0.25 + 0.05 * (rain - rain.mean()) / rain.std()).astype("float32"),
                         dims=("time", "y", "x"),
                         coords={"time": da.time.values, "y": da.y.values, "x": da.x.values})
    train = truth.where(truth.x < truth.x[12])
    right = (truth.x >= truth.x[12]).values
    t = truth.values[:, :, right]

    def r2(pred: xr.DataArray) -> float:
        p = pred.values[:, :, right]
        return float(1 - ((t - p) ** 2).sum() / ((t - t.mean()) ** 2).sum())

    plain = SoilMoistureHead(window=3, **FAST).fit(da, train, progress=False)
    wx = SoilMoistureHead(window=3, **FAST).fit(da, train, weather=cube, progress=False)
    assert "weather" in repr(wx) and wx.weather["drivers"] == list(sums.names)
    with_weather = wx.predict(da, weather=cube)
    assert r2(with_weather) > 0.8 and r2(with_weather) > r2(plain.predict(da)) + 0.3
    back = SoilMoistureHead.load(wx.save(tmp_path / "sm-weather"))
    np.testing.assert_array_equal(back.predict(da, weather=cube).values, with_weather.values)
    with pytest.raises(HeadError, match="fitted with weather="):
        wx.predict(da)
    with pytest.raises(HeadError, match="fitted without weather="):
        plain.predict(da, weather=cube)
    with pytest.raises(HeadError, match="takes the Cube"):
        SoilMoistureHead(**FAST).fit(da, train, weather=cube.ds)
    far = da.assign_coords(x=da.x.values + 1e6)
    with pytest.raises(HeadError, match="outside the weather cube"):
        SoilMoistureHead(**FAST).fit(far, train.assign_coords(x=far.x.values), weather=cube)
