"""From files to an adapted model, on a world none of the weights has seen: does it pay?

Run: ``python scripts/adapt_check.py [--seed 2027] [--sensor sentinel2|landsat] [--steps 200]
[--start 2021-03-01] [--weights DIR] [--json FILE]``

1. simulates a ``small`` sample world with ``--seed`` (the shipped weights were trained on
   other seeds);
2. writes its images from ``--start`` on as a user's files (Sentinel-2 L2A or Landsat C2 L2
   GeoTIFFs with real names, integer scaling, no-data, SCL / QA_PIXEL clouds) and its weather as
   a station CSV in its own units with gaps (:func:`kgvsf_explore.ingest.fakes.write_user_files`);
3. ingests them (``kgvsf ingest``), then finetunes the shipped weights on the cube
   (``kgvsf finetune``: validation on the cube's last calendar year, early stopping);
4. prints the forecast MSE of the shipped and the adapted weights against persistence on the
   held-out year's dates (:func:`kgvsf_explore.ingest.finetune.held_out_check`), scored on
   the observed, cloud-free pixels of each target, as a user's data allows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import kgvsf_explore as kx
from kgvsf_explore.ingest import ingest
from kgvsf_explore.ingest.fakes import write_user_files
from kgvsf_explore.ingest.finetune import finetune
from kgvsf_explore.world.sample import make_world


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=2027, help="world seed (not a training seed)")
    p.add_argument("--sensor", default="sentinel2", choices=["sentinel2", "landsat"])
    p.add_argument("--steps", type=int, default=200, help="finetuning steps")
    p.add_argument("--start", default="2021-03-01", help="first image date written")
    p.add_argument("--cases", type=int, default=96, help="held-out forecast cases")
    p.add_argument("--work", help="folder for the files, cube and weights (default: temp)")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--weights", help="weights to start from (default: the shipped ones)")
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="kgvsf_adapt_"))
    t0 = time.perf_counter()
    ds, fields = make_world(seed=args.seed, size="small")
    world = kx.open_cube(ds)
    files = write_user_files(world, work / "files", sensor=args.sensor, start=args.start)
    cube_path = ingest(work / "cube.zarr", files["images"], files["weather"], overwrite=True)
    print(f"world seed {args.seed} -> {args.sensor} files -> {cube_path} "
          f"({time.perf_counter() - t0:.0f} s)")
    from kgvsf_explore.ingest.finetune import held_out_check
    from kgvsf_explore.weights import default_weights

    start = Path(args.weights) if args.weights else default_weights()
    finetune(cube_path, work / "adapted", weights=start, steps=args.steps, check_cases=0,
             seed=0)
    check = held_out_check(kx.open_cube(cube_path), start, work / "adapted",
                           n_cases=args.cases, seed=1)
    for name in ("start", "adapted"):
        r = check[name]
        print(f"{name:>8}: forecast MSE {r['model_mse']:.5f}, persistence "
              f"{r['persistence_mse']:.5f}, skill {r['skill_vs_persistence']:+.3f} "
              f"({r['cases']} cases, {r['period'][0]}..{r['period'][1]})")
        for h, row in r["by_horizon"].items():
            print(f"          {h:>9} days: skill {row['skill_vs_persistence']:+.3f} "
                  f"({row['cases']} cases)")
    print(f"adapted beats persistence: {check['beats_persistence']} "
          f"({time.perf_counter() - t0:.0f} s in all)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **check}, indent=2) + "\n")


if __name__ == "__main__":
    main()
