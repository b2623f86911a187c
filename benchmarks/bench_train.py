"""Pretraining throughput: the data loader alone, the training step eager and compiled.

Run: ``python benchmarks/bench_train.py [--presets tiny small] [--steps 20] [--batches 20]
[--compile] [--device cpu|cuda] [--json FILE]``

- **loader**: batches/s of the real training stream (:func:`make_loaders` on the shipped
  sample cube, the preset's batch size), with the cube loaded in memory (the default for cubes
  up to 2 GiB) and lazily on disk (read in 64-pixel blocks, each serving one batch or
  ``BLOCK_REUSE`` batches);
- every rate is the best of ``--repeat`` timed runs (3), as :mod:`timeit` reports;
- **step**: optimiser steps/s of the KG-VSF phase-2 loss on synthetic batches of the preset's
  shapes (``bench_model.synthetic_batch``), eager and, with ``--compile``, ``torch.compile``d
  (compile time reported apart); on CUDA float32 and bf16 autocast.

Throughput is printed as samples/s and pixels x dates/s (tile^2 x context dates per sample).
Training is data-bound when the loader is slower than the step; the target is a loader at least
5x faster than the step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import synthetic_batch  # noqa: E402

import kgvsf_explore as kx  # noqa: E402
from kgvsf_explore.models import KGVSF, PRESETS  # noqa: E402
from kgvsf_explore.training import make_loaders  # noqa: E402
from kgvsf_explore.training.data import BLOCK_REUSE  # noqa: E402

#: Each rate is the best of this many timed runs (``--repeat``).
REPEAT = 3


def loader_rate(preset: str, batches: int, in_memory: bool, block: int | None = None,
                block_reuse: int = 1) -> float:
    """Training batches per second from the shipped sample cube."""
    cfg, train = PRESETS[preset].model, PRESETS[preset].train
    cube = kx.open_cube(kx.sample_path())
    stream, _ = make_loaders(cube, cfg, train, in_memory=in_memory, block=block,
                             block_reuse=block_reuse)
    next(stream)  # open files, warm caches
    best = 0.0
    for _ in range(REPEAT):  # best of REPEAT, as timeit does: the least disturbed run
        t0 = time.perf_counter()
        for _ in range(batches):
            next(stream)
        best = max(best, batches / (time.perf_counter() - t0))
    return best


def step_rate(preset: str, device: torch.device, steps: int, compiled: bool,
              bf16: bool) -> tuple[float, float]:
    """(steps/s, seconds spent compiling) of the phase-2 KG-VSF loss."""
    cfg, train = PRESETS[preset].model, PRESETS[preset].train
    days = 5 * (cfg.context - 1) + cfg.k_max + 1
    batch = synthetic_batch(cfg, train.batch_size, days, device)
    torch.manual_seed(0)
    model = KGVSF(cfg, "kgvsf").to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = model.loss
    if compiled:
        loss_fn = torch.compile(model.loss)
    auto = (torch.autocast("cuda", dtype=torch.bfloat16) if bf16
            else contextlib.nullcontext())

    def step() -> None:
        with auto:
            loss, _ = loss_fn(batch, "kgvsf", 2)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(3):  # warm-up (and compilation)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    best = 0.0
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, steps / (time.perf_counter() - t0))
    return best, warm


def main() -> None:
    global REPEAT
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "small"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--repeat", type=int, default=REPEAT, help="best of this many runs")
    args = p.parse_args()
    REPEAT = args.repeat
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}")
    rows = []
    for preset in args.presets:
        cfg, train = PRESETS[preset].model, PRESETS[preset].train
        px = cfg.tile ** 2 * cfg.context
        b = train.batch_size

        def show(what: str, per_s: float, unit: str = "batches/s", extra: str = "",
                 preset: str = preset, b: int = b, px: int = px) -> None:
            print(f"{preset:<6} {what:<28} {per_s:8.2f} {unit}  ({per_s * b:8.1f} samples/s, "
                  f"{per_s * b * px / 1e6:6.2f} M px x dates/s){extra}")
            rows.append({"preset": preset, "what": what, "per_s": per_s, "unit": unit,
                         "samples_per_s": per_s * b, "px_dates_per_s": per_s * b * px})

        # On disk: 64-px blocks (a quarter of the sample, as a block is a small part of a
        # real archive) read whole, each serving 1 or BLOCK_REUSE batches.
        lazy = loader_rate(preset, args.batches, in_memory=False, block=64)
        show("loader (zarr, 64px blocks)", lazy)
        lazy = loader_rate(preset, args.batches, in_memory=False, block=64,
                           block_reuse=BLOCK_REUSE)
        show(f"loader (zarr, 64px x{BLOCK_REUSE})", lazy)
        mem = loader_rate(preset, args.batches, in_memory=True)
        show("loader (cube in memory)", mem)
        variants = [("step eager fp32", False, False)]
        if args.compile:
            variants.append(("step compiled fp32", True, False))
        if device.type == "cuda":
            variants.append(("step eager bf16", False, True))
            if args.compile:
                variants.append(("step compiled bf16", True, True))
        for name, compiled, bf16 in variants:
            rate, warm = step_rate(preset, device, args.steps, compiled, bf16)
            show(f"{name} ({device.type})", rate, "steps/s", f", warm-up {warm:.1f} s")
        eager = next(r["per_s"] for r in rows if r["preset"] == preset
                     and r["what"].startswith("step eager fp32"))
        print(f"{preset:<6} loader / step: {lazy / eager:.2f}x on disk, {mem / eager:.2f}x "
              f"in memory (target >= 5x)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
