"""What a person waits in the browser: control-to-settled latency of the served dashboard.

Starts ``kgvsf serve`` (the shipped sample cube and weights) on 127.0.0.1 and drives Debian's
``/usr/bin/chromium`` headless through Playwright, for a 64 x 64 and a 128 x 128 region.

Method. After the page shows its first forecast, a listener is added to every BokehJS document
in the page (``Bokeh.documents[i].on_change``): each model change the server sends (new image
data, colour ranges, titles, the info line, the spinner) stamps ``performance.now()``, and two
``requestAnimationFrame`` callbacks later a second stamp marks that the browser has painted it.
One sample: note the page clock, act (one arrow-key press on a focused slider, or a region typed
and Enter), wait until the info line has changed (the new forecast arrived) and then until no
model change has come for ``QUIET_S`` (the document is idle); the latency is the paint stamp of
the last model change minus the clock before the action. "ten quick steps" presses the horizon
slider's arrow key ten times as fast as Playwright can and measures from the last press.
"first forecast" is from the navigation's start (``performance.timeOrigin``) until the first
forecast's info line is on the page (polled every 20 ms); "first forecast after the load event"
is the same moment from the page's ``load`` event (HTML, scripts and styles loaded: what is
left is the server's document and BokehJS drawing it). Samples alternate the direction of
the steps, so the values stay in range; each new-region sample is a box not seen before (no
cached context). "layer change" picks the overview menu's layers in turn and waits for the
overview's new title, then for the idle document (the first embedding layer encodes the whole
cube; later visits of a layer are cached).

Prints one row per region and control (n, p50, p90 in ms), then exactly one line
``browser: slider settled p50 N ms p90 N ms (128 x 128)`` (the horizon, temperature and rain
steps of the 128 x 128 region together), and writes ``build/bench_dashboard_browser.json``.

Usage: ``python benchmarks/bench_dashboard_browser.py [--repeats 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
QUIET_S = 0.5
HORIZON, TEMPERATURE, RAIN = 0, 1, 2  # slider handles in sidebar order

LISTEN = """() => {
  const k = window.__kg = {last: 0, painted: 0, changes: 0};
  for (const doc of window.Bokeh.documents) {
    doc.on_change(() => {
      k.last = performance.now(); k.changes += 1;
      requestAnimationFrame(() => requestAnimationFrame(() => { k.painted = performance.now(); }));
    }, true);
  }
  return window.Bokeh.documents.length;
}"""


# the info line lives in Panel's shadow roots: walk them
FIRST = """() => {
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('kgvsf-info')) {
        const text = (el.shadowRoot || el).textContent || '';
        if (text.includes('re-forecast in')) return true;
      }
      if (el.shadowRoot && walk(el.shadowRoot)) return true;
    }
    return false;
  };
  return walk(document) ? performance.now() : 0;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kgvsf_explore.cli", "serve", "--port",
                                 str(port), "--no-show", "--address", "127.0.0.1"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kgvsf serve exited:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("kgvsf serve did not listen within 180 s")


class Page:
    """One tab on the dashboard with the settle listener."""

    def __init__(self, ctx, url: str) -> None:
        self.page = ctx.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="commit", timeout=120_000)
        self.info = self.page.locator(".kgvsf-info p").first
        self.info.wait_for(timeout=120_000)
        # the first forecast: from the navigation's start (the page clock's zero) until its
        # info line is on the page (checked at every animation frame)
        self.first_ms = float(self.page.wait_for_function(FIRST, timeout=120_000,
                                                          polling=20).json_value())
        load = self.page.evaluate("() => performance.getEntriesByType('navigation')[0]"
                                  ".loadEventEnd")
        self.after_load_ms = self.first_ms - float(load)
        self.page.evaluate(LISTEN)
        time.sleep(1.0)

    def now(self) -> float:
        return float(self.page.evaluate("() => performance.now()"))

    def wait_idle(self, t0: float, before: str | None = None, timeout: float = 60.0) -> float:
        """Wait for a new info line (unless ``before`` is None) and then an idle document."""
        deadline = time.time() + timeout
        if before is not None:
            while self.info.inner_text() == before:
                if time.time() > deadline:
                    raise TimeoutError("the forecast did not change")
                time.sleep(0.02)
        while True:
            k = self.page.evaluate("() => [performance.now(), window.__kg.last, "
                                   "window.__kg.painted]")
            now, last, painted = k
            if now - last > 1000 * QUIET_S and painted >= last:
                return painted - t0
            if time.time() > deadline:
                raise TimeoutError("the document did not settle")
            time.sleep(0.03)

    def step(self, handle: int, key: str, times: int = 1) -> float:
        knob = self.page.locator(".noUi-handle").nth(handle)
        knob.focus()
        before = self.info.inner_text()
        t0 = self.now()
        for _ in range(times):
            self.page.keyboard.press(key)
        if times > 1:
            t0 = self.now()  # from the last press
        return self.wait_idle(t0, before)

    def overview_title(self) -> str:
        return self.page.evaluate("""() => {
          for (const d of Bokeh.documents) for (const m of d.all_models)
            if (m.css_classes && m.css_classes.includes('kgvsf-overview')) return m.title.text;
          return ''; }""")

    def layer(self, label: str) -> float:
        """Pick a layer of the overview menu; wait for the overview's new title, then idle."""
        before = self.overview_title()
        t0 = self.now()
        self.page.locator("select").first.select_option(label=label)
        deadline = time.time() + 60
        while self.overview_title() == before:
            if time.time() > deadline:
                raise TimeoutError("the overview did not change")
            time.sleep(0.02)
        return self.wait_idle(t0)

    def region(self, box: tuple[float, float, float, float]) -> float:
        field = self.page.locator(".kgvsf-region input").first
        field.fill(", ".join(f"{v:.0f}" for v in box))
        before = self.info.inner_text()
        t0 = self.now()
        field.press("Enter")
        return self.wait_idle(t0, before)


def _boxes(size: int, n: int) -> list[tuple[float, float, float, float]]:
    """``n`` different boxes of ``size`` x ``size`` pixels inside the shipped cube."""
    from kgvsf_explore.cube import open_cube
    from kgvsf_explore.data import sample_path

    ds = open_cube(sample_path()).ds
    x, y = ds.x.values, ds.y.values
    r = float(abs(x[1] - x[0]))
    nx, ny = len(x), len(y)
    out = []
    rng = np.random.default_rng(0)
    offsets = [(0, 0)] if size >= min(nx, ny) else \
        [(int(a), int(b)) for a, b in rng.integers(0, min(nx, ny) - size + 1, (n * 4, 2))]
    for r0, c0 in dict.fromkeys(offsets):
        xs, ys = x[c0:c0 + size], y[r0:r0 + size]
        out.append((float(xs.min() - r / 2), float(ys.min() - r / 2), float(xs.max() + r / 2),
                    float(ys.max() + r / 2)))
    return out[:n]


def _stats(v: list[float]) -> tuple[float, float]:
    return float(np.percentile(v, 50)), float(np.percentile(v, 90))


def main(argv: list[str] | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10, help="samples per control and region")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} CPUs)")
    port = _free_port()
    build = ROOT / "build"
    build.mkdir(exist_ok=True)
    proc = _serve(port, build / "bench_dashboard_browser.log")
    url = f"http://127.0.0.1:{port}/"
    results: dict[str, dict[str, list[float]]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            ctx = browser.new_context(viewport={"width": 1600, "height": 1250})
            ctx.set_default_timeout(120_000)
            first, after_load = [], []
            for _ in range(3):
                page = Page(ctx, url)
                first.append(page.first_ms)
                after_load.append(page.after_load_ms)
                page.page.close()
            page = Page(ctx, url)
            for size in (64, 128):
                name = f"{size} x {size}"
                res = results[name] = {}
                boxes = _boxes(size, args.repeats + 1)
                page.region(boxes[0])
                for label, handle in (("horizon step", HORIZON),
                                      ("temperature step", TEMPERATURE),
                                      ("rain step", RAIN)):
                    res[label] = [page.step(handle, "ArrowRight" if i % 2 == 0 else "ArrowLeft")
                                  for i in range(args.repeats)]
                res["ten quick steps (from the last)"] = [
                    page.step(HORIZON, "ArrowRight" if i % 2 == 0 else "ArrowLeft", 10)
                    for i in range(max(3, args.repeats // 3))]
                if len(boxes) > 2:
                    res["new region"] = [page.region(b) for b in boxes[1:]]
            # the overview's layers in turn (the first embedding encodes the whole cube)
            layers = page.page.locator("select").first.locator("option").all_inner_texts()
            cycle = layers[1:] + layers[:1]
            results["whole cube"] = {"overview layer change": [
                page.layer(cycle[i % len(cycle)]) for i in range(max(len(cycle), args.repeats))]}
            results["64 x 64"]["first forecast from navigation"] = first
            results["64 x 64"]["first forecast after the load event"] = after_load
            errors = page.errors
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"{'region':<11} {'control':<34} {'n':>3} {'p50 ms':>8} {'p90 ms':>8}")
    for name, res in results.items():
        for label, v in res.items():
            p50, p90 = _stats(v)
            print(f"{name:<11} {label:<34} {len(v):>3} {p50:>8.0f} {p90:>8.0f}")
    if errors:
        print(f"page errors: {errors}")
    big = results["128 x 128"]
    sliders = big["horizon step"] + big["temperature step"] + big["rain step"]
    p50, p90 = _stats(sliders)
    out = {"load_before": load, "results": results, "page_errors": errors}
    (build / "bench_dashboard_browser.json").write_text(json.dumps(out, indent=1))
    print(f"browser: slider settled p50 {p50:.0f} ms p90 {p90:.0f} ms (128 x 128)")
    return out


if __name__ == "__main__":
    main()
