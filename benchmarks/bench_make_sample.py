"""Time `make_world` + writing for each size preset and print the figures.

Run: ``python benchmarks/bench_make_sample.py [--sizes tiny small medium] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from kgvsf_explore.world import write_world


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small", "medium"])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    print(f"{'size':<8} {'seconds (best)':>15} {'MB on disk':>11}")
    for size in args.sizes:
        best, mb = float("inf"), 0.0
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                out = write_world(Path(tmp) / "w", seed=123, size=size)
                best = min(best, time.perf_counter() - t0)
                mb = _size_mb(out)
        print(f"{size:<8} {best:>15.1f} {mb:>11.1f}")


if __name__ == "__main__":
    main()
