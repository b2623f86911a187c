"""The dashboard's plots rendered to Bokeh models, and how the Explorer schedules its work.

No browser: the Panel panes are rendered with ``get_root`` (what the server sends to a page)
and the Bokeh models are inspected. Covers the bugs a person saw in the browser: the crop map's
colour bar, the overview after a box outside the cube, the forecast maps' frames after a
non-square box, the zoom after a slider move, the float noise of the scenario line, updates
from worker threads and work left over from closed or overtaken requests.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import numpy as np
import pytest
from bokeh.events import SelectionGeometry
from bokeh.models import ColorBar, FixedTicker, GlyphRenderer, Image, ImageRGBA, Plot, Quad

from kgvsf_explore.app import _layout
from kgvsf_explore.app.explorer import Explorer
from kgvsf_explore.app.layers import LAYERS
from kgvsf_explore.app.session import with_drivers_in_memory
from kgvsf_explore.cube import open_cube
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.data import sample_path
from kgvsf_explore.errors import KGVSFError
from kgvsf_explore.forecaster import Forecaster
from kgvsf_explore.weights import load_model

pytestmark = pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")
_layout._ensure_extensions()


@pytest.fixture(scope="module")
def cube() -> Cube:
    return with_drivers_in_memory(open_cube(sample_path()))


@pytest.fixture(scope="module")
def forecaster() -> Forecaster:
    model, sha = load_model()
    return Forecaster(model, sha)


def _box(cube: Cube, rows: slice, cols: slice) -> tuple[float, float, float, float]:
    x, y = cube.ds.x.values[cols], cube.ds.y.values[rows]
    return (float(x.min() - 5), float(y.min() - 5), float(x.max() + 5), float(y.max() + 5))


@pytest.fixture
def explorer(cube: Cube, forecaster: Forecaster) -> Explorer:
    ex = Explorer(cube, forecaster, background=False,
                  bbox=_box(cube, slice(40, 56), slice(40, 72)), start=dt.date(2022, 6, 30))
    yield ex
    ex.close()


def _plots(root) -> list[Plot]:
    return sorted(root.select({"type": Plot}), key=lambda p: int(p.id.lstrip("p")))


def _image_plots(root) -> list[Plot]:
    return [p for p in _plots(root)
            if any(isinstance(r, GlyphRenderer) and isinstance(r.glyph, Image)
                   for r in p.renderers)]


def test_every_layer_renders(explorer: Explorer) -> None:
    root = _layout._overview(explorer).get_root()  # what a page gets, updated in place
    (fig,) = _plots(root)
    bar = next(r for r in fig.right if isinstance(r, ColorBar))
    images = {type(r.glyph): r for r in fig.renderers if isinstance(r, GlyphRenderer)}
    seen = set()
    for layer in LAYERS:
        explorer.layer = layer
        d = explorer.overview
        assert d is not None and d["kind"] != "message", (layer, explorer.last_error)
        assert fig.title.text == d["title"]
        shown = images[ImageRGBA] if d["kind"] == "rgb" else images[Image]
        assert shown.visible and bar.visible == (d["kind"] != "rgb")
        hidden = images[Image] if d["kind"] == "rgb" else images[ImageRGBA]
        assert not hidden.visible
        data = np.asarray(shown.data_source.data["image"][0])
        assert data.shape == (len(d["y"]), len(d["x"]))
        seen.add(data.tobytes())
        if layer == "crop map":  # the colour bar's ticker once was a dict (a ValueError)
            legend = explorer.cube.legend("crop_type")
            assert isinstance(bar.ticker, FixedTicker)
            assert list(bar.ticker.ticks) == list(range(len(legend)))
            assert sorted(bar.major_label_overrides.values()) == sorted(legend.values())
            assert len(bar.color_mapper.palette) == len(legend)
            assert set(np.unique(data[np.isfinite(data)])) <= set(range(len(legend)))
    assert len(seen) == len(LAYERS)  # each layer drew something of its own
    assert (fig.x_range.start, fig.x_range.end) == (explorer.cube.bounds[0],
                                                    explorer.cube.bounds[2])


def test_a_layer_that_fails_says_why_in_the_title(explorer: Explorer, monkeypatch) -> None:
    from kgvsf_explore.app import explorer as explorer_module

    root = _layout._overview(explorer).get_root()
    (fig,) = _plots(root)

    def lacking(cube, layer, *args):
        raise KGVSFError(f"this cube has no {layer} layer")

    monkeypatch.setattr(explorer_module, "layer_data", lacking)
    explorer.layer = "soil moisture"
    assert "no soil moisture layer" in fig.title.text
    assert not any(r.visible for r in fig.renderers
                   if isinstance(r, GlyphRenderer) and isinstance(r.glyph, (Image, ImageRGBA)))


def test_a_dragged_box_becomes_the_region(explorer: Explorer, cube: Cube) -> None:
    root = _layout._overview(explorer).get_root()
    (fig,) = _plots(root)
    box = next(r for r in fig.renderers if isinstance(r.glyph, Quad)).data_source
    assert (box.data["left"][0], box.data["bottom"][0]) == explorer.region[:2]
    new = _box(cube, slice(0, 16), slice(0, 16))
    geometry = {"type": "rect", "x0": new[2], "y0": new[3], "x1": new[0], "y1": new[1]}
    fig._trigger_event(SelectionGeometry(fig, geometry=geometry, final=False))
    assert explorer.bbox != new  # only the finished box counts
    fig._trigger_event(SelectionGeometry(fig, geometry=geometry, final=True))
    assert explorer.bbox == new  # corners in any order
    assert explorer.region == pytest.approx(new, abs=5.0)
    assert box.data["left"][0] == explorer.region[0]  # the magenta box followed


def test_a_box_outside_the_cube_leaves_the_overview_as_it_was(explorer: Explorer,
                                                              cube: Cube) -> None:
    root = _layout._overview(explorer).get_root()  # what a page gets, updated in place
    (fig,) = _plots(root)
    x0, y0, x1, y1 = cube.bounds
    good = explorer.region
    assert (fig.x_range.start, fig.x_range.end) == (x0, x1)
    explorer.bbox = (0.0, 0.0, 10.0, 10.0)
    assert "outside the cube" in explorer.status
    assert explorer.region == good  # the magenta box stays on the last good region
    assert (fig.x_range.start, fig.x_range.end, fig.y_range.start, fig.y_range.end) == \
        (x0, x1, y0, y1)
    new = _box(cube, slice(0, 16), slice(0, 16))
    explorer.bbox = new
    assert explorer.status == "" and explorer.region != good
    assert explorer.region == pytest.approx(new, abs=5.0)
    assert (fig.x_range.start, fig.x_range.end) == (x0, x1)


def _check_frames(plots: list[Plot], shape: tuple[int, int], result) -> None:
    ny, nx = shape
    assert len(plots) == 4
    for p in plots:
        assert p.frame_width == _layout.PANE
        assert p.frame_height == round(_layout.PANE * ny / nx)
        # the axes span the data, so the image fills its frame
        dx = float(result.x[1] - result.x[0])
        assert p.x_range.start == pytest.approx(float(result.x.min()) - dx / 2)
        assert p.x_range.end == pytest.approx(float(result.x.max()) + dx / 2)


def test_forecast_maps_fill_their_frames_and_keep_the_zoom(explorer: Explorer,
                                                           cube: Cube) -> None:
    root = _layout._forecast_panes(explorer).get_root()  # what a page gets, updated in place
    plots = _image_plots(root)
    _check_frames(plots, (16, 32), explorer.result)
    explorer.bbox = _box(cube, slice(10, 50), slice(10, 30))  # tall, then the frames follow
    plots = _image_plots(root)
    _check_frames(plots, (40, 20), explorer.result)
    # a zoom (the browser sets the shared range) survives a weather change; the data change
    fig = plots[0]
    sources = [next(r for r in p.renderers if isinstance(r, GlyphRenderer)).data_source
               for p in plots]
    before = [np.array(s.data["image"][0]) for s in sources]
    fig.x_range.start, fig.x_range.end = fig.x_range.start + 50, fig.x_range.start + 150
    zoom = (fig.x_range.start, fig.x_range.end)
    explorer.rain_scale = 0.0
    assert _image_plots(root)[0] is fig  # updated in place, not rebuilt
    assert (fig.x_range.start, fig.x_range.end) == zoom
    after = [np.array(s.data["image"][0]) for s in sources]
    assert not np.array_equal(before[1], after[1], equal_nan=True)  # the scenario map
    np.testing.assert_array_equal(before[0], after[0])  # the baseline did not move


def test_scenario_line_has_no_float_noise(explorer: Explorer) -> None:
    explorer.param.update(temp_offset=4.000000000000002, rain_scale=0.15000000000000002)
    text = explorer.result.scenario_text
    assert "+4" in text and "0.15" in text and "0000" not in text, text


def test_outputs_go_through_the_publisher(cube: Cube, forecaster: Forecaster) -> None:
    ex = Explorer(cube, forecaster, background=True, start=dt.date(2022, 6, 30),
                  bbox=_box(cube, slice(8, 16), slice(8, 16)))
    queued: list = []
    threads: set[str] = set()

    def publish(fn) -> None:
        threads.add(threading.current_thread().name)
        queued.append(fn)

    ex.set_publisher(publish)
    first = ex.result
    ex.rain_scale = 0.0  # returns at once: the forecast is queued on the explorer's worker
    ex.wait()
    assert ex.result is first and queued  # nothing shown until the display's thread runs it
    assert any(name.startswith("kgvsf-work") for name in threads)
    ex.show_truth = True
    ex.wait()  # the simulator's thread hands its answer to the publisher too
    assert any(name.startswith("kgvsf-truth") for name in threads)
    assert ex.truth is None
    for fn in queued:
        fn()
    assert ex.result is not first and "prcp" in ex.result.scenario_text
    assert ex.truth is not None and ex.busy is False
    ex.close()
    queued.clear()
    shown = ex.result
    ex.rain_scale = 0.5  # a closed session does nothing more
    assert queued == [] and ex.result is shown


def test_the_spinner_shows_only_for_work_still_running_when_the_page_is_updated(
        cube: Cube, forecaster: Forecaster, monkeypatch) -> None:
    # "on" and "off" in one batch once cost the page a second message half a second later
    from kgvsf_explore.app import explorer as explorer_module

    monkeypatch.setattr(explorer_module, "BUSY_DELAY_S", 0.01)
    ex = Explorer(cube, forecaster, background=True, start=dt.date(2022, 6, 30),
                  bbox=_box(cube, slice(8, 16), slice(8, 16)))
    seen: list[bool] = []
    ex.param.watch(lambda e: seen.append(e.new), "busy")
    queued: list = []
    ex.set_publisher(queued.append)
    slow = ex._forecast
    monkeypatch.setattr(ex, "_forecast", lambda session=None: (time.sleep(0.2), slow(session)))
    ex.rain_scale = 0.5
    ex.wait()  # the work has ended before the display's thread ran anything
    for fn in queued:
        fn()
    assert seen == [] and "prcp" in ex.result.scenario_text
    queued.clear()
    ex.rain_scale = 0.25
    deadline = time.monotonic() + 10
    while not queued and time.monotonic() < deadline:  # the spinner is queued mid-work
        time.sleep(0.005)
    queued.pop(0)()
    assert seen == [True]
    ex.wait()
    for fn in queued:
        fn()
    assert seen == [True, False] and ex.busy is False
    ex.close()


def test_the_embedding_and_overview_are_computed_off_the_display_thread(
        cube: Cube, forecaster: Forecaster, monkeypatch) -> None:
    # served, the display's thread is the server's one event loop: the region embedding (a
    # model pass and a PCA) once ran there for every new region and held up all the pages
    ex = Explorer(cube, forecaster, background=True, start=dt.date(2022, 6, 30),
                  bbox=_box(cube, slice(8, 16), slice(8, 16)))
    root = _layout.build(ex).get_root()
    ran: list[tuple[str, str]] = []
    for name in ("region_embedding", "map_layer"):
        real = getattr(ex, name)
        monkeypatch.setattr(ex, name, lambda real=real, name=name: (
            ran.append((name, threading.current_thread().name)), real())[1])
    queued: list = []
    ex.set_publisher(queued.append)
    first = ex.embedding
    ex.bbox = _box(cube, slice(20, 36), slice(20, 36))
    ex.layer = "NDVI"
    ex.wait()
    assert {n for n, _ in ran} == {"region_embedding", "map_layer"}
    assert all(th.startswith("kgvsf-work") for _, th in ran), ran
    ran.clear()
    for fn in queued:  # the display's thread only draws
        fn()
    assert ran == []
    assert ex.embedding is not first and ex.embedding["values"].shape[1:] == (16, 16)
    assert ex.overview["title"].startswith("NDVI")
    titles = [p.title.text for p in root.select({"type": Plot}) if p.title is not None]
    assert ex.overview["title"] in titles
    ex.close()


def test_sessions_share_the_work_slots(cube: Cube, forecaster: Forecaster,
                                       monkeypatch) -> None:
    # served, the sessions' model work runs at most WORK_SLOTS at a time (the event loop
    # needs the GIL too); a request overtaken while it waits for a slot is dropped
    from kgvsf_explore.app import explorer as explorer_module

    monkeypatch.setattr(explorer_module, "WORK_SLOTS", threading.BoundedSemaphore(1))
    running, most, lock = [0], [0], threading.Lock()
    explorers = [Explorer(cube, forecaster, background=True, start=dt.date(2022, 6, 30),
                          bbox=_box(cube, slice(8, 16), slice(8, 16))) for _ in range(3)]
    calls: list[int] = []
    for ex in explorers:
        real = ex._forecast

        def counted(session=None, real=real, ex=ex):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            calls.append(ex.horizon)
            try:
                time.sleep(0.05)
                return real(session)
            finally:
                with lock:
                    running[0] -= 1

        monkeypatch.setattr(ex, "_forecast", counted)
        ex.set_publisher(lambda fn: fn())
    with explorer_module.WORK_SLOTS:  # all slots busy: the requests wait
        for ex in explorers:
            ex.horizon = 20
            ex.horizon = 25  # overtakes 20 while it waits
    for ex in explorers:
        ex.wait()
    assert most[0] == 1
    assert calls == [25, 25, 25]
    assert all(ex.result.horizon == 25 for ex in explorers)
    for ex in explorers:
        ex.close()


def test_only_the_latest_request_is_computed(explorer: Explorer, monkeypatch) -> None:
    calls: list[int] = []
    real = explorer._forecast

    def counted(session=None):
        calls.append(explorer.horizon)
        return real(session)

    monkeypatch.setattr(explorer, "_forecast", counted)
    workers = []
    with explorer._lock:  # a forecast is running: the requests queue up behind it
        for k in range(10, 16):
            th = threading.Thread(target=setattr, args=(explorer, "horizon", k))
            th.start()
            workers.append(th)
            time.sleep(0.05)
    for th in workers:
        th.join(30)
    assert explorer.horizon == 15
    assert calls == [15] and explorer.result.horizon == 15


def test_change_map_is_read_against_the_forecast_interval(explorer: Explorer, cube: Cube,
                                                          forecaster: Forecaster) -> None:
    from kgvsf_explore.inference.intervals import anchor_age, beyond_interval

    assert explorer.calibration is not None  # the shipped weights carry intervals.json
    root = _layout._forecast_panes(explorer).get_root()
    assert explorer.result.inside is None  # observed weather: no change to read
    explorer.param.update(rain_scale=0.0, temp_offset=5.0)
    result = explorer.result
    inside = result.inside
    assert inside.shape == result.difference.shape and inside.dtype == bool
    # the same as the library's forecast with intervals: inside == not beyond_interval
    session = explorer.session
    out = forecaster.forecast(cube, explorer.region, str(session.t.date()), [result.horizon],
                              [None, explorer.scenario()], interval=0.8, progress=False)
    beyond = np.asarray(beyond_interval(out).isel(scenario=0, horizon=0).values)
    assert beyond.shape == inside.shape
    assert np.mean(beyond == ~inside) > 0.99
    assert 0 < inside.mean() < 1
    y, x = session.coords()  # the age read from the context in memory == read from the cube
    np.testing.assert_array_equal(session.anchor_age(),
                                  anchor_age(cube, session.t, y, x, forecaster.cfg.context))
    # the change map is veiled where the change is inside; the veil goes with the checkbox
    diff = next(p for p in _image_plots(root) if "observed (pale" in p.title.text)
    veil = [r for r in diff.renderers if isinstance(r, GlyphRenderer)
            and type(r.glyph).__name__ == "ImageRGBA"]
    def alpha() -> np.ndarray:
        packed = np.asarray(veil[0].data_source.data["image"][0])
        return packed.view(np.uint8).reshape(*packed.shape, 4)[..., 3]

    assert (alpha() > 0).sum() == inside.sum() > 0
    assert "beyond the 80% interval" in _layout._beyond(result)
    explorer.fade_inside = False
    assert alpha().sum() == 0 and "pale" not in diff.title.text
