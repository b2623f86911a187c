"""The dashboard's Bokeh maps (updated in place) and the page prepared for the next session."""

from __future__ import annotations

import importlib
import threading
import time

import numpy as np
import pytest
from bokeh.events import Tap

from kgvsf_explore.app import _maps

serve = importlib.import_module("kgvsf_explore.app.serve")  # the module (the package exports
# a function of the same name)


def test_palettes_run_low_to_high_as_in_matplotlib() -> None:
    rdbu = _maps.palette("RdBu")
    assert len(rdbu) == 256
    assert rdbu[0] == "#67001f" and rdbu[-1] == "#053061"  # red low, blue high
    rdylgn = _maps.palette("RdYlGn", 3)
    assert rdylgn[0] == "#a50026" and rdylgn[-1] == "#006837"


def test_an_image_is_drawn_upright_whatever_the_axes_direction() -> None:
    x = np.array([100.0, 110.0, 120.0])
    y = np.array([530.0, 520.0])  # north-up: y descending
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # row 0 is the northern row
    m = _maps.ImageMap("t", "RdBu", (-1.0, 1.0), "v", 100, 100, *(_maps.Range1d(0, 1),) * 2)
    m.show(x, y, values, "new title", (-2.0, 2.0))
    data = m.source.data
    image = data["image"][0]
    np.testing.assert_array_equal(image[0], [4.0, 5.0, 6.0])  # Bokeh's row 0 is the lowest y
    assert image.dtype == np.float32
    assert (data["x"][0], data["y"][0], data["dw"][0], data["dh"][0]) == (95.0, 515.0, 30.0, 20.0)
    assert m.figure.title.text == "new title"
    assert (m.mapper.low, m.mapper.high) == (-2.0, 2.0)
    m.show(x[::-1], y[::-1], values[::-1, ::-1], "new title")  # both axes reversed: same picture
    np.testing.assert_array_equal(m.source.data["image"][0], image)
    assert (m.mapper.low, m.mapper.high) == (-2.0, 2.0)  # no clim: the range stays


def test_rgb_colours_are_packed_as_bokeh_reads_them() -> None:
    bands = np.zeros((3, 1, 2))
    bands[0, 0, 0] = 1.0  # pure red
    bands[:, 0, 1] = np.nan  # no value: light grey
    packed = _maps._rgba(bands)
    assert packed.shape == (1, 2) and packed.dtype == np.uint32
    rgba = packed.view(np.uint8).reshape(1, 2, 4)
    assert list(rgba[0, 0]) == [255, 0, 0, 255]
    assert list(rgba[0, 1]) == [237, 237, 237, 255]
    rgb = _maps.RGBMap("embedding", 200, 200)
    x, y = np.arange(4.0) * 10, np.arange(2.0) * 10
    rgb.show(x, y, np.random.default_rng(0).random((3, 2, 4)), "e")
    assert rgb.figure.frame_height == 100  # the frame follows the region's shape
    assert (rgb.figure.x_range.start, rgb.figure.x_range.end) == (-5.0, 35.0)
    assert rgb.figure.x_range.reset_start == -5.0


def test_forecast_maps_share_their_axes_and_report_clicks() -> None:
    clicks: list[tuple[float, float]] = []
    maps = _maps.ForecastMaps(260, on_tap=lambda x, y: clicks.append((x, y)))
    figs = maps.figures
    assert len(figs) == 4 and len({id(f.x_range) for f in figs}) == 1  # zoom one, all follow
    maps.fit(np.arange(32.0) * 10, np.arange(16.0) * 10)
    assert all(f.frame_width == 260 and f.frame_height == 130 for f in figs)
    assert maps.extent == (-5.0, 315.0, -5.0, 155.0)
    figs[2]._trigger_event(Tap(figs[2], x=12.5, y=40.0))
    assert clicks == [(12.5, 40.0)]
    maps.show_pixel((12.5, 40.0))
    assert maps.marker.data == {"x": [12.5], "y": [40.0]}
    maps.show_pixel(None)
    assert maps.marker.data == {"x": [], "y": []}


class _Fake:
    def __init__(self, n: int) -> None:
        self.n, self.closed = n, False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def pages(monkeypatch):
    monkeypatch.setattr(serve, "PREPARE_DELAY_S", 0.01)
    built: list[int] = []
    p = serve.PreparedPages()

    def build() -> tuple[_Fake, str]:
        time.sleep(0.2)  # a page takes a while to build
        built.append(len(built))
        return _Fake(built[-1]), f"layout {built[-1]}"

    monkeypatch.setattr(p, "build", build)
    p.built = built
    yield p
    time.sleep(0.1)  # the spare scheduled by the last take: built with the fake, not the real
    while p._building is not None:
        time.sleep(0.01)


def _wait_ready(p: serve.PreparedPages, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while p._ready is None:
        assert time.time() < deadline, "the next page was not prepared"
        time.sleep(0.01)


def test_a_session_takes_the_prepared_page_and_the_next_is_built(pages) -> None:
    pages.prepare()
    assert pages.built == [0]
    ex, layout = pages.take()
    assert (ex.n, layout) == (0, "layout 0")  # the prepared one, not a new build
    _wait_ready(pages)  # built in the background for the next session
    assert pages.take()[0].n == 1
    pages.prepare()
    pages.prepare()  # one spare at a time
    _wait_ready(pages)
    assert len(pages.built) == 3


def test_without_a_spare_a_session_builds_its_own_and_waits_for_one_being_built(pages) -> None:
    ex, _ = pages.take()  # nothing prepared: built now
    assert ex.n == 0
    _wait_ready(pages)
    pages._ready = None  # taken meanwhile: the next is being built when the session comes
    worker = threading.Thread(target=pages.prepare)
    worker.start()
    time.sleep(0.05)
    ex, _ = pages.take()  # waits for the build in progress instead of starting another
    worker.join()
    assert ex.n == 2
    assert pages.built[:3] == [0, 1, 2]
