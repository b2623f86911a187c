"""Gap filling: the fill head against linear interpolation, date by date, on sample worlds.

For each world, the scorecard's held-out gap dates (12 image dates of 2022, evenly spread, at
least 30 % clear) are hidden together, a :class:`~kgvsf_explore.heads.FillHead` is fitted on
the rest of the cube (each usable clear date hidden in turn) and fills them; every date is
scored against the simulator's cloud-free truth on the scorecard's central window, beside
linear interpolation between each pixel's clear observations on both sides (the peer to
beat). Reflectance MSE over the observed bands, on pixels where both have a value.

``--train-dates``/``--pixels-per-date`` and ``--params`` (JSON for the head: its trees'
settings, and ``"gate": false`` for the ungated correction) compare settings;
``docs/heads.md`` quotes the runs below.

Usage::

    nice .venv/bin/python benchmarks/bench_fill.py --seeds 7373 5151 8484 \\
        --weights data_samples/weights/kgvsf-small-pcwv
    nice .venv/bin/python benchmarks/bench_fill.py --seeds 5151 --params '{"gate": false}'
    nice .venv/bin/python benchmarks/bench_fill.py --seeds 5151 --train-dates 24 \\
        --pixels-per-date 3000
    nice .venv/bin/python benchmarks/bench_fill.py --seeds 5151 --params \\
        '{"max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 15, \\
          "min_samples_leaf": 100, "l2_regularization": 1.0}'
"""

from __future__ import annotations

import argparse
import json
import time


def score_world(seed: int, weights: str | None, train_dates: int, pixels_per_date: int,
                params: dict) -> list[dict]:
    """One record per held-out date: the date, fill and linear MSE."""
    import numpy as np
    import pandas as pd

    from kgvsf_explore.cube.cube import Cube
    from kgvsf_explore.evaluation.peers.drivers import DriverSums
    from kgvsf_explore.evaluation.peers.history import PixelHistory
    from kgvsf_explore.evaluation.scorecard.cases import gap_dates
    from kgvsf_explore.evaluation.scorecard.run import _map_window
    from kgvsf_explore.heads.fill import FillHead, _Context, fill_region, hide_dates
    from kgvsf_explore.weights import default_weights, load_model
    from kgvsf_explore.world import make_world

    ds, fields = make_world(seed=seed, size="small")
    cube = Cube(ds.load(), fields=fields)
    model, sha = load_model(weights or default_weights())
    times = [cube.times[j] for j in gap_dates(cube, 12, k_max=model.cfg.k_max)]
    rows, cols = _map_window(cube)
    hidden = hide_dates(cube, times)
    hist = PixelHistory.from_cube(hidden)
    ctx = _Context(model, hidden, hist, DriverSums(hidden), rows, cols)
    head = FillHead(seed=0, **params).fit(ctx, None, train_dates=train_dates,
                                          pixels_per_date=pixels_per_date)
    filled = fill_region(model, cube, times, rows=rows, cols=cols, head=head)
    h, w = rows.stop - rows.start, cols.stop - cols.start
    rr, cc = (a.ravel() for a in np.mgrid[rows, cols])
    keep = [i for i, b in enumerate(hist.bands) if b in cube.observed_bands]
    out = []
    for t in times:
        truth = np.asarray(cube.truth.sel(time=t).values, "float32")[:, rows, cols][keep]
        lin, _ = hist.interpolate(int((t - pd.Timestamp("1970-01-01")).days), rr, cc)
        lin = lin.T.reshape(len(hist.bands), h, w)[keep]
        mine = np.asarray(filled.reflectance.sel(time=t).values)[keep]
        ok = np.isfinite(lin).all(0) & np.isfinite(mine).all(0) & np.isfinite(truth).all(0)
        out.append({"world": seed, "date": str(t.date()),
                    "fill": float(np.mean((mine - truth)[:, ok] ** 2)),
                    "linear": float(np.mean((lin - truth)[:, ok] ** 2)),
                    "pixels": int(ok.sum()), "train_dates": len(head.train_dates)})
    return out


def main() -> None:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[5151, 8484])
    ap.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    ap.add_argument("--train-dates", type=int, default=400)
    ap.add_argument("--pixels-per-date", type=int, default=500)
    ap.add_argument("--params", default="{}", help="JSON of FillHead settings")
    args = ap.parse_args()
    params = json.loads(args.params)
    records = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        recs = score_world(seed, args.weights, args.train_dates, args.pixels_per_date, params)
        records += recs
        tab = pd.DataFrame(recs)
        print(f"\nworld {seed} ({recs[0]['train_dates']} learning dates, "
              f"{time.perf_counter() - t0:.0f} s)")
        print(tab[["date", "fill", "linear", "pixels"]].to_string(
            index=False, float_format=lambda v: f"{v:.2e}"))
    tab = pd.DataFrame(records)
    wins = int((tab["fill"] < tab["linear"]).sum())
    print(f"\nfill: beats linear interpolation on {wins} of {len(tab)} dates "
          f"({wins / len(tab):.0%}); mean MSE {tab['fill'].mean():.2e} against "
          f"{tab['linear'].mean():.2e} (train_dates={args.train_dates}, "
          f"pixels_per_date={args.pixels_per_date}, params={params})")


if __name__ == "__main__":
    main()
