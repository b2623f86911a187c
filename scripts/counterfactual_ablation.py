"""Why does MM-VSF answer the counterfactual check better than KG-VSF? An ablation.

Run: ``python scripts/counterfactual_ablation.py [--seed 42] [--cache build/evaluate/cache]
[--json FILE]``

The evaluation table (``kgvsf evaluate --preset small --what-if``) found MM-VSF's own forecaster
closer to the simulator's true change maps than KG-VSF's. The two differ in (a) the optimiser
steps spent forecasting (KG-VSF spends a quarter of its 600 on the reconstruction phase) and
(b) the architecture of the forecast (KG-VSF: causal attention, then a small MLP from the last
date's token, the weather summary and ``k``; MM-VSF: bidirectional attention with the weather as
input tokens and a query token of the target date). This script scores, with the check of the
table (same world, scenarios, pixels and metrics) and the native future-image MSE of the
table's test samples:

- ``kgvsf`` and ``mm-vsf`` from the evaluation's pretraining cache (600 steps each);
- ``kgvsf-no-mr``: KG-VSF with all 600 steps forecasting (no reconstruction phase), pretrained
  into the same cache on the same worlds and seed: same steps as MM-VSF, KG-VSF's architecture;
- ``kgvsf-shipped``: the shipped weights (600 reconstruction + 1400 forecasting steps on the same
  training worlds): KG-VSF with three times the forecasting steps;
- ``kgvsf-variants`` and ``mm-vsf-variants``: the same 600 steps on the training worlds plus one
  random-weather variant of each (:mod:`kgvsf_explore.world.variants`: the same world re-run
  under random dry spells, heat waves and wet spells), i.e. pretraining data in which the
  weather varies independently of everything else, as in the check's what-ifs.

If ``kgvsf-no-mr`` closes the gap, the step budget explains it; if only the longer run does,
the gap is training length; if the variants do, it is the data (in observed weather, rain and
warmth come with the season's growth, so a model can learn the correlation instead of the
response).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.evaluation import counterfactual_check as cc
from kgvsf_explore.evaluation.pretrained import (
    EVAL_STEPS,
    TRAIN_WORLDS,
    _finished,
    eval_train_config,
    load_or_pretrain,
    training_worlds,
)
from kgvsf_explore.evaluation.runner import EvalConfig, evaluation_cube, task_samples
from kgvsf_explore.tasks import TASKS, make_split
from kgvsf_explore.tasks.future_image import native_forecast
from kgvsf_explore.training import load_checkpoint, pretrain
from kgvsf_explore.world import make_world
from kgvsf_explore.world.sample import SIZES as WORLD_SIZES
from kgvsf_explore.world.variants import random_weather_scenario


def _cached(name: str, cache: str, preset: str, objective: str, seed: int, worlds,
            **train_overrides) -> torch.nn.Module:
    """``objective`` pretrained as in the evaluation (with ``train_overrides``) on
    ``worlds()``, cached in ``cache/preset/name-p{seed}`` like the evaluation's runs."""
    model_cfg, train_cfg = eval_train_config(preset, objective, seed)
    folder = Path(cache) / preset / f"{name}-p{seed}"
    if not _finished(folder):
        pretrain(worlds(), folder, model_cfg, replace(train_cfg, **train_overrides),
                 resume=True, device="cpu", progress=True)
    return load_checkpoint(folder)[0].eval()


@functools.cache
def _with_variants(preset: str) -> list[Cube]:
    """The training worlds plus one random-weather variant of each (simulated once, when a
    variant run is not cached yet)."""
    seeds, size = TRAIN_WORLDS[preset]
    worlds = training_worlds(preset)
    for s in seeds:
        rng = np.random.default_rng([s, 7919])  # as `kgvsf pretrain --weather-variants`
        scen = random_weather_scenario(rng, WORLD_SIZES[size][1])
        worlds.append(Cube(make_world(seed=s, size=size, scenario=scen)[0].load()))
    return worlds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=42, help="evaluation world")
    p.add_argument("--preset", default="small")
    p.add_argument("--cache", default="build/evaluate/cache")
    p.add_argument("--pretrain-seed", type=int, default=0)
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    t0 = time.perf_counter()
    cube = evaluation_cube(EvalConfig(preset=args.preset, seed=args.seed))
    split = make_split(cube)
    cases = cc.prepare_cases(cube, split)
    task = TASKS["future_image"]
    _, test = task_samples(task, cube, split, args.preset)
    run = (args.cache, args.preset)
    models = {
        "kgvsf": lambda: load_or_pretrain(args.cache, args.preset, "kgvsf", args.pretrain_seed),
        "mm-vsf": lambda: load_or_pretrain(args.cache, args.preset, "mm-vsf", args.pretrain_seed),
        "kgvsf-no-mr": lambda: _cached("kgvsf-no-mr", *run, "kgvsf", args.pretrain_seed,
                                       lambda: training_worlds(args.preset), phase1_steps=0,
                                       phase2_steps=sum(EVAL_STEPS[args.preset])),
        "kgvsf-shipped": lambda: load_checkpoint("data_samples/weights/kgvsf-small")[0].eval(),
        "kgvsf-variants": lambda: _cached("kgvsf-weather-variants", *run, "kgvsf",
                                          args.pretrain_seed, lambda: _with_variants(args.preset)),
        "mm-vsf-variants": lambda: _cached("mm-vsf-weather-variants", *run, "mm-vsf",
                                           args.pretrain_seed, lambda: _with_variants(args.preset)),
    }
    results = {}
    print(f"{'encoder':15s} {'corr':>6s} {'same sign':>9s} {'rmse':>7s} {'future MSE':>10s}  "
          "per scenario: forecast / true mean NDVI change")
    for name, load in models.items():
        model = load()
        per = [{"scenario": c.name, **cc.change_metrics(cc.native_change(model, cube, c),
                                                         c.true_change, c.pixels)}
               for c in cases]
        mse = task.metrics(native_forecast(model, test), test, test.part_pixels)["mse"]
        mean = {m: float(np.nanmean([r[m] for r in per]))
                for m in ("correlation", "same_sign", "rmse")}
        results[name] = {**mean, "future_image_mse": mse, "scenarios": per}
        detail = "  ".join(f"{r['scenario']} {r['forecast_change']:+.3f}/{r['true_change']:+.3f}"
                           for r in per)
        print(f"{name:15s} {mean['correlation']:6.3f} {mean['same_sign']:9.3f} "
              f"{mean['rmse']:7.4f} {mse:10.5f}  {detail}", flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"seed": args.seed, "preset": args.preset, "results": results}, fh,
                      indent=2)


if __name__ == "__main__":
    main()
