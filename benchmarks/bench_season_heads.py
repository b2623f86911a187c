"""Season heads against the random forests: crop macro F1 and soil moisture R^2.

Runs the scorecard's label tasks (crop type, soil moisture) of the shipped weights on sample
worlds: the one-date head (``kgvsf``), the season head (``kgvsf-season-head``: frozen
embeddings at every image date of the year + a head fitted on the same labels) and the random
forest, on the same field-year split and test pixels. The season embeddings are cached in
``build/peers-cache`` (a second run only refits the heads).

With ``--leads``, only the soil moisture forecast heads (``lead_days``) on the same split: R^2
of soil moisture ``lead`` days after each test-year image date on the test fields, the heads
reading the weather up to the target day (``--no-weather``: embeddings only).

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_season_heads.py --seeds 5151 7373
    nice -n 10 .venv/bin/python benchmarks/bench_season_heads.py --seeds 7373 --leads 0 10 30
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _r2(t, p) -> float:
    import numpy as np

    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    return float(1 - ((t - p) ** 2).sum() / ((t - t.mean()) ** 2).sum())


def sm_forecasts(seed: int, leads: list[int], weights: str | None = None,
                 weather: bool = True) -> dict:
    """R^2 of the soil moisture heads ``lead`` days after each test-year image date (reading
    the weather up to the target day unless ``weather`` is False)."""
    import numpy as np
    import xarray as xr

    from kgvsf_explore.cube.cube import Cube
    from kgvsf_explore.evaluation.scorecard.season import SeasonInputs
    from kgvsf_explore.heads import SoilMoistureHead
    from kgvsf_explore.tasks import make_split
    from kgvsf_explore.weights import load_model
    from kgvsf_explore.world import make_world

    cube = Cube(make_world(seed=seed, size="small")[0].load())
    model, sha = load_model(weights)
    split = make_split(cube)
    season = SeasonInputs(model, sha, cube, cache="build/peers-cache")
    a, b, sm = split.pixels("finetune"), split.pixels("test"), cube.soil_moisture
    embs = [season.year(y) for y in split.finetune_years]
    test = season.year(split.test_years[-1])
    out = {}
    for lead in leads:
        obs = []
        for e in embs:
            days = e.time.values + np.timedelta64(lead, "D")
            obs.append(xr.DataArray(np.where(a[None], sm.sel(day=days).values, np.nan),
                                    dims=("time", "y", "x"),
                                    coords={"time": days, "y": e.y.values, "x": e.x.values}))
        wx = cube if weather else None
        head = SoilMoistureHead(lead_days=lead, seed=0).fit(embs, obs, weather=wx,
                                                            progress=False)
        pred = head.predict(test, weather=wx)
        keep = pred.time.values <= sm.day.values[-1]
        truth = sm.sel(day=pred.time.values[keep]).values[:, b]
        now = sm.sel(day=test.time.values[keep]).values[:, b]
        out[lead] = {"season_head_r2": _r2(truth, pred.values[keep][:, b]),
                     "true_value_at_image_date_r2": _r2(truth, now)}
        print(f"world {seed}, lead {lead} d: season head R2 {out[lead]['season_head_r2']:.3f} "
              f"(the true soil moisture of the image date as the forecast: "
              f"{out[lead]['true_value_at_image_date_r2']:.3f})", flush=True)
    return out


def main() -> None:
    import kgvsf_explore as kx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[5151, 7373])
    ap.add_argument("--out", default="build/bench-season-heads.json")
    ap.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    ap.add_argument("--leads", type=int, nargs="*", help="soil moisture forecast leads (days): "
                                                         "run only those, on --seeds")
    ap.add_argument("--no-weather", action="store_true",
                    help="soil moisture heads without the weather up to the day (--leads)")
    args = ap.parse_args()
    results: dict = {}
    if args.leads:
        results = {seed: sm_forecasts(seed, args.leads, args.weights, not args.no_weather)
                   for seed in args.seeds}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
        return
    for seed in args.seeds:
        t0 = time.perf_counter()
        card = kx.evaluate_weights(seed=seed, tasks=("crop_type", "soil_moisture"),
                                   peers=("random_forest",), weights=args.weights)
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
