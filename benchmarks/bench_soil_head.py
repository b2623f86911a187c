"""The scorecard's soil-moisture season head with and without the weather, over window sizes.

Runs ``kgvsf evaluate-weights --tasks soil_moisture`` on sample worlds once per variant of the
season head (``SoilMoistureHead(window=W)``, with or without ``weather=cube``) and prints its
R² (heads averaged over finetuning seeds 0, 1, 2, as in the card). ``docs/heads.md`` quotes:

    nice .venv/bin/python benchmarks/bench_soil_head.py --seeds 5151 7373 --variants 6:1 6:0
    nice .venv/bin/python benchmarks/bench_soil_head.py --seeds 5151 \\
        --variants 12:1 18:1 24:1 36:1 18:0
"""

from __future__ import annotations

import argparse
import functools
import time


def main() -> None:
    import kgvsf_explore as kx
    import kgvsf_explore.evaluation.scorecard.labels as labels
    import kgvsf_explore.evaluation.scorecard.season as season
    from kgvsf_explore.heads import SoilMoistureHead

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[5151, 7373])
    ap.add_argument("--variants", nargs="+", default=["6:1", "6:0"],
                    help="WINDOW:WEATHER pairs (WEATHER 1: the head reads the cube's weather)")
    ap.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    args = ap.parse_args()
    for seed in args.seeds:
        for spec in args.variants:
            window, weather = (int(v) for v in spec.split(":"))
            season.SoilMoistureHead = functools.partial(SoilMoistureHead, window=window)
            labels.season_sm_rows = functools.partial(season.season_sm_rows,
                                                      weather=bool(weather))
            t0 = time.perf_counter()
            card = kx.evaluate_weights(seed=seed, tasks=("soil_moisture",),
                                       peers=("persistence",), weights=args.weights)
            df = card.to_frame()
            r2 = df[(df.metric == "r2") & (df.method == season.SEASON_METHOD)].value.iloc[0]
            print(f"world {seed}, window {window}, weather {bool(weather)}: season head R2 "
                  f"{r2:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
