"""The dashboard without a browser: its fast re-forecast core and the Explorer driven by params.

Uses the shipped sample cube and weights with small regions (one to four model tiles), so the
whole file runs in well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import make_fake_dataset

from kgvsf_explore import schema
from kgvsf_explore.app.controls import WeatherControls
from kgvsf_explore.app.drivers import DriverMap
from kgvsf_explore.app.explorer import MAX_REGION_PIXELS, Explorer
from kgvsf_explore.app.session import RegionSession, SessionCache, with_drivers_in_memory
from kgvsf_explore.app.truth import region_truth
from kgvsf_explore.cube import open_cube
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.data import sample_path
from kgvsf_explore.forecaster import Forecaster
from kgvsf_explore.inference.region import forecast_region, scenario_drivers
from kgvsf_explore.inference.tiles import tile_drivers
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.weights import load_model

START = "2022-06-30"
HOT_DRY = Scenario.parse("tmax -9 from 2022-07-01 to 2022-08-31",
                         "tmin -9 from 2022-07-01 to 2022-08-31",
                         "prcp x0.3 from 2022-07-10 to 2022-08-10", name="cold-dry")


@pytest.fixture(scope="module")
def cube() -> Cube:
    return with_drivers_in_memory(open_cube(sample_path()))


@pytest.fixture(scope="module")
def forecaster() -> Forecaster:
    model, sha = load_model()
    return Forecaster(model, sha)


@pytest.fixture(scope="module")
def session(cube: Cube, forecaster: Forecaster) -> RegionSession:
    return RegionSession(forecaster.model, cube, START, rows=slice(20, 60), cols=slice(40, 90))


def _box(cube: Cube, rows: slice, cols: slice) -> tuple[float, float, float, float]:
    x, y = cube.ds.x.values[cols], cube.ds.y.values[rows]
    return (float(x.min() - 5), float(y.min() - 5), float(x.max() + 5), float(y.max() + 5))


@pytest.fixture
def explorer(cube: Cube, forecaster: Forecaster) -> Explorer:
    ex = Explorer(cube, forecaster, background=False,
                  bbox=_box(cube, slice(32, 64), slice(32, 64)), start=dt.date(2022, 6, 30))
    yield ex
    ex.close()


# ------------------------------------------------------------------------- drivers and session
@pytest.mark.parametrize("layout", ["met", "pixel", "series"])
def test_driver_map_equals_the_slow_path(layout: str) -> None:
    ds = make_fake_dataset(ny=40, nx=44, drivers_on=layout)
    cube = Cube(ds)
    windows = [(0, 0), (8, 12), (24, 28)]
    dmap = DriverMap(cube, windows, 16, schema.DRIVERS, 30, 59)
    # vp clipping (tmax lowered until saturation at tmax is under the vapour pressure) makes
    # the scenario non-linear
    scen = Scenario.parse("tmax -12", "tmin -12", "prcp x0.5 from 2021-04-10 to 2021-05-01",
                          "srad x1.2")
    for sc in (None, scen):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got, notes = dmap.future(sc)
            drivers = scenario_drivers(cube, sc)
        ref = np.stack([tile_drivers(drivers, ds, slice(r, r + 16), slice(c, c + 16), 30, 59,
                                     schema.DRIVERS) for r, c in windows])
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-4)
        assert (sc is None) or any("clipped" in n for n in notes)


@pytest.mark.filterwarnings("ignore::kgvsf_explore.errors.ScenarioClipWarning")
def test_region_session_equals_forecast_region(session: RegionSession, cube: Cube,
                                               forecaster: Forecaster) -> None:
    model = forecaster.model
    ref = forecast_region(model, cube, START, [5, 30], [None, HOT_DRY], rows=session.rows,
                          cols=session.cols, progress=False)
    base = session.baseline([5, 30])
    scen = session.forecast([5, 30], HOT_DRY)
    np.testing.assert_allclose(base, ref.reflectance.values[0], atol=2e-6)
    np.testing.assert_allclose(scen, ref.reflectance.values[1], atol=2e-6)
    assert np.abs(scen - base).max() > 1e-3
    assert session.forecast([5, 30], None) is not scen  # the baseline path
    # one pixel, all tiles over it averaged as in the maps
    px = session.pixel_forecast(30, 50, [5, 30], [None, HOT_DRY])
    np.testing.assert_allclose(px[0], base[:, :, 10, 10], atol=2e-6)
    np.testing.assert_allclose(px[1], scen[:, :, 10, 10], atol=2e-6)


def test_session_checks_horizons_and_dates(session: RegionSession, cube: Cube,
                                           forecaster: Forecaster) -> None:
    from kgvsf_explore.errors import KGVSFError

    with pytest.raises(KGVSFError, match="1..60 days"):
        session.forecast([0])
    with pytest.raises(KGVSFError, match="horizon 61 days"):
        session.forecast([61])
    with pytest.raises(KGVSFError, match="no image on or before"):
        RegionSession(forecaster.model, cube, "2019-06-01", rows=slice(0, 8), cols=slice(0, 8))
    late = RegionSession(forecaster.model, cube, "2022-12-20", rows=slice(0, 8),
                         cols=slice(0, 8))
    assert late.k_max < 60
    with pytest.raises(KGVSFError, match="drivers end"):
        late.forecast([late.k_max + 1])


def test_session_embedding_matches_forecaster(session: RegionSession, cube: Cube,
                                              forecaster: Forecaster) -> None:
    emb = session.embedding()
    ref = forecaster.embed(cube, _box(cube, session.rows, session.cols), START, progress=False)
    assert emb.shape == ref.shape
    np.testing.assert_allclose(emb, ref.values, atol=1e-5)
    rgb = session.embedding_rgb()
    assert rgb.shape == (3, *session.shape) and np.nanmax(rgb) <= 1.0


def test_session_cache_keys_on_image_date(cube: Cube, forecaster: Forecaster) -> None:
    cache = SessionCache(forecaster.model, cube, size=2)
    rows, cols = slice(0, 8), slice(0, 8)
    a = cache.get("2022-06-30", rows, cols)
    times = pd.DatetimeIndex(cube.ds.time.values)
    t = times[times <= pd.Timestamp("2022-06-30")][-1]
    assert cache.get(t, rows, cols) is a  # same last image: same session
    cache.get("2022-05-01", rows, cols)
    cache.get("2022-04-01", rows, cols)
    assert len(cache) == 2 and cache.key("2022-06-30", rows, cols) not in cache


# ------------------------------------------------------------------------- controls and truth
def test_weather_controls_scenario() -> None:
    assert WeatherControls().scenario("2022-06-30", 60) is None
    c = WeatherControls(temp_offset=2.0, rain_scale=0.5, srad_scale=1.1,
                        drought=("2022-06-01", "2022-07-10"), year=2021)
    s = c.scenario("2022-06-30", 60)
    assert s.changes[0].variable == "prcp" or "2021" in s.name
    windows = {(str(ch.start)[:10], str(ch.end)[:10]) for ch in s.changes}
    assert ("2022-07-01", "2022-08-29") in windows
    assert ("2022-07-01", "2022-07-10") in windows  # the drought, clipped to the period
    outside = WeatherControls(drought=("2022-01-01", "2022-01-31"))
    assert outside.scenario("2022-06-30", 60) is None
    assert "outside the forecast period" in outside.notes("2022-06-30", 60)[0]


def test_region_truth_is_the_simulators() -> None:
    from kgvsf_explore.world import make_world

    base = open_cube(sample_path()).ds
    days = pd.DatetimeIndex(base.time.values[3:6])  # early 2020: a short run
    rows, cols = slice(40, 48), slice(100, 110)
    got = region_truth(base, None, rows, cols, days)
    ref = np.stack([base[schema.truth_name(b)].sel(time=days).values[:, rows, cols]
                    for b in schema.BANDS], axis=1)
    np.testing.assert_allclose(got.reflectance.values, ref, atol=5.1e-5)  # stored x 1e-4
    np.testing.assert_allclose(got.soil_moisture.values,
                               base.soil_moisture.sel(day=days).values[:, rows, cols], atol=1e-3)
    # under a scenario: the same as re-running the whole (tiny) world
    scen = Scenario.parse("prcp =0 from 2021-04-01 to 2021-05-31",
                          "tmax +4 from 2021-04-01 to 2021-05-31")
    tiny, _ = make_world(seed=5, size="tiny")
    cf, _ = make_world(seed=5, size="tiny", scenario=scen)
    days = pd.DatetimeIndex(cf.time.values).to_series()["2021-06-01":"2021-06-20"].index
    got = region_truth(tiny, scen, slice(4, 12), slice(10, 20), days)
    ref = np.stack([cf[schema.truth_name(b)].sel(time=days).values[:, 4:12, 10:20]
                    for b in schema.BANDS], axis=1)
    np.testing.assert_array_equal(got.reflectance.values, ref)


def test_truth_cache_runs_the_simulator_in_the_servers_process_pool() -> None:
    # served, the simulator runs in a spawned process (off the server's GIL): same answer
    from kgvsf_explore.app.truth import TruthCache, simulator_pool
    from kgvsf_explore.world import make_world

    tiny, _ = make_world(seed=5, size="tiny")
    scen = Scenario.parse("prcp =0 from 2021-04-01 to 2021-05-31")
    rows, cols, t = slice(4, 8), slice(10, 14), "2021-05-20"
    here = TruthCache(tiny).get(rows, cols, t, 5, scen)
    pool = simulator_pool()
    assert simulator_pool() is pool  # one pool per server process
    there = TruthCache(tiny, pool=pool).get(rows, cols, t, 5, scen)
    for a, b in zip(here, there):
        xr.testing.assert_equal(a, b)
    assert not here[0].identical(here[1])  # the scenario changed something


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie nobody has reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")
def test_simulator_workers_end_when_the_server_is_killed() -> None:
    # a server stopped by a signal never shuts its pool down: its workers once stayed, idle
    # and holding ~300 MB each, for good
    code = ("import os\nfrom kgvsf_explore.app.truth import simulator_pool\n"
            "print(simulator_pool().submit(os.getpid).result(), flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    worker = int(out.stdout.split()[0])
    deadline = time.monotonic() + 15
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(worker)


# ------------------------------------------------------------------------- the Explorer
def test_explorer_starts_with_a_forecast(explorer: Explorer) -> None:
    r = explorer.result
    assert explorer.status == "" and r is not None
    assert r.ndvi_baseline.shape == (32, 32) and np.isfinite(r.ndvi_baseline).all()
    assert r.horizon == 30 and r.target == r.t + pd.Timedelta(days=30)
    np.testing.assert_array_equal(r.difference, 0.0)  # no weather change yet
    assert explorer.start == r.t.date()  # snapped to an image date


def test_weather_controls_reforecast_without_reencoding(explorer: Explorer) -> None:
    session = explorer.session
    explorer.rain_scale = 0.0
    dry = explorer.result
    assert explorer.session is session  # the cached context was reused
    assert np.abs(dry.difference).max() > 1e-3 and "prcp" in dry.scenario_text
    explorer.temp_offset = 3.0
    hot_dry = explorer.result
    assert not np.array_equal(hot_dry.ndvi_scenario, dry.ndvi_scenario)
    np.testing.assert_array_equal(hot_dry.ndvi_baseline, dry.ndvi_baseline)
    explorer.horizon = 12
    assert explorer.result.horizon == 12 and explorer.session is session
    explorer.param.update(temp_offset=0.0, rain_scale=1.0, srad_scale=1.3)
    assert "srad" in explorer.result.scenario_text
    explorer.param.update(srad_scale=1.0, drought=True)
    assert explorer.drought_window is not None and "prcp" in explorer.result.scenario_text
    explorer.param.update(drought=False, weather_year=2021)
    assert "2021" in explorer.result.scenario_text
    assert np.abs(explorer.result.difference).max() > 1e-4


def test_drought_window_outside_the_period_is_explained(explorer: Explorer) -> None:
    explorer.param.update(drought=True, drought_window=(dt.date(2022, 1, 1),
                                                        dt.date(2022, 1, 20)))
    assert explorer.status_kind == "warning" and "outside the forecast period" in explorer.status
    np.testing.assert_array_equal(explorer.result.difference, 0.0)


def test_region_and_date_changes_rebuild_the_context(explorer: Explorer, cube: Cube) -> None:
    first = explorer.session
    explorer.bbox = _box(cube, slice(0, 20), slice(100, 128))
    assert explorer.session is not first and explorer.result.ndvi_baseline.shape == (20, 28)
    explorer.start = dt.date(2022, 7, 14)
    assert explorer.result.t <= pd.Timestamp("2022-07-14")
    assert explorer.start == explorer.result.t.date()


def test_pixel_trajectory(explorer: Explorer) -> None:
    r = explorer.result
    explorer.rain_scale = 0.2
    explorer.pixel = (float(r.x[5]), float(r.y[7]))
    traj = explorer.trajectory
    assert set(traj.ndvi) == {"observed", "scenario"}
    assert len(traj.days) == 60 and traj.days[0] == r.t + pd.Timedelta(days=1)
    k = explorer.horizon
    assert traj.ndvi["observed"][k - 1] == pytest.approx(r.ndvi_baseline[7, 5], abs=1e-5)
    assert traj.ndvi["scenario"][k - 1] == pytest.approx(explorer.result.ndvi_scenario[7, 5],
                                                         abs=1e-5)
    assert len(traj.observed) > 3 and traj.prcp["scenario"].sum() < traj.prcp["observed"].sum()
    explorer.pixel = (0.0, 0.0)
    assert explorer.trajectory is None and "outside the region" in explorer.status


@pytest.mark.parametrize("layer, kind", [("true colour", "rgb"), ("NDVI", "image"),
                                         ("crop map", "classes"), ("soil moisture", "image")])
def test_map_layers(explorer: Explorer, layer: str, kind: str) -> None:
    explorer.layer = layer
    d = explorer.map_layer()
    assert d["kind"] == kind and d["x"].size == 128


def test_bad_input_shows_a_message_and_keeps_the_last_result(explorer: Explorer,
                                                             cube: Cube,
                                                             monkeypatch) -> None:
    good = explorer.result
    cases = [
        ({"bbox": (0.0, 0.0, 10.0, 10.0)}, "outside the cube"),
        ({"bbox": (446500.0, 4649000.0, 446500.0, 4649300.0)}, "empty box"),
        ({"horizon": 0}, "outside the range"),
        ({"horizon": 61}, "outside the range"),
        ({"start": dt.date(2019, 12, 1)}, "no image on or before"),
        ({"start": dt.date(2022, 12, 20)}, "the drivers end"),  # no 30 days of weather left
    ]
    for params, text in cases:
        session = explorer.session
        explorer.param.update(**params)
        assert explorer.status_kind == "danger" and text in explorer.status, params
        assert explorer.result is good and explorer.session is session
        explorer.param.update(horizon=30, bbox=_box(cube, slice(32, 64), slice(32, 64)),
                              start=dt.date(2022, 6, 30))
        assert explorer.status == ""
        good = explorer.result
    monkeypatch.setattr("kgvsf_explore.app.explorer.MAX_REGION_PIXELS", 100)
    explorer.bbox = _box(cube, slice(0, 40), slice(0, 40))
    assert "up to 100" in explorer.status
    assert MAX_REGION_PIXELS > 100


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # the empty truth pane
def test_missing_weights(cube: Cube, tmp_path) -> None:
    ex = Explorer(cube, tmp_path / "nope", background=False)
    assert ex.status_kind == "danger" and "weights not found" in ex.status
    assert ex.result is None
    ex.rain_scale = 0.5  # nothing to forecast with, nothing raised
    ex.layer = "crop map"
    assert ex.map_layer()["kind"] == "classes"
    ex.panel()  # the page still builds
    empty = tmp_path / "empty"
    empty.mkdir()
    ex = Explorer(cube, empty, background=False)
    assert ex.status_kind == "danger" and "cannot load the weights" in ex.status


def test_truth_toggle(cube: Cube, forecaster: Forecaster) -> None:
    ex = Explorer(cube, forecaster, background=True, bbox=_box(cube, slice(8, 16), slice(8, 16)),
                  start=dt.date(2022, 6, 30), horizon=20)
    ex.rain_scale = 0.0
    ex.show_truth = True
    assert ex.truth is None and "simulator" in ex.truth_status
    ex.wait()
    truth = ex.truth
    assert truth is not None and truth.difference.shape == (8, 8)
    assert truth.target == ex.result.target
    assert float(np.nanmean(truth.difference)) < 0  # no rain for 60 days: less green
    ex.horizon = 25  # the cached runs answer at once
    assert ex.truth.target == ex.result.target
    series = ex.truth.at(float(ex.result.x[0]), float(ex.result.y[0]))
    assert len(series["observed"]) == 60
    ex.show_truth = False
    assert ex.truth is None
    ex.close()


def test_sessions_keep_their_own_state(cube: Cube, forecaster: Forecaster) -> None:
    box = _box(cube, slice(32, 64), slice(32, 64))
    a = Explorer(cube, forecaster, background=False, bbox=box)
    b = Explorer(cube, forecaster, background=False, bbox=box)
    a.param.update(rain_scale=0.0, horizon=10)
    assert b.rain_scale == 1.0 and b.horizon == 30 and b.result.horizon == 30
    assert a.session is not b.session


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # the empty truth pane
def test_panel_builds(explorer: Explorer) -> None:
    import panel as pn

    view = explorer.panel()
    assert isinstance(view, pn.Row)
    root = view.get_root()  # renders every pane to bokeh models
    assert root is not None
    explorer.rain_scale = 0.4  # updates flow into the rendered DynamicMaps
    explorer.pixel = (float(explorer.result.x[3]), float(explorer.result.y[3]))


def test_cli_has_serve() -> None:
    from kgvsf_explore.cli import build_parser

    args = build_parser().parse_args(["serve", "--port", "0", "--no-show"])
    assert args.port == 0 and args.no_show and args.cube is None


def test_closed_tab_noise_is_dropped_other_asyncio_errors_kept() -> None:
    import logging
    import sys

    from tornado.websocket import WebSocketClosedError

    from kgvsf_explore.app.serve import ClosedTabFilter, quiet_closed_tabs

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            info = sys.exc_info()
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1,
                                 "Task exception was never retrieved", None, info)

    f = ClosedTabFilter()
    assert not f.filter(record(WebSocketClosedError()))
    assert f.filter(record(ValueError("a real bug")))
    assert f.filter(logging.LogRecord("asyncio", logging.WARNING, __file__, 1, "no exc", None,
                                      None))
    quiet_closed_tabs()
    quiet_closed_tabs()
    assert sum(isinstance(x, ClosedTabFilter) for x in logging.getLogger("asyncio").filters) == 1


def test_a_stale_typed_region_does_not_win() -> None:
    """Served, Panel may apply two quickly typed boxes in either order: the last typed stays."""
    import param

    from kgvsf_explore.app._layout import _region_input

    class Stub(param.Parameterized):
        bbox = param.NumericTuple(default=(0.0, 0.0, 10.0, 10.0), length=4, allow_None=True)
        status = param.String(default="")
        status_kind = param.String(default="info")

    ex = Stub()
    box = _region_input(ex)[1]
    box.value = "1, 2, 30, 40"  # typed last: applied
    assert ex.bbox == (1.0, 2.0, 30.0, 40.0)
    # the event of a box typed before it, handled late on another thread: dropped
    stale = param.parameterized.Event(what="value", name="value", obj=box, cls=type(box),
                                      old="1, 2, 30, 40", new="0, 0, 10, 10", type="changed")
    for watcher in box.param.watchers["value"]["value"]:
        watcher.fn(stale)
    assert ex.bbox == (1.0, 2.0, 30.0, 40.0) and box.value == "1, 2, 30, 40"
    ex.bbox = (5.0, 6.0, 70.0, 80.0)  # a region drawn on the map is echoed into the box
    assert box.value == "5, 6, 70, 80"
