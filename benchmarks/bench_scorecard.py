"""Time ``kgvsf evaluate-weights`` stage by stage (the shipped weights beside every peer).

Run: ``python benchmarks/bench_scorecard.py [--seed 5151] [--size small] [--warm]``

By default the trees' training-row cache is a fresh temporary folder, so the first stage
includes simulating the weights' three training worlds and drawing the rows (what a first run
costs); ``--warm`` reuses ``build/peers-cache``. Prints the seconds of each stage, the total and
the load average (timings on a shared machine are only as good as its idleness).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=5151)
    parser.add_argument("--size", default="small")
    parser.add_argument("--warm", action="store_true", help="reuse build/peers-cache")
    args = parser.parse_args()

    from kgvsf_explore.evaluation.scorecard import evaluate_weights

    print(f"cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = "build/peers-cache" if args.warm else tmp
        t0 = time.perf_counter()
        card = evaluate_weights(seed=args.seed, size=args.size, cache=cache, quiet=True)
        total = time.perf_counter() - t0
    print(f"{'stage':<16} {'seconds':>8}")
    for stage, seconds in card.meta["stage_seconds"].items():
        print(f"{stage:<16} {seconds:>8.1f}")
    print(f"{'total':<16} {total:>8.1f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"scorecard: {total:.0f} s for world {args.seed} ({args.size}), "
          f"{'warm' if args.warm else 'cold'} cache")


if __name__ == "__main__":
    main()
