"""Latency of one dashboard re-forecast, with and without the cached region context.

Run: ``python benchmarks/bench_dashboard.py [--threads 2] [--repeats 20] [--weights DIR]
[--no-pixel-share] [--out FILE.json]``

On the shipped sample cube and weights, for a 64 x 64 and a 128 x 128 region and 3 horizons
(5, 15, 30 days), it times what a slider move costs:

- ``cached``: :meth:`RegionSession.forecast` on an encoded context under a new scenario each
  time (a rain scale that changes with every call, plus +2 degC), split into the driver part
  (scenario on the stored driver cells -> tile means), the network part
  (:meth:`KGVSF.forecast`) and stitching;
- ``uncached``: building the :class:`RegionSession` (read and encode the context) and then
  forecasting, i.e. what every move would cost without the cache;
- ``forecast_region``: the library's one-shot path for the same region, scenario and horizons.

It prints a table and writes the figures as JSON (default ``build/bench_dashboard.json``).
``--threads 2`` (the default) mimics the 2-core CI machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from kgvsf_explore.app.controls import WeatherControls
from kgvsf_explore.app.session import RegionSession, with_drivers_in_memory
from kgvsf_explore.cube import open_cube
from kgvsf_explore.data import sample_path
from kgvsf_explore.inference.region import forecast_region
from kgvsf_explore.weights import load_model

START = "2022-06-30"
HORIZONS = [5, 15, 30]


def _p(values: list[float]) -> dict[str, float]:
    ms = sorted(1e3 * v for v in values)
    return {"p50_ms": round(statistics.median(ms), 2),
            "p90_ms": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 2),
            "min_ms": round(ms[0], 2), "n": len(ms)}


def bench_region(model, cube, side: int, repeats: int) -> dict:
    rows, cols = slice(0, side), slice(0, side)
    t0 = time.perf_counter()
    session = RegionSession(model, cube, START, rows=rows, cols=cols)
    first_build = time.perf_counter() - t0
    session.baseline(HORIZONS)  # warm-up (and the cached baseline the dashboard shows)
    scale = iter(np.linspace(0.2, 1.8, 2 * repeats + 2 * max(3, repeats // 5) + 2))

    def scenario():
        c = WeatherControls(temp_offset=2.0, rain_scale=float(next(scale)))
        return c.scenario(session.t, session.k_max)

    session.forecast(HORIZONS, scenario())  # warm-up
    total, drivers, network, stitch = [], [], [], []
    for _ in range(repeats):
        scen = scenario()
        a = time.perf_counter()
        fut = session.future(scen)
        b = time.perf_counter()
        tiles = session._run(fut, HORIZONS)
        c = time.perf_counter()
        session._stitch(tiles)
        d = time.perf_counter()
        drivers.append(b - a)
        network.append(c - b)
        stitch.append(d - c)
        total.append(d - a)
    end_to_end = []
    for _ in range(repeats):
        scen = scenario()
        a = time.perf_counter()
        session.forecast(HORIZONS, scen)
        end_to_end.append(time.perf_counter() - a)
    uncached = []
    for _ in range(max(3, repeats // 5)):
        a = time.perf_counter()
        s = RegionSession(model, cube, START, rows=rows, cols=cols)
        s.forecast(HORIZONS, scenario())
        uncached.append(time.perf_counter() - a)
    one_shot = []
    for _ in range(max(3, repeats // 5)):
        a = time.perf_counter()
        forecast_region(model, cube, START, HORIZONS, scenario(), rows=rows, cols=cols,
                        progress=False)
        one_shot.append(time.perf_counter() - a)
    return {"region": f"{side}x{side}", "tiles": len(session.windows),
            "horizons": HORIZONS, "first_build_s": round(first_build, 3),
            "cached": _p(end_to_end), "cached_parts": {
                "drivers": _p(drivers), "network": _p(network), "stitch": _p(stitch),
                "sum": _p(total)},
            "uncached": _p(uncached), "forecast_region": _p(one_shot)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CI: 2)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sides", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--out", default="build/bench_dashboard.json")
    parser.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    parser.add_argument("--no-pixel-share", action="store_true",
                        help="recompute the per-pixel path's share of the context at every "
                             "horizon and call (the path before it was cached), to compare")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    cube = with_drivers_in_memory(open_cube(sample_path()))
    model, sha = load_model(args.weights) if args.weights else load_model()
    if args.no_pixel_share:
        model._pixel_static = lambda state: None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = {"torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "load_average_1min_before": round(load, 2), "start": START,
              "weights_sha256": sha[:12], "pixel_share_cached": not args.no_pixel_share}
    print(", ".join(f"{k} {v}" for k, v in header.items()))
    results = [bench_region(model, cube, side, args.repeats) for side in args.sides]
    print(f"{'region':<9}{'tiles':>6}{'cached p50':>12}{'p90':>8}{'drivers':>9}{'network':>9}"
          f"{'stitch':>8}{'uncached':>10}{'forecast_region':>17}")
    for r in results:
        parts = r["cached_parts"]
        print(f"{r['region']:<9}{r['tiles']:>6}{r['cached']['p50_ms']:>10.1f}ms"
              f"{r['cached']['p90_ms']:>6.1f}ms{parts['drivers']['p50_ms']:>7.1f}ms"
              f"{parts['network']['p50_ms']:>7.1f}ms{parts['stitch']['p50_ms']:>6.1f}ms"
              f"{r['uncached']['p50_ms']:>8.0f}ms{r['forecast_region']['p50_ms']:>15.0f}ms")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**header, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
