"""What the soil moisture forecasting task can reach, and what its variance is made of.

Run: ``python scripts/sm_forecast_ceiling.py [--seed 42] [--preset small] [--json FILE]``

On the evaluation's own ``sm_forecast`` samples (the same draw, split and head protocol as
``kgvsf evaluate``), with no encoder at all, it scores the reference forecasts and heads that
tell where the task's difficulty lies:

- persistence of the **true** soil moisture on day ``t`` (what a known initial state gives);
- each pixel's mean soil moisture over the finetuning years (its soil texture, static);
- the true mean of each test tile at ``t + k`` (what knowing the weather's effect on the
  tile's level gives), and that mean plus each pixel's static pattern;
- the evaluation's head (same MLP, steps and seeds) on the driver summaries alone, on the
  drivers plus the true state on day ``t``, and on the drivers plus the static pattern.

With ``--encoders kgvsf,sm-mr`` (read from the evaluation's pretraining cache, ``--cache``) it
also fits the evaluation's ``sm_forecast`` head on each encoder's inputs with and without the
network's forecast embedding at ``t + k`` and the driver summaries, to show which inputs carry
the skill and which make the head overfit.

On world 42 (``small``) the static pattern alone explains R^2 0.82 of the target and the
drivers alone overfit (R^2 below 0): ``sm_forecast`` scores soil mapping from imagery as much as
forecasting, which is why ``sm_forecast_from_state`` exists (``docs/evaluation.md``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from kgvsf_explore.evaluation.pretrained import eval_train_config
from kgvsf_explore.evaluation.runner import SIZES, EvalConfig, evaluation_cube, task_samples
from kgvsf_explore.tasks import TASKS, make_split, r2_rmse
from kgvsf_explore.tasks.protocol import (
    budget_mask,
    embeddings,
    fit_frozen,
    head_inputs,
    predict,
)


def _tiles(static: np.ndarray, data, tile: int) -> torch.Tensor:
    rows, cols = data.batch["row"].numpy(), data.batch["col"].numpy()
    return torch.from_numpy(np.stack([static[r:r + tile, c:c + tile]
                                      for r, c in zip(rows, cols)]).astype("float32"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=42, help="evaluation world")
    p.add_argument("--preset", default="small", choices=["tiny", "small"])
    p.add_argument("--seeds", default="0,1,2", help="head seeds")
    p.add_argument("--encoders", default="", help="e.g. kgvsf,sm-mr: heads on their inputs")
    p.add_argument("--cache", default="build/evaluate/cache", help="pretraining cache")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    t0 = time.perf_counter()
    cube = evaluation_cube(EvalConfig(preset=args.preset, seed=args.seed))
    split = make_split(cube)
    model_cfg, _ = eval_train_config(args.preset, "kgvsf")
    task = TASKS["sm_forecast"]
    n_train, n_test, proto = SIZES[args.preset]
    train, test = task_samples(task, cube, split, args.preset)
    m = test.part_pixels.numpy()
    y = test.sm_tk.numpy()
    years = split.finetune_years
    static = np.asarray(cube.ds["soil_moisture"].sel(
        day=slice(f"{years[0]}-01-01", f"{years[-1]}-12-31")).mean("day").values, "float32")
    pattern_tr = _tiles(static, train, model_cfg.tile)
    pattern_te = _tiles(static, test, model_cfg.tile)

    out: dict[str, dict[str, float]] = {}

    def show(name: str, r2: float, rmse: float, spread: float | None = None) -> None:
        out[name] = {"r2": r2, "rmse": rmse} | ({"r2_sd": spread} if spread is not None else {})
        sd = f" ± {spread:.3f}" if spread is not None else ""
        print(f"{name:52s} R^2 {r2:7.3f}{sd:8s} RMSE {rmse:.4f}", flush=True)

    def maps(feats: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        h, w = train.sm_t.shape[-2:]
        return torch.cat([feats[:, :, None, None].expand(-1, -1, h, w),
                          *[e[:, None] for e in extra]], 1)

    def head(name: str, x_train: torch.Tensor, x_test: torch.Tensor) -> None:
        scores = []
        for s in (int(v) for v in args.seeds.split(",")):
            h = fit_frozen(task, x_train, task.target(train),
                           budget_mask(train.part_pixels, 1.0, s), s, proto)
            scores.append(task.metrics(predict(h, x_test), test, test.part_pixels))
        r2 = np.array([sc["r2"] for sc in scores])
        show(name, float(r2.mean()), float(np.mean([sc["rmse"] for sc in scores])),
             float(r2.std(ddof=1)) if len(r2) > 1 else 0.0)

    print(f"world {args.seed} ({args.preset}); {split.describe()}; "
          f"{n_train} finetuning and {n_test} test tiles of sm_forecast")
    show("persistence of the true state on day t", *r2_rmse(y[m], test.sm_t.numpy()[m]))
    pat = pattern_te.numpy()
    show("static pattern (pixel mean of the finetuning years)", *r2_rmse(y[m], pat[m]))
    level = np.array([y[i][m[i]].mean() if m[i].any() else np.nan for i in range(len(y))])
    lv = np.broadcast_to(level[:, None, None], y.shape)
    show("true tile mean at t + k", *r2_rmse(y[m], lv[m]))
    pat_mean = np.array([pat[i][m[i]].mean() if m[i].any() else np.nan for i in range(len(y))])
    both = pat - pat_mean[:, None, None] + lv
    show("true tile mean at t + k + static pattern", *r2_rmse(y[m], both[m]))
    f_tr, f_te = train.features(True), test.features(True)
    head("head: driver summaries", maps(f_tr), maps(f_te))
    head("head: driver summaries + true state on day t", maps(f_tr, train.sm_t),
         maps(f_te, test.sm_t))
    head("head: driver summaries + static pattern", maps(f_tr, pattern_tr),
         maps(f_te, pattern_te))
    for enc in filter(None, args.encoders.split(",")):
        from kgvsf_explore.evaluation.pretrained import load_or_pretrain

        model = load_or_pretrain(args.cache, args.preset, enc)
        parts = [(d, embeddings(model, d.batch), embeddings(model, d.batch, forecast=True))
                 for d in (train, test)]
        for forecast in (True, False):
            for drivers in (True, False):
                x = []
                for d, e, f in parts:
                    feats = d.features(True)
                    full = head_inputs(e, d.batch["context_mask"], None, feats,
                                       f if forecast else None)
                    x.append(full if drivers else full[:, :-feats.shape[1]])
                label = (f"head: {enc} embeddings" + (" + forecast emb." if forecast else "")
                         + (" + drivers" if drivers else ""))
                head(label, *x)
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"seed": args.seed, "preset": args.preset, "results": out}, fh, indent=2)


if __name__ == "__main__":
    main()
