"""Throughput of the KG-VSF network: training steps and region re-forecasts, CPU or CUDA.

Run: ``python benchmarks/bench_model.py [--presets tiny small base] [--device cpu|cuda]``

Uses synthetic batches of the preset's shapes (no data loading), so it measures the network:
optimiser steps per second for each objective's loss, and the latency of one re-forecast of an
already encoded context (what a dashboard slider triggers) for 16 tiles x 3 horizons. On CUDA
the training step runs under bf16 autocast, as the training loop does.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from kgvsf_explore.models import KGVSF, PRESETS


def synthetic_batch(cfg, batch_size: int, days: int, device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    c, s, nd = len(cfg.bands), cfg.tile, cfg.context
    images = torch.tensor(cfg.band_mean)[None, None, :, None, None] + 0.05 * torch.randn(
        batch_size, nd, c, s, s, generator=g)
    drivers = torch.tensor(cfg.driver_mean) + torch.tensor(cfg.driver_std) * torch.randn(
        batch_size, days, len(cfg.drivers), generator=g)
    batch = {
        "images": images,
        "mask": torch.rand(batch_size, nd, s, s, generator=g) > 0.3,
        "context_mask": torch.ones(batch_size, nd, dtype=torch.bool),
        "image_offsets": torch.arange(-5 * (nd - 1), 1, 5).repeat(batch_size, 1),
        "doy": torch.arange(150, 150 + 5 * nd, 5).repeat(batch_size, 1),
        "drivers": drivers,
        "drivers_mask": torch.ones(batch_size, days, dtype=torch.bool),
        "t_index": torch.full((batch_size,), 5 * (nd - 1)),
        "k": torch.randint(1, 61, (batch_size,), generator=g),
        "target": images[:, -1],
        "target_mask": torch.ones(batch_size, s, s, dtype=torch.bool),
    }
    return {k: v.to(device) for k, v in batch.items()}


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(preset: str, device: torch.device, steps: int) -> None:
    cfg, train = PRESETS[preset].model, PRESETS[preset].train
    days = 5 * (cfg.context - 1) + cfg.k_max + 1
    batch = synthetic_batch(cfg, train.batch_size, days, device)
    auto = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
            else contextlib.nullcontext())
    for objective, phase in (("kgvsf", 1), ("kgvsf", 2), ("mm-vsf", 2)):
        torch.manual_seed(0)
        model = KGVSF(cfg, objective).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for i in range(steps + 2):
            if i == 2:
                _sync(device)
                t0 = time.perf_counter()
            with auto:
                loss, _ = model.loss(batch, objective, phase)
            opt.zero_grad()
            loss.backward()
            opt.step()
        _sync(device)
        rate = steps / (time.perf_counter() - t0)
        print(f"{preset:<6} {device.type:<5} train {objective:<7} phase {phase}: "
              f"{rate:7.2f} steps/s  ({rate * train.batch_size:8.1f} samples/s, "
              f"batch {train.batch_size})")
    model = KGVSF(cfg, "kgvsf").to(device).eval()
    ctx = synthetic_batch(cfg, 16, 5 * (cfg.context - 1) + 1, device)
    future = synthetic_batch(cfg, 16, 60, device)["drivers"]
    with torch.no_grad():
        state = model.encode_context(ctx)
        lat = []
        for _ in range(max(steps, 10)):
            _sync(device)
            t0 = time.perf_counter()
            model.forecast(state, future, [5, 30, 60])
            _sync(device)
            lat.append(time.perf_counter() - t0)
    print(f"{preset:<6} {device.type:<5} re-forecast 16 tiles x 3 horizons: "
          f"p50 {1e3 * statistics.median(lat):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    for p in args.presets:
        bench(p, device, args.steps)


if __name__ == "__main__":
    main()
