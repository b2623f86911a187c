"""Several browser sessions changing controls and regions rapidly: errors and state isolation.

Starts ``kgvsf serve`` (shipped sample and weights) on 127.0.0.1 and opens ``--sessions`` tabs
of Debian's headless Chromium (Playwright) together. For ``--seconds`` the tabs take turns, as
fast as one Playwright thread drives them, at a random action without waiting for its answer:
a horizon, temperature or rain step (arrow keys on a focused slider), a new region typed into
the region box (now and then one outside the cube), a layer of the overview menu, or a
checkbox. Then each tab sets its own final state - a region of its own and a horizon of its
own - and the script checks that:

- every tab shows its own final region and horizon (no session sees another's state);
- no tab logged a page error or console error;
- the server's log holds no traceback, no error and no "unlocked decorator" warning.

Prints the actions done, then one line ``stress: N sessions, S s, A actions, E errors`` and
exits non-zero when a check fails. The test suite runs a short version of this
(``tests/test_app_browser.py::test_four_sessions_keep_their_own_state``).

Usage: ``python benchmarks/stress_dashboard_browser.py [--sessions 4] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dashboard_browser import ARGS, CHROMIUM, ROOT, _boxes, _free_port, _serve  # noqa: E402

HANDLES = (0, 1, 2)  # horizon, temperature, rain sliders
FINAL_SIDE = 40  # pixels per side of each tab's last region (a size typed nowhere else)
BAD = ("Traceback", "Error", "unlocked decorator")


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--actions", default="slider,region,layer,checkbox",
                    help="the kinds of action to draw from (comma-separated)")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    weights = {"slider": 5, "region": 2, "layer": 1, "checkbox": 1}
    pool = [k for k in args.actions.split(",") for _ in range(weights[k])]
    boxes = _boxes(48, 12) + _boxes(96, 4)
    final_boxes = _boxes(FINAL_SIDE, args.sessions)  # each tab's last region
    text = lambda b: ", ".join(f"{v:.0f}" for v in b)  # noqa: E731
    port = _free_port()
    (ROOT / "build").mkdir(exist_ok=True)
    log = ROOT / "build" / "stress_dashboard_browser.log"
    proc = _serve(port, log)
    url = f"http://127.0.0.1:{port}/"
    actions: dict[str, int] = {}
    failures: list[str] = []
    caught_up: list[float] = []  # seconds from the last final action until each tab showed it
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            ctx = browser.new_context(viewport={"width": 1600, "height": 1250})
            ctx.set_default_timeout(60_000)
            pages, errors = [], []
            for _ in range(args.sessions):  # open together, wait afterwards
                page = ctx.new_page()
                errs: list[str] = []
                page.on("pageerror", lambda e, errs=errs: errs.append(f"pageerror: {e}"))
                page.on("console", lambda m, errs=errs: errs.append(f"console: {m.text}")
                        if m.type == "error" else None)
                page.goto(url, wait_until="commit", timeout=120_000)
                pages.append(page)
                errors.append(errs)
            for page in pages:
                expect(page.locator(".kgvsf-info p").first).to_contain_text(
                    "re-forecast in", timeout=120_000)
            t_end = time.time() + args.seconds
            while time.time() < t_end:
                page = rng.choice(pages)
                kind = rng.choice(pool)
                try:
                    if kind == "slider":
                        page.locator(".noUi-handle").nth(rng.choice(HANDLES)).focus()
                        page.keyboard.press(rng.choice(["ArrowLeft", "ArrowRight"]))
                    elif kind == "region":
                        box = (0, 0, 10, 10) if rng.random() < 0.1 else rng.choice(boxes)
                        field = page.locator(".kgvsf-region input").first
                        field.fill(text(box))
                        field.press("Enter")
                    elif kind == "layer":
                        select = page.locator("select").first
                        options = select.locator("option").all_inner_texts()
                        select.select_option(label=rng.choice(options))
                    else:
                        boxes_ = page.locator("input[type=checkbox]")
                        boxes_.nth(rng.randrange(boxes_.count())).click()
                except PlaywrightError as err:  # an element replaced under the click
                    kind = f"{kind} (retried later: {str(err).splitlines()[0][:60]})"
                actions[kind] = actions.get(kind, 0) + 1
            # each tab's own final state
            finals = []
            for i, page in enumerate(pages):
                box = final_boxes[i]
                field = page.locator(".kgvsf-region input").first
                field.fill(text(box))
                field.press("Enter")
                finals.append(box)
            time.sleep(2.0)
            for i, page in enumerate(pages):
                knob = page.locator(".noUi-handle").nth(0)
                knob.focus()
                for _ in range(i + 1):
                    page.keyboard.press("ArrowRight")
            t_final = time.time()
            for i, page in enumerate(pages):
                info = page.locator(".kgvsf-info p").first
                knob = page.locator(".noUi-handle").nth(0)
                deadline = time.time() + 60
                while True:
                    k = knob.get_attribute("aria-valuenow")
                    shown = info.inner_text()
                    m = re.search(r"k = (\d+) days", shown)
                    if m and k and int(float(k)) == int(m.group(1)):
                        caught_up.append(time.time() - t_final)
                        break
                    if time.time() > deadline:
                        title = page.evaluate("""() => {
                          for (const d of Bokeh.documents) for (const m of d.all_models)
                            if (m.title && m.title.text && m.title.text.startsWith('observed'))
                              return m.title.text;
                          return null; }""")
                        failures.append(f"tab {i}: slider k {k} but the page shows {shown!r}; "
                                        f"map title {title!r}")
                        break
                    time.sleep(0.1)
                x0, y0, x1, y1 = finals[i]
                res = (x1 - x0) / FINAL_SIDE
                want = f"region x {x0 + res / 2:.0f}..{x1 - res / 2:.0f}, y {y0 + res / 2:.0f}.."
                size = f"({FINAL_SIDE} x {FINAL_SIDE} px)"
                if want not in info.inner_text() or size not in info.inner_text():
                    alert = page.locator(".alert").all_inner_texts()
                    failures.append(f"tab {i}: typed {text(finals[i])}, page shows "
                                    f"{info.inner_text()[:90]!r}; alert {alert}")
                if field_value := page.locator(".kgvsf-region input").first.input_value():
                    if field_value != text(finals[i]):
                        failures.append(f"tab {i}: region box says {field_value}")
            for i, errs in enumerate(errors):
                failures += [f"tab {i}: {e}" for e in errs]
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    server = log.read_text()
    failures += [f"server log: {line}" for line in server.splitlines()
                 if any(b in line for b in BAD)]
    for kind, n in sorted(actions.items()):
        print(f"{n:>5}  {kind}")
    print(f"{sum(actions.values()) / args.seconds:.1f} actions a second; the tabs showed their "
          "final horizon " + ", ".join(f"{v:.1f}" for v in caught_up) + " s after it was set"
          + (f" ({args.sessions - len(caught_up)} never)" if len(caught_up) < args.sessions
             else ""))
    for f in failures[:40]:
        print("FAIL", f)
    print(f"stress: {args.sessions} sessions, {args.seconds:.0f} s, {sum(actions.values())} "
          f"actions, {len(failures)} errors")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
