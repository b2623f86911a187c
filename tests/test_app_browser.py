"""The served dashboard in headless Chromium: what a person sees and does.

Serves ``kgvsf serve`` (shipped sample and weights) on a free port in a subprocess and drives
Debian's ``/usr/bin/chromium`` through Playwright (its own browser download does not work
offline). As root Chromium needs ``--no-sandbox``; the other flags and a fresh profile folder
keep it from reaching for the network. Skipped when Chromium or Playwright is missing;
``.ci/run`` installs both. A screenshot goes to ``build/screenshots/dashboard.png``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"{CHROMIUM} is missing (apt-get install chromium)")

expect = sync_api.expect

from kgvsf_explore.app._layout import PANE  # noqa: E402  (the maps' frame width)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kgvsf_explore.cli", "serve", "--port",
                                 str(port), "--no-show", "--address", "127.0.0.1"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"kgvsf serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"kgvsf serve did not listen within 120 s:\n{log.read_text()}")
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    text = log.read_text()
    # a server error, or Panel's warning about document updates from a worker thread
    for bad in ("Traceback", "Error", "unlocked decorator"):
        assert bad not in text, text


@pytest.fixture(scope="module")
def chromium_ctx(tmp_path_factory):
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=ARGS, viewport={"width": 1600, "height": 1250})
        ctx.set_default_timeout(60_000)
        yield ctx
        ctx.close()


class Session:
    """One browser tab on the dashboard, recording JavaScript errors."""

    def __init__(self, ctx, url: str, wait: bool = True) -> None:
        self.page = page = ctx.new_page()
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.goto(url, timeout=90_000, wait_until="commit")
        if wait:
            self.ready()

    def ready(self) -> None:
        """Wait until the page shows its first forecast."""
        self.page.locator(".kgvsf-forecasts canvas").first.wait_for(timeout=90_000)
        expect(self.info).to_contain_text("re-forecast in", timeout=60_000)

    @property
    def info(self):
        return self.page.locator(".kgvsf-info p").first

    def forecasts_png(self) -> bytes:
        time.sleep(0.5)  # let the canvases repaint
        return self.page.locator(".kgvsf-forecasts").first.screenshot()

    def forecasts_change(self, before: bytes, timeout: float = 30.0) -> bytes:
        """The forecast maps once they differ from ``before`` (fails after ``timeout``)."""
        deadline = time.time() + timeout
        while True:
            try:
                now = self.forecasts_png()
            except sync_api.Error:  # the maps are being replaced (a new region)
                now = before
            if now != before or time.time() > deadline:
                assert now != before, "the forecast maps did not change"
                return now

    def overview_axes(self) -> list:
        """The overview map's axis ranges, as the page's BokehJS models hold them."""
        return self.page.evaluate("""() => {
          for (const d of Bokeh.documents) for (const m of d.all_models)
            if (m.title && m.title.text && m.title.text.startsWith('true colour'))
              return [m.x_range.start, m.x_range.end, m.y_range.start, m.y_range.end];
          return null; }""")

    def map_frames(self) -> list:
        """Per map of frame width ``PANE``: title, axis ranges, frame size and image extent."""
        return self.page.evaluate("""(pane) => { const out = [];
          for (const d of Bokeh.documents) for (const m of d.all_models) {
            if (m.frame_width !== pane || !m.renderers) continue;
            const r = m.renderers.find(r => r.data_source && r.data_source.data &&
                                            r.data_source.data.dw);
            if (!r) continue;
            const v = r.data_source.data;
            out.push({title: m.title ? m.title.text : null,
                      x: [m.x_range.start, m.x_range.end], y: [m.y_range.start, m.y_range.end],
                      frame: [m.frame_width, m.frame_height],
                      image: [v.x[0], v.x[0] + v.dw[0], v.y[0], v.y[0] + v.dh[0]]});
          }
          return out; }""", PANE)

    def overview_png(self) -> bytes:
        time.sleep(0.5)
        return self.page.locator(".kgvsf-overview").first.screenshot()

    def press(self, handle: int, key: str, times: int) -> None:
        knob = self.page.locator(".noUi-handle").nth(handle)
        knob.focus()
        for _ in range(times):
            self.page.keyboard.press(key)


HORIZON, TEMPERATURE, RAIN = 0, 1, 2  # slider handles, in sidebar order
DROUGHT_BOX, TRUTH_BOX = 0, 1  # checkboxes, in sidebar order


def test_page_loads_and_every_layer_renders(chromium_ctx, url) -> None:
    s = Session(chromium_ctx, url)
    expect(s.info).to_contain_text("k = 30 days")
    assert s.page.locator("canvas").count() >= 5
    menu = s.page.locator("select").first
    layers = menu.locator("option").all_inner_texts()
    assert len(layers) == 5
    shots = {layers[0]: s.overview_png()}
    for layer in layers[1:]:  # the crop map once raised on the server and showed nothing
        menu.select_option(label=layer)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                shots[layer] = s.overview_png()
            except sync_api.Error:  # the map was replaced under the screenshot: look again
                continue
            if shots[layer] not in [v for k, v in shots.items() if k != layer]:
                break
        assert shots[layer] not in [v for k, v in shots.items() if k != layer], layer
    assert s.errors == []
    s.page.close()


def test_sliders_change_the_forecast(chromium_ctx, url) -> None:
    s = Session(chromium_ctx, url)
    before = s.forecasts_png()
    s.press(HORIZON, "ArrowRight", 5)
    expect(s.info).to_contain_text("k = 35 days", timeout=30_000)
    after_horizon = s.forecasts_png()
    assert after_horizon != before
    s.press(RAIN, "ArrowLeft", 7)  # rain x0.65: seven steps of 0.05 (float noise once showed)
    expect(s.info).to_contain_text(re.compile(r"prcp x0\.65(?![0-9])"), timeout=30_000)
    s.press(RAIN, "ArrowLeft", 3)  # rain x0.5
    expect(s.info).to_contain_text(re.compile(r"prcp x0\.5(?![0-9])"), timeout=30_000)
    assert "0000" not in s.info.inner_text(), s.info.inner_text()
    after_rain = s.forecasts_png()
    assert after_rain != after_horizon
    # the page confirms each batch of updates it has applied (the server's flow control)
    beats = s.page.evaluate("""() => { const out = {};
      for (const d of Bokeh.documents) for (const m of d.all_models)
        if (m.name === 'kgvsf-beat' || m.name === 'kgvsf-ack') out[m.name] = m.tags;
      return out; }""")
    assert beats["kgvsf-beat"] and beats["kgvsf-ack"] == beats["kgvsf-beat"], beats
    # the simulator's true answer beside the model's (a few seconds for this region)
    s.page.locator("input[type=checkbox]").nth(TRUTH_BOX).check()
    expect(s.page.locator(".kgvsf-info").first).to_contain_text("simulator: answered",
                                                               timeout=60_000)
    # a pixel of the first forecast map: its trajectory and drivers appear
    canvas = s.page.locator(".kgvsf-forecasts canvas").first.bounding_box()
    s.page.mouse.click(canvas["x"] + 120, canvas["y"] + 140)
    # the trajectory and the drivers under it appear (their legends are DOM text)
    expect(s.page.get_by_text("tmax: scenario").first).to_be_attached(timeout=30_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    time.sleep(1)
    s.page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    assert s.errors == []
    s.page.close()


def test_drawing_or_typing_a_region_updates_the_panes(chromium_ctx, url) -> None:
    s = Session(chromium_ctx, url)
    region = s.page.locator(".kgvsf-region input").first
    first = region.input_value()
    before = s.forecasts_png()
    box = s.page.locator(".kgvsf-overview canvas").first.bounding_box()
    s.page.mouse.move(box["x"] + 0.55 * box["width"], box["y"] + 0.30 * box["height"])
    s.page.mouse.down()
    s.page.mouse.move(box["x"] + 0.80 * box["width"], box["y"] + 0.55 * box["height"], steps=8)
    s.page.mouse.up()
    s.page.mouse.move(2, 2)  # no hover tooltip in the screenshots
    expect(region).not_to_have_value(first, timeout=30_000)
    drawn = region.input_value()
    xmin, ymin, xmax, ymax = (float(v) for v in drawn.split(","))
    assert xmin < xmax and ymin < ymax
    after_draw = s.forecasts_change(before)
    region.fill("446100, 4649100, 446420, 4649420")
    region.press("Enter")
    s.forecasts_change(after_draw)
    overview = s.overview_axes()
    region.fill("0, 0, 10, 10")  # outside the cube: a message, the server keeps going
    region.press("Enter")
    expect(s.page.get_by_text("lies outside the cube").first).to_be_visible(timeout=30_000)
    time.sleep(1)
    assert s.overview_axes() == overview  # the map keeps its axes (it once went blank)
    region.fill("446100, 4649100, 446420, 4649620")  # a good region again: no alert
    region.press("Enter")
    expect(s.page.get_by_text("lies outside the cube").first).to_be_hidden(timeout=30_000)
    s.forecasts_change(after_draw)
    assert s.overview_axes() == overview
    # a tall box (320 x 520 m): each map's frame takes its shape and the image fills it
    # (the maps once filled about 3/4 of their frames after a non-square box)
    frames = s.map_frames()
    assert len(frames) == 5, frames  # the four forecast maps and the region embedding
    for f in frames:
        assert f["x"] == pytest.approx(f["image"][:2]) and f["y"] == pytest.approx(f["image"][2:])
        width, height = f["image"][1] - f["image"][0], f["image"][3] - f["image"][2]
        assert height / width == pytest.approx(520 / 320, rel=0.1), f
        assert f["frame"][1] == pytest.approx(f["frame"][0] * height / width, abs=1), f
    assert s.errors == []
    s.page.close()


def test_four_sessions_keep_their_own_state(chromium_ctx, url) -> None:
    sessions = [Session(chromium_ctx, url, wait=False) for _ in range(4)]  # open together
    for s in sessions:
        s.ready()
    for i, s in enumerate(sessions):
        s.press(HORIZON, "ArrowRight", i + 1)
    for i, s in enumerate(sessions):
        expect(s.info).to_contain_text(f"k = {31 + i} days", timeout=30_000)
    for s in sessions[2:]:  # rapid region changes in two tabs at once
        region = s.page.locator(".kgvsf-region input").first
        for box in ("446100, 4649100, 446420, 4649420", "446000, 4649000, 446400, 4649600",
                    "0, 0, 10, 10", "446200, 4649200, 446840, 4649520"):
            region.fill(box)
            region.press("Enter")
    for s in sessions[2:]:
        expect(s.info).to_contain_text("re-forecast in")
        expect(s.page.locator(".kgvsf-region input").first).to_have_value(
            "446200, 4649200, 446840, 4649520", timeout=30_000)
    t0 = time.time()
    sessions[0].press(RAIN, "ArrowLeft", 4)
    expect(sessions[0].info).to_contain_text("prcp x0.8", timeout=30_000)
    assert time.time() - t0 < 20
    for i, s in enumerate(sessions[1:], start=1):
        expect(s.info).to_contain_text(f"k = {31 + i} days")
        expect(s.info).to_contain_text("observed weather")
    assert all(s.errors == [] for s in sessions), [s.errors for s in sessions]
    for s in sessions:
        s.page.close()


def test_screenshot_exists() -> None:
    shot = SCREENSHOTS / "dashboard.png"
    if not shot.exists():
        pytest.skip("the slider test did not run")
    assert shot.stat().st_size > 10_000
