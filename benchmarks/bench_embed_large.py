"""Embeddings of a cube larger than memory, block by block through dask: pixels/s and peak RSS.

Run: ``python benchmarks/bench_embed_large.py [--size 2048] [--years 2022] [--chunks 512]
[--workdir build/bench_large] [--json build/bench_large/result.json]``

1. Writes a big chunked zarr cube (``size x size`` pixels, the image dates of ``years``) by tiling
   the shipped sample cube lazily with dask (simulating a world this size would take hours; the
   model does not care that the fields repeat). Skipped when the store already exists.
2. In a fresh process, opens it lazily and writes ``Forecaster.embed(cube, None, date,
   chunks=...)`` to zarr, with dask's threaded scheduler; reports the wall time, pixels/s and the
   process's peak RSS.
3. Right after, in the same process and on the same 2 threads, times the model alone on
   in-memory tensors for the same number of tiles (``model.embed`` on random context batches),
   so the overhead of reading and stitching is visible.

The issue's targets: peak RSS under 2 GiB whatever the cube size, and throughput within 1.5x of
the model's pure compute time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

import kgvsf_explore as kx
from kgvsf_explore import schema
from kgvsf_explore.inference import plan_tiles

BANDS = list(schema.BANDS)


def write_big_cube(path: Path, size: int, years: list[int]) -> None:
    """A ``size x size`` px cube of the sample's image dates in ``years``, tiled lazily."""
    src = kx.open_cube(kx.sample_path()).ds
    n = src.sizes[schema.Y_DIM]
    if size % n:
        raise SystemExit(f"--size must be a multiple of {n}")
    reps = size // n
    times = pd.DatetimeIndex(src.time.values)
    days = pd.DatetimeIndex(src.day.values)
    tsel = np.flatnonzero(times.year.isin(years))
    dsel = np.flatnonzero(days.year.isin(years))
    res = 10.0
    x0, y1 = float(src.x[0]) - res / 2, float(src.y[0]) + res / 2
    x = x0 + res / 2 + res * np.arange(size)
    y = y1 - res / 2 - res * np.arange(size)
    # the sample's 320 m met grid: tile its 4 inner cells, one cell beyond the image each side
    met = 320.0
    inner = slice(1, 5)
    m = size * int(res) // int(met) + 2
    x_met = x0 - met / 2 + met * np.arange(m)
    y_met = y1 + met / 2 - met * np.arange(m)
    out = xr.Dataset(coords={"time": times[tsel], "day": days[dsel], "y": y, "x": x,
                             "y_met": y_met, "x_met": x_met})
    chunks = (8, 512, 512)
    for v in BANDS + [schema.CLOUD_MASK]:
        arr = src[v].isel(time=tsel).data
        big = da.tile(arr, (1, reps, reps)).rechunk(chunks)
        out[v] = (("time", "y", "x"), big, src[v].attrs)
        out[v].encoding = {k: src[v].encoding[k] for k in ("dtype", "scale_factor",
                                                           "_FillValue", "add_offset")
                           if k in src[v].encoding}
    for v in (schema.CROP_TYPE, schema.FIELD_ID, schema.SOIL_TYPE):
        out[v] = (("y", "x"), da.tile(src[v].data, (reps, reps)).rechunk(512), src[v].attrs)
    for v in schema.DRIVERS:
        arr = src[v].isel(day=dsel, y_met=inner, x_met=inner).data
        out[v] = (("day", "y_met", "x_met"),
                  da.tile(arr, (1, -(-m // 4), -(-m // 4)))[:, :m, :m].rechunk((len(dsel), 64, 64)),
                  src[v].attrs)
    out[schema.GRID_MAPPING] = src[schema.GRID_MAPPING]
    out.attrs = {k: v for k, v in src.attrs.items() if not k.startswith("kgvsf_")}
    out.attrs["title"] = f"benchmark cube: the sample tiled to {size} x {size} px"
    tmp = path.with_name(path.name + ".tmp")
    out.to_zarr(tmp, mode="w", consolidated=False)
    tmp.rename(path)


def run_embed(path: Path, out: Path, date: str, chunks: int) -> dict:
    """Embed the cube to zarr in this process; wall time and peak RSS."""
    import dask

    cube = kx.open_cube(path)
    fc = kx.Forecaster.from_pretrained(device="cpu")
    t0 = time.perf_counter()
    emb = fc.embed(cube, None, date, chunks=chunks)
    with dask.config.set(scheduler="threads", num_workers=2):
        emb.to_dataset().to_zarr(out, mode="w", consolidated=False)
    seconds = time.perf_counter() - t0
    ny, nx = emb.sizes["y"], emb.sizes["x"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MiB on Linux
    tiles = len(plan_tiles(cube, fc.cfg, date).windows)
    compute = pure_compute(fc, tiles)  # right after, in the same process and load
    return {"pixels": ny * nx, "seconds": seconds, "pixels_per_s": ny * nx / seconds,
            "peak_rss_mib": peak, "tiles": tiles, "model_seconds": compute,
            "overhead_ratio": seconds / compute, "load_average": os.getloadavg()[0]}


def pure_compute(fc: kx.Forecaster, tiles: int, batch: int = 16, workers: int = 2) -> float:
    """Seconds of ``model.embed`` alone for ``tiles`` tiles (random in-memory batches), on
    ``workers`` threads like the dask run, so the two figures compare like with like."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    cfg = fc.cfg
    g = torch.Generator().manual_seed(0)
    nd, s = cfg.context, cfg.tile
    days = 5 * (nd - 1) + 1

    def make(b: int) -> dict:
        return {"images": 0.1 + 0.05 * torch.randn(b, nd, len(cfg.bands), s, s, generator=g),
                "mask": torch.ones(b, nd, s, s, dtype=torch.bool),
                "context_mask": torch.ones(b, nd, dtype=torch.bool),
                "image_offsets": torch.arange(-5 * (nd - 1), 1, 5).repeat(b, 1),
                "doy": torch.arange(150, 150 + 5 * nd, 5).repeat(b, 1),
                "drivers": torch.randn(b, days, len(cfg.drivers), generator=g),
                "t_index": torch.full((b,), days - 1)}

    full = make(batch)
    sizes = [batch] * (tiles // batch) + ([tiles % batch] if tiles % batch else [])

    def run(b: int) -> None:
        with torch.no_grad():
            fc.model.embed({k: v[:b] for k, v in full.items()})

    run(batch)  # warm-up
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, sizes))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--years", default="2022")
    p.add_argument("--chunks", type=int, default=512)
    p.add_argument("--date", default="2022-07-01")
    p.add_argument("--workdir", default="build/bench_large")
    p.add_argument("--json", help="write the figures here (default WORKDIR/result.json)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    work = Path(args.workdir)
    store = work / f"cube_{args.size}_{args.years.replace(',', '-')}.zarr"
    if args.child:  # the measured process: nothing else in its memory
        print(json.dumps(run_embed(store, work / "embedding.zarr", args.date, args.chunks)))
        return
    work.mkdir(parents=True, exist_ok=True)
    if not store.exists():
        t0 = time.perf_counter()
        write_big_cube(store, args.size, [int(y) for y in args.years.split(",")])
        print(f"wrote {store} in {time.perf_counter() - t0:.0f} s")
    disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 2**30
    child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child"],
                           capture_output=True, text=True, check=True,
                           env={**os.environ, "OMP_NUM_THREADS": os.environ.get(
                               "OMP_NUM_THREADS", "2")})
    result = json.loads(child.stdout.strip().splitlines()[-1])
    compute = result["model_seconds"]
    result.update(size=args.size, years=args.years, chunks=args.chunks, cube_gib=disk,
                  cpus=os.cpu_count())
    print(f"cube {args.size} x {args.size} px, {args.years}: {disk:.2f} GiB on disk")
    print(f"embedding through dask ({args.chunks}-px blocks): {result['seconds']:.1f} s, "
          f"{result['pixels_per_s']:,.0f} px/s, peak RSS {result['peak_rss_mib']:.0f} MiB")
    print(f"model alone on in-memory tensors (same threads, right after): {compute:.1f} s -> "
          f"end-to-end / model = {result['overhead_ratio']:.2f}x "
          f"(load average {result['load_average']:.1f})")
    Path(args.json or work / "result.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
