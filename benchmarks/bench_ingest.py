"""Time ``kgvsf ingest`` of a folder of fake Sentinel-2 dates and measure its peak memory.

Writes ``--dates`` Sentinel-2 L2A dates of ``--size`` x ``--size`` pixels as a user has them
(B02 B03 B04 B08 at 10 m, B05 B11 B12 and the SCL at 20 m, uint16 with the baseline 04.00
offset, no-data 0, some clouds), plus a station CSV, then ingests them into a zarr cube in a
fresh Python process and prints the seconds, dates per second and that process's peak
resident memory (``ru_maxrss``). The image bands are read lazily and written chunk by chunk,
so the peak memory should stay about flat when ``--dates`` doubles, well below the size of
the bands in memory.

Run::

    python benchmarks/bench_ingest.py --dates 40 --size 1024
    python benchmarks/bench_ingest.py --dates 80 --size 1024 --json ingest80.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CRS = "EPSG:32615"
ORIGIN = (446000.0, 4650000.0)


def write_folder(folder: Path, n_dates: int, size: int, seed: int = 0) -> dict[str, float]:
    """``n_dates`` fake Sentinel-2 dates of ``size`` x ``size`` 10 m pixels in ``folder``.

    Returns
    -------
    dict
        ``files``, ``megabytes`` on disk and ``seconds`` spent writing.
    """
    from affine import Affine

    from kgvsf_explore import schema
    from kgvsf_explore.ingest.fakes import write_sentinel2_date

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    t10 = Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])
    t20 = Affine(20.0, 0.0, ORIGIN[0], 0.0, -20.0, ORIGIN[1])
    half = size // 2
    base = {b: (0.04 + 0.04 * i + 0.02 * rng.random((size, size))).astype(np.float32)
            for i, b in enumerate(schema.BANDS)}
    dates = pd.date_range("2022-03-01", periods=n_dates, freq="5D")
    for d in dates:
        drift = np.float32(0.01 * rng.standard_normal())
        ten = {b: base[b] + drift for b in ("B02", "B03", "B04", "B08")}
        twenty = {b: base[b][::2, ::2] + drift for b in ("B05", "B11", "B12")}
        scl = np.full((half, half), 4, np.uint8)
        y0, x0 = rng.integers(0, max(half - half // 4, 1), 2)
        scl[y0:y0 + half // 4, x0:x0 + half // 4] = 9  # a cloud
        write_sentinel2_date(folder, d, ten, None, crs=CRS, transform=t10, resolution=10)
        write_sentinel2_date(folder, d, twenty, scl, crs=CRS, transform=t20, resolution=20)
    days = pd.date_range(dates[0] - pd.Timedelta(days=5), dates[-1] + pd.Timedelta(days=5))
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "tmax (K)": 300.0, "tmin (K)": 285.0,
                  "precipitation (m)": 0.002, "ssrd (J m-2)": 2.2e7, "d2m (K)": 283.0}
                 ).to_csv(folder.parent / "station.csv", index=False)
    files = list(folder.glob("*.tif"))
    return {"files": len(files), "megabytes": sum(p.stat().st_size for p in files) / 1e6,
            "seconds": time.perf_counter() - t0}


def _rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (``ru_maxrss`` is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def child(images: Path, weather: Path, out: Path) -> dict[str, float]:
    """The ingest itself (run in a fresh process, so its peak memory is its own)."""
    import kgvsf_explore.ingest.build  # noqa: F401  (imports counted apart from the ingest)
    from kgvsf_explore.ingest import ingest

    rss_imports = _rss_mb()
    t0 = time.perf_counter()
    ingest(out, images, weather, progress=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_rss_mb": _rss_mb(), "rss_after_imports_mb": rss_imports}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dates", type=int, default=60, help="image dates to write and ingest")
    parser.add_argument("--size", type=int, default=1024, help="image edge in 10 m pixels")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--workdir", help="folder for the files (default: a temporary one)")
    parser.add_argument("--child", nargs=3, metavar=("IMAGES", "WEATHER", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*map(Path, args.child))))
        return {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        images = Path(tmp) / "images"
        wrote = write_folder(images, args.dates, args.size)
        out = Path(tmp) / "cube.zarr"
        run = subprocess.run(
            [sys.executable, __file__, "--child", str(images), str(Path(tmp) / "station.csv"),
             str(out)], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            sys.exit(f"ingest failed:\n{run.stderr[-4000:]}")
        fig = json.loads(run.stdout.strip().splitlines()[-1])
        cube_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    bands_mb = args.dates * args.size ** 2 * (7 * 4 + 1) / 1e6  # float32 bands + bool mask
    result = {
        "dates": args.dates, "size": args.size, "files": wrote["files"],
        "input_mb": round(wrote["megabytes"], 1), "cube_mb_on_disk": round(cube_mb, 1),
        "bands_in_memory_mb": round(bands_mb, 1), "seconds": round(fig["seconds"], 2),
        "dates_per_s": round(args.dates / fig["seconds"], 3),
        "peak_rss_mb": round(fig["peak_rss_mb"], 1),
        "rss_after_imports_mb": round(fig["rss_after_imports_mb"], 1),
        "cores": os.cpu_count(),
    }
    print(f"ingest of {args.dates} dates of {args.size} x {args.size} px ({wrote['files']} "
          f"files, {result['input_mb']:.0f} MB): {result['seconds']:.1f} s, "
          f"{result['dates_per_s']:.2f} dates/s, peak RSS {result['peak_rss_mb']:.0f} MB "
          f"({result['rss_after_imports_mb']:.0f} MB after imports; the bands would take "
          f"{bands_mb:.0f} MB in memory) on {result['cores']} cores")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
