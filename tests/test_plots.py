"""The plots of kgvsf_explore.plots: holoviews types, keys, coordinates, colours and errors.

Everything runs on small synthetic cubes and forecasts (plus one check on the shipped sample
cube) and renders with bokeh in memory: no browser, no network.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from bokeh.models import ColorBar, HoverTool, Legend
from conftest import make_fake_dataset

from kgvsf_explore import plots, schema
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.embeddings import kmeans
from kgvsf_explore.errors import KGVSFError, RegionError
from kgvsf_explore.plots import _series, _style

hv.extension("bokeh")

CRS_LABEL = "x (EPSG:32615, m)"
HORIZONS = (5, 15, 30)


# ------------------------------------------------------------------------------ fixtures


def make_forecast(cube: Cube, t: str, horizons=HORIZONS, scenarios=("observed", "dry"),
                  rows=slice(2, 12), cols=slice(3, 17), seed: int = 0) -> xr.Dataset:
    """A forecast laid out as forecast_region lays it out, with random reflectance."""
    ds = cube.ds
    t0 = pd.Timestamp(t)
    rng = np.random.default_rng(seed)
    y, x = ds.y.values[rows], ds.x.values[cols]
    shape = (len(horizons), len(schema.BANDS), len(y), len(x))
    coords = {"horizon": ("horizon", list(horizons), {"units": "days"}),
              "band": list(schema.BANDS), "y": y, "x": x,
              "time": ("horizon", [t0 + pd.Timedelta(days=h) for h in horizons])}
    dims: tuple[str, ...] = ("horizon", "band", "y", "x")
    if scenarios:
        coords["scenario"] = list(scenarios)
        dims = ("scenario", *dims)
        shape = (len(scenarios), *shape)
    out = xr.Dataset(coords=coords)
    out["reflectance"] = (dims, rng.uniform(0.02, 0.5, shape).astype("float32"))
    nir, red = out.reflectance.sel(band="B08"), out.reflectance.sel(band="B04")
    out["ndvi"] = (nir - red) / (nir + red)
    out[schema.GRID_MAPPING] = ds[schema.GRID_MAPPING]
    out.attrs = {"t": str(t0.date()), "model": "fake", "scenarios": "[]"}
    return out


@pytest.fixture(scope="module")
def cube() -> Cube:
    return Cube(make_fake_dataset(ny=16, nx=20, n_days=160))


@pytest.fixture(scope="module")
def t(cube: Cube) -> str:
    return str(cube.times[12].date())  # an image date, as forecast_region's t always is


@pytest.fixture(scope="module")
def forecast(cube: Cube, t: str) -> xr.Dataset:
    return make_forecast(cube, t)


class Doubling:
    """A duck-typed scenario: multiplies prcp by two (on whatever grid it is given)."""

    name = "wet"

    def apply(self, ds: xr.Dataset) -> xr.Dataset:
        names = [d for d in schema.DRIVERS if d in ds.data_vars]
        return ds[names].assign(prcp=ds["prcp"] * 2)


def figures(plot) -> list:
    """The bokeh figures of a rendered layout (or the figure itself)."""
    children = getattr(plot, "children", None)
    if children is None:
        return [plot]
    out = []
    for child in children:
        out += figures(child[0] if isinstance(child, tuple) else child)
    return out


def colorbar(fig) -> ColorBar:
    return next(r for r in fig.right if isinstance(r, ColorBar))


def elements(overlay, kind, label=None) -> list:
    return [e for e in overlay if isinstance(e, kind) and (label is None or e.label == label)]


# ------------------------------------------------------------------------------ forecast maps


def test_forecast_maps_slider_and_selector(forecast: xr.Dataset, t: str) -> None:
    maps = plots.forecast_maps(forecast)
    assert isinstance(maps, hv.HoloMap)
    assert [d.name for d in maps.kdims] == ["scenario", "horizon"]
    assert set(maps.keys()) == {(s, h) for s in ("observed", "dry") for h in HORIZONS}
    assert maps.get_dimension("scenario").values == ["observed", "dry"]  # data order kept
    horizon = maps.get_dimension("horizon")
    date = (pd.Timestamp(t) + pd.Timedelta(days=15)).date()
    assert horizon.pprint_value(15) == f"15 d ({date})"
    image = maps[("dry", 15)]
    assert isinstance(image, hv.Image)
    np.testing.assert_allclose(image.dimension_values("x", expanded=False), forecast.x.values)
    np.testing.assert_allclose(np.sort(image.dimension_values("y", expanded=False)),
                               np.sort(forecast.y.values))
    np.testing.assert_allclose(image.dimension_values(2, flat=False)[::-1],
                               forecast.ndvi.sel(scenario="dry", horizon=15).values, rtol=1e-6)
    fig = hv.render(maps, backend="bokeh")
    assert fig.xaxis[0].axis_label == CRS_LABEL and "EPSG:32615" in fig.yaxis[0].axis_label
    assert fig.frame_width == _style.FRAME_WIDTH
    bar = colorbar(fig)
    assert (bar.color_mapper.low, bar.color_mapper.high) == (-1.0, 1.0)
    assert bar.color_mapper.palette[0].lower() == "#a50026"  # RdYlGn starts red
    assert f"from {t}" in fig.title.text
    res = float(forecast.x[1] - forecast.x[0])
    assert fig.x_range.start == pytest.approx(float(forecast.x.min()) - res / 2)


def test_forecast_maps_options(forecast: xr.Dataset) -> None:
    one = plots.forecast_maps(forecast, scenario="dry", frame_width=250, cmap="viridis")
    assert [d.name for d in one.kdims] == ["horizon"]
    fig = hv.render(one, backend="bokeh")
    assert fig.frame_width == 250
    refl = plots.forecast_maps(forecast, "reflectance", band="B04")
    bar = colorbar(hv.render(refl, backend="bokeh"))
    top = np.nanpercentile(forecast.reflectance.sel(band="B04").values, 99)
    assert bar.color_mapper.low == 0 and bar.color_mapper.high == pytest.approx(top)
    assert "B04" in bar.title
    given = colorbar(hv.render(plots.forecast_maps(forecast, "B04", clim=(0, 0.3)),
                               backend="bokeh"))
    assert (given.color_mapper.low, given.color_mapper.high) == (0, 0.3)
    by_name = plots.forecast_maps(forecast, "B04")  # a band name stands for its reflectance
    assert by_name[("dry", 5)].vdims == refl[("dry", 5)].vdims


def test_forecast_maps_layout_links_zoom(forecast: xr.Dataset) -> None:
    grid = plots.forecast_maps(forecast, layout="horizon", scenario="observed")
    assert isinstance(grid, hv.NdLayout) and [d.name for d in grid.kdims] == ["horizon"]
    assert len(grid) == len(HORIZONS)
    figs = figures(hv.render(grid, backend="bokeh"))
    assert len(figs) == len(HORIZONS)
    assert all(f.x_range is figs[0].x_range and f.y_range is figs[0].y_range for f in figs)


def test_forecast_maps_dynamic_and_single(cube: Cube, t: str) -> None:
    fc = make_forecast(cube, t, horizons=(10,), scenarios=None)
    maps = plots.forecast_maps(fc, dynamic=True)
    assert isinstance(maps, hv.DynamicMap) and [d.name for d in maps.kdims] == ["horizon"]
    hv.render(maps, backend="bokeh")
    assert isinstance(plots.forecast_maps(fc.isel(horizon=0, drop=True)), hv.Image)


@pytest.mark.parametrize("kwargs, message", [
    ({"var": "evi"}, "no variable 'evi'"),
    ({"var": "reflectance", "band": "B99"}, "no band 'B99'"),
    ({"scenario": "wet"}, "no scenario 'wet'"),
    ({"layout": "band"}, "layout='band'"),
])
def test_forecast_maps_errors(forecast: xr.Dataset, kwargs: dict, message: str) -> None:
    with pytest.raises(KGVSFError, match=message):
        plots.forecast_maps(forecast, **kwargs)


# ------------------------------------------------------------------------------ differences


def test_difference_map_symmetric_clim(forecast: xr.Dataset) -> None:
    ndvi = forecast["ndvi"]
    diff = (ndvi.sel(scenario=["dry"]) - ndvi.sel(scenario="observed", drop=True)).rename(
        "ndvi_difference").assign_attrs(subtracted="scenario 'observed'")
    maps = plots.difference_map(diff)
    assert isinstance(maps, hv.HoloMap)
    assert [d.name for d in maps.kdims] == ["scenario", "horizon"]
    bar = colorbar(hv.render(maps, backend="bokeh"))
    vmax = np.nanpercentile(np.abs(diff.values), 99)
    assert bar.color_mapper.low == pytest.approx(-vmax)
    assert bar.color_mapper.high == pytest.approx(vmax)
    assert bar.color_mapper.palette[0].lower() == "#543005"  # BrBG: diverging brown..green
    given = colorbar(hv.render(plots.difference_map(diff, vmax=0.2), backend="bokeh"))
    assert (given.color_mapper.low, given.color_mapper.high) == (-0.2, 0.2)
    zero = colorbar(hv.render(plots.difference_map(diff * 0), backend="bokeh"))
    assert zero.color_mapper.low == -zero.color_mapper.high < 0


def test_difference_map_of_compare(forecast: xr.Dataset) -> None:
    from kgvsf_explore.forecaster import Forecaster

    diff = Forecaster.compare(forecast)
    maps = plots.difference_map(diff)
    fig = hv.render(maps, backend="bokeh")
    assert "minus scenario 'observed'" in fig.title.text
    assert fig.xaxis[0].axis_label == "x"  # compare's result carries no CRS ...
    labelled = hv.render(plots.difference_map(diff, crs="EPSG:32615"), backend="bokeh")
    assert labelled.xaxis[0].axis_label == CRS_LABEL  # ... unless told
    refl = plots.difference_map(Forecaster.compare(forecast, var="reflectance"), band="B04")
    assert [d.name for d in refl.kdims] == ["scenario", "horizon"]
    with pytest.raises(KGVSFError, match="Forecaster.compare"):
        plots.difference_map(forecast)


# ------------------------------------------------------------------------------ trajectory


def test_trajectory_field(cube: Cube, forecast: xr.Dataset, t: str) -> None:
    layout = plots.trajectory(cube, forecast, field=12, scenarios=[None, Doubling()])
    assert isinstance(layout, hv.Layout) and len(layout) == 3  # NDVI, prcp, tmax
    main, prcp, tmax = layout
    t0 = pd.Timestamp(t)
    # forecasts: one colour per scenario, points at t + k, lines joined from the value at t
    dry = elements(main, hv.Scatter, "forecast, dry")[0]
    expected = [t0 + pd.Timedelta(days=h) for h in HORIZONS]
    assert list(pd.DatetimeIndex(dry.dimension_values("time"))) == expected
    mask = cube.field_id == 12
    fc_mean = forecast.ndvi.sel(scenario="dry").where(mask).mean(("y", "x"))
    np.testing.assert_allclose(dry.dimension_values("ndvi"), fc_mean.values, rtol=1e-5)
    line = elements(main, hv.Curve, "forecast, dry")[0]
    assert pd.Timestamp(line.dimension_values("time")[0]) == t0
    assert [v.data for v in elements(main, hv.VLine)] == [t0]
    colours = {e.opts.get().kwargs["color"] for e in elements(main, hv.Scatter)
               if e.label.startswith("forecast")}
    assert len(colours) == 2
    # observations are cloud-free points and the truth is a line
    obs = elements(main, hv.Scatter, "observed (cloud-free)")[0]
    assert np.isfinite(obs.dimension_values("ndvi")).all() and len(obs) > 3
    assert elements(main, hv.Curve, "cloud-free truth")
    # window: t - 90 d .. last forecast date + 10 d (clipped to the record)
    truth_times = pd.DatetimeIndex(elements(main, hv.Curve, "cloud-free truth")[0]
                                   .dimension_values("time"))
    assert truth_times.min() >= t0 - pd.Timedelta(days=90)
    # drivers: observed, and the scenario's from t on (prcp doubled)
    observed = elements(prcp, hv.Curve, "observed weather")[0]
    wet = elements(prcp, hv.Curve, "weather, wet")[0]
    assert pd.Timestamp(wet.dimension_values("time")[0]) == t0
    obs_prcp = pd.Series(observed.dimension_values("prcp"),
                         pd.DatetimeIndex(observed.dimension_values("time")))
    wet_prcp = pd.Series(wet.dimension_values("prcp"),
                         pd.DatetimeIndex(wet.dimension_values("time")))
    np.testing.assert_allclose(wet_prcp, 2 * obs_prcp[wet_prcp.index], rtol=1e-5)
    assert pd.DatetimeIndex(observed.dimension_values("time")).max() <= (
        expected[-1] + pd.Timedelta(days=10))
    # rendering: one column of panels sharing the time axis
    figs = figures(hv.render(layout, backend="bokeh"))
    assert len(figs) == 3
    assert all(f.x_range is figs[0].x_range for f in figs)
    assert figs[1].y_range is not figs[0].y_range
    assert figs[1].yaxis[0].axis_label == "prcp (mm/day)"
    legend = next(r for r in figs[0].right if isinstance(r, Legend))
    labels = [item.label.value for item in legend.items]
    assert labels.count("forecast, dry") == 1 and "cloud-free truth" in labels


def test_trajectory_pixel_two_panels(cube: Cube, forecast: xr.Dataset) -> None:
    ds = cube.ds
    x, y = float(ds.x[5]) + 3.0, float(ds.y[4]) - 2.0  # off-centre: the nearest pixel wins
    layout = plots.trajectory(cube, forecast, pixel=(x, y), drivers=("prcp",))
    assert len(layout) == 2
    main = layout[0]
    assert main.opts.get().kwargs["title"].startswith(f"pixel ({ds.x.values[5]:.0f}, ")
    obs = elements(main, hv.Scatter, "observed (cloud-free)")[0]
    ndvi = cube.ndvi().isel(y=4, x=5).to_series().dropna()
    ndvi = ndvi[pd.DatetimeIndex(obs.dimension_values("time"))]
    np.testing.assert_allclose(obs.dimension_values("ndvi"), ndvi.values, rtol=1e-5)
    dry = elements(main, hv.Scatter, "forecast, dry")[0]
    np.testing.assert_allclose(dry.dimension_values("ndvi"),
                               forecast.ndvi.sel(scenario="dry", x=ds.x[5], y=ds.y[4]).values,
                               rtol=1e-5)
    figs = figures(hv.render(layout, backend="bokeh"))
    assert len(figs) == 2 and figs[0].x_range is figs[1].x_range


def test_trajectory_other_var_and_no_forecast(cube: Cube, forecast: xr.Dataset) -> None:
    layout = plots.trajectory(cube, [forecast], field=1, var="NDWI", drivers=())
    assert len(layout) == 1
    assert elements(layout[0], hv.Scatter, "forecast, observed")  # computed from reflectance
    alone = plots.trajectory(cube, None, field=1, drivers=("tmax",), window=None)
    times = pd.DatetimeIndex(elements(alone[0], hv.Curve, "cloud-free truth")[0]
                             .dimension_values("time"))
    assert times.min() == cube.times.min() and times.max() == cube.times.max()
    hv.render(alone, backend="bokeh")


def test_trajectory_with_real_scenario(cube: Cube, forecast: xr.Dataset, t: str) -> None:
    from kgvsf_explore import Scenario

    hot = Scenario.parse("tmax +3", name="dry")
    layout = plots.trajectory(cube, forecast, field=2, scenarios=[None, hot])
    tmax = layout[2]
    observed = elements(tmax, hv.Curve, "observed weather")[0]
    changed = elements(tmax, hv.Curve, "weather, dry")[0]
    base = pd.Series(observed.dimension_values("tmax"),
                     pd.DatetimeIndex(observed.dimension_values("time")))
    np.testing.assert_allclose(changed.dimension_values("tmax"),
                               base[pd.DatetimeIndex(changed.dimension_values("time"))] + 3,
                               rtol=1e-5)
    # the scenario's drivers share the colour of its forecast
    fc_colour = elements(layout[0], hv.Scatter, "forecast, dry")[0].opts.get().kwargs["color"]
    assert changed.opts.get().kwargs["color"] == fc_colour


@pytest.mark.parametrize("kwargs, error, message", [
    ({"pixel": (0.0, 0.0)}, RegionError, "pixel \\(0.0, 0.0\\) lies outside the cube"),
    ({"field": 999}, KGVSFError, "unknown field id 999"),
    ({"field": 1, "pixel": (440_005.0, 4_649_995.0)}, KGVSFError, "exactly one"),
    ({}, KGVSFError, "exactly one"),
    ({"field": 1, "var": "wetness"}, KGVSFError, "unknown variable 'wetness'"),
    ({"field": 1, "drivers": ("wind",)}, KGVSFError, "unknown driver\\(s\\) \\['wind'\\]"),
])
def test_trajectory_errors(cube: Cube, forecast: xr.Dataset, kwargs: dict, error: type,
                           message: str) -> None:
    with pytest.raises(error, match=message):
        plots.trajectory(cube, forecast, **kwargs)


def test_trajectory_forecast_elsewhere(cube: Cube, forecast: xr.Dataset) -> None:
    ds = cube.ds
    corner = (float(ds.x[-1]), float(ds.y[-1]))  # outside the forecast's rows and columns
    with pytest.raises(KGVSFError, match="does not cover pixel"):
        plots.trajectory(cube, forecast, pixel=corner)


def test_series_helpers(cube: Cube) -> None:
    place = _series.locate(cube, None, 11)
    assert int(place.mask.sum()) == int((cube.field_id == 11).sum())
    assert _series.scenario_name(None, 0) == "observed"
    assert _series.scenario_name(Doubling(), 1) == "wet"
    table = _series.driver_series(place, ["prcp"], [Doubling()], slice(None, None))
    assert set(table["scenario"]) == {"observed", "wet"}


# ------------------------------------------------------------------------------ embeddings


@pytest.fixture(scope="module")
def emb(cube: Cube) -> xr.DataArray:
    rng = np.random.default_rng(1)
    ds = cube.ds
    values = rng.normal(size=(6, ds.sizes["y"], ds.sizes["x"]))
    values[:, 0, 0] = np.nan
    return xr.DataArray(values, dims=("feature", "y", "x"),
                        coords={"y": ds.y, "x": ds.x,
                                schema.GRID_MAPPING: ds[schema.GRID_MAPPING]},
                        attrs={"t": "2021-04-01"})


def test_embedding_map(emb: xr.DataArray) -> None:
    from kgvsf_explore.embeddings import pca_rgb

    rgb = plots.embedding_map(emb)
    assert isinstance(rgb, hv.RGB) and [d.name for d in rgb.kdims] == ["x", "y"]
    np.testing.assert_allclose(rgb.dimension_values("x", expanded=False), emb.x.values)
    fig = hv.render(rgb, backend="bokeh")
    assert fig.xaxis[0].axis_label == CRS_LABEL and "2021-04-01" in fig.title.text
    again = plots.embedding_map(pca_rgb(emb))  # an RGB goes in as it is
    np.testing.assert_allclose(again.dimension_values("R"), rgb.dimension_values("R"))
    with pytest.raises(KGVSFError, match="pick one"):
        plots.embedding_map(xr.concat([emb, emb], "time"))
    with pytest.raises(KGVSFError, match="expects embeddings"):
        plots.embedding_map(emb.rename(feature="channel"))


def test_cluster_map(emb: xr.DataArray) -> None:
    labels = kmeans(emb, k=3)
    img = plots.cluster_map(labels)
    assert isinstance(img, hv.Image)
    assert np.isnan(img.dimension_values(2, flat=False)[::-1][0, 0])  # no embedding: blank
    bar = colorbar(hv.render(img, backend="bokeh"))
    assert list(bar.major_label_overrides.values()) == ["cluster 0", "cluster 1", "cluster 2"]
    with pytest.raises(KGVSFError, match="\\(y, x\\) labels"):
        plots.cluster_map(emb)


# ------------------------------------------------------------------------------ cube layers


def test_crop_map_names(cube: Cube) -> None:
    img = plots.crop_map(cube)
    assert isinstance(img, hv.Image)
    fig = hv.render(img, backend="bokeh")
    bar = colorbar(fig)
    names = list(schema.CROP_CLASSES.values())
    assert list(bar.major_label_overrides.values()) == names
    assert list(bar.ticker.ticks) == list(range(len(names)))
    assert bar.color_mapper.palette[1] == _style.CLASS_COLOURS["corn"]
    hover = next(t for t in fig.tools if isinstance(t, HoverTool))
    assert ("crop type", "@image{custom}") in hover.tooltips
    assert "winter_wheat" in hover.formatters["@image"].code
    assert fig.xaxis[0].axis_label == CRS_LABEL


def test_categorical_codes_with_gaps() -> None:
    from kgvsf_explore.plots._categorical import categorical_map

    codes = xr.DataArray(np.array([[0, 1], [5, 7]]), dims=("y", "x"),
                         coords={"y": [10.0, 0.0], "x": [0.0, 10.0]})
    img = categorical_map(codes, {0: "bare", 1: "corn", 5: "wheat"}, title="c", label="class")
    np.testing.assert_array_equal(img.dimension_values(2, flat=False)[::-1], [[0, 1], [2, 3]])
    bar = colorbar(hv.render(img, backend="bokeh"))
    assert list(bar.major_label_overrides.values()) == ["bare", "corn", "wheat", "class 7"]


def test_soil_moisture_map(cube: Cube) -> None:
    img = plots.soil_moisture_map(cube, "2021-04-10T13:00")
    assert isinstance(img, hv.Image)
    expected = cube.ds.soil_moisture.sel(day="2021-04-11")  # 13:00 is nearer the 11th
    np.testing.assert_allclose(img.dimension_values(2, flat=False)[::-1], expected.values)
    fig = hv.render(img, backend="bokeh")
    assert "2021-04-11" in fig.title.text
    bar = colorbar(fig)
    assert bar.title == "soil moisture (m3/m3)"
    assert bar.color_mapper.low < bar.color_mapper.high
    with pytest.raises(KGVSFError, match="soil_moisture"):
        plots.soil_moisture_map(Cube(cube.ds.drop_vars("soil_moisture")), "2021-04-10")
    with pytest.raises(KGVSFError, match="as a date"):
        plots.soil_moisture_map(cube, "tomorrow-ish")


# ------------------------------------------------------------------------------ tiles


def test_tiles_need_geoviews(monkeypatch, cube: Cube, forecast: xr.Dataset,
                             emb: xr.DataArray) -> None:
    monkeypatch.setattr(_style, "has_module", lambda name: name != "geoviews")
    calls = [
        lambda: plots.forecast_maps(forecast, tiles="OSM"),
        lambda: plots.difference_map(forecast.ndvi - forecast.ndvi, tiles=True),
        lambda: plots.crop_map(cube, tiles="EsriImagery"),
        lambda: plots.soil_moisture_map(cube, "2021-04-10", tiles=True),
        lambda: plots.embedding_map(emb, tiles=True),
        lambda: plots.cluster_map(kmeans(emb, k=2), tiles=True),
    ]
    for call in calls:
        with pytest.raises(plots.MissingDependencyError, match="pip install geoviews") as err:
            call()
        assert isinstance(err.value, ImportError) and isinstance(err.value, KGVSFError)


# ------------------------------------------------------------------------------ sample cube


def test_on_the_sample_cube() -> None:
    import kgvsf_explore as kx

    cube = kx.open_cube(kx.sample_path())
    bar = colorbar(hv.render(plots.crop_map(cube), backend="bokeh"))
    assert list(bar.major_label_overrides.values()) == list(cube.legend("crop_type").values())
    t = str(cube.sel_time("2022-06-01", "2022-07-01").times[-1].date())
    fc = make_forecast(cube, t, rows=slice(20, 60), cols=slice(30, 70))
    field = int(cube.ds.field_id.values[40, 50])
    layout = plots.trajectory(cube, fc, field=field)
    points = elements(layout[0], hv.Scatter, "forecast, observed")[0]
    assert list(pd.DatetimeIndex(points.dimension_values("time"))) == [
        pd.Timestamp(t) + pd.Timedelta(days=h) for h in HORIZONS]
    figs = figures(hv.render(layout, backend="bokeh"))
    assert len(figs) == 3 and all(f.x_range is figs[0].x_range for f in figs)
    hv.render(plots.forecast_maps(fc), backend="bokeh")
