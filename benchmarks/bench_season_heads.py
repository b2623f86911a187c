"""Season heads against the random forests: crop macro F1 and soil moisture R^2.

Runs the scorecard's label tasks (crop type, soil moisture) of the shipped weights on sample
worlds: the one-date head (``kgvsf``), the season head (``kgvsf-season-head``: frozen
embeddings at every image date of the year + a head fitted on the same labels) and the random
forest, on the same field-year split and test pixels. The season embeddings are cached in
``build/peers-cache`` (a second run only refits the heads).

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_season_heads.py --seeds 5151 7373
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    import kgvsf_explore as kx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[5151, 7373])
    ap.add_argument("--out", default="build/bench-season-heads.json")
    args = ap.parse_args()
    results = {}
    for seed in args.seeds:
        t0 = time.perf_counter()
        card = kx.evaluate_weights(seed=seed, tasks=("crop_type", "soil_moisture"),
                                   peers=("random_forest",))
        df = card.to_frame()
        keep = df[df.metric.isin(["macro_f1", "r2", "rmse"])]
        results[seed] = {f"{r.task}/{r.metric}/{r.method}": r.value
                         for r in keep.itertuples()}
        results[seed]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"world {seed}:")
        print(keep.pivot(index=["task", "metric"], columns="method", values="value")
              .round(3).to_string())
        print(f"({results[seed]['seconds']} s)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
