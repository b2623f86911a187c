"""The ``kgvsf`` command line: one sub-command per job, each a thin call into the library."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path

from ._cli_args import (
    bbox_arg,
    chunks_arg,
    horizons_arg,
    ints,
    join_negative_values,
    port_arg,
    start_arg,
)


def _make_sample(args: argparse.Namespace) -> int:
    from .world import write_world

    scenario = None
    if args.scenario:
        from .scenario import Scenario

        scenario = Scenario.from_json(args.scenario)
    out = write_world(args.out, seed=args.seed, size=args.size, scenario=scenario,
                      overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote sample world seed={args.seed} size={args.size}"
          f"{' scenario=' + args.scenario if args.scenario else ''} to {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .cube import open_cube

    if getattr(args, "check", False):
        from .cube.reading import check_chunks

        cube = open_cube(args.cube, validate=False)
        problems = check_chunks(cube.ds)
        if problems:
            print(f"{len(problems)} unreadable chunk(s) in {args.cube}:")
            print("\n".join(f"  {p}" for p in problems))
            return 1
        print(f"every chunk of {args.cube} reads")
    cube = open_cube(args.cube)
    print(repr(cube))
    from .cube.validate import driver_gaps

    gaps = driver_gaps(cube.ds)  # every day, not the sample validation reads
    if gaps:
        print(f"\n{len(gaps)} driver(s) of {args.cube} with gaps:")
        print("\n".join(f"  {g}" for g in gaps))
        return 1
    return 0


def _whatif(args: argparse.Namespace) -> int:
    from .cube import open_cube
    from .scenario import Scenario
    from .world.whatif import counterfactual, effect_by_crop

    cube = open_cube(args.cube)
    scenario = Scenario.from_json(args.scenario)
    print(f"scenario: {scenario}")
    base = cube.ds.load()
    scen = counterfactual(base, scenario)
    table = effect_by_crop(base, scen, args.start, args.end)
    print(f"true effect from the simulator, {args.start or 'start'} to {args.end or 'end'}:")
    print(table.to_string())
    weights = getattr(args, "weights", None)
    if weights is not None:
        from .evaluation import forecast_vs_truth
        from .weights import load_model

        model, sha = load_model(None if weights == "shipped" else weights)
        start = args.start or str(base.time.values[0])[:10]
        print(f"\nKG-VSF forecast from {start} (weights {sha[:12]}) vs the simulator, "
              "mean NDVI change per crop:")
        vs = forecast_vs_truth(model, base, scen, scenario, start)
        print(vs.to_string())
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            vs.to_csv(Path(args.out) / "forecast_vs_truth.csv")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "true_effect_by_crop.csv")
        _plot_whatif(base, scen, scenario, out / "true_effect.png")
        print(f"wrote {out / 'true_effect_by_crop.csv'} and {out / 'true_effect.png'}")
    return 0


def _plot_whatif(base, scen, scenario, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .world.whatif import ndvi_series_by_crop

    nb, ns = ndvi_series_by_crop(base), ndvi_series_by_crop(scen)
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for i, crop in enumerate(nb.crop_type.values):
        colour = f"C{i}"
        nb.sel(crop_type=crop).plot(ax=axes[0], color=colour, label=f"{crop}")
        ns.sel(crop_type=crop).plot(ax=axes[0], color=colour, ls="--")
    label = scenario.name or "scenario"
    axes[0].set_title(f"true NDVI per crop: observed weather (solid) vs {label} (dashed)")
    axes[0].legend(ncol=5, fontsize=8)
    (scen["soil_moisture"].mean(("y", "x")) - base["soil_moisture"].mean(("y", "x"))).plot(
        ax=axes[1])
    axes[1].set_title("scenario minus observed: mean root-zone soil moisture (m3/m3)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _demo(args: argparse.Namespace) -> int:
    from .data import data_dir, sample_path

    cube = args.cube or str(sample_path())
    scenario = args.scenario or str(data_dir() / "scenarios" / "drought_july_heat.json")
    print(f"== the shipped sample cube: {cube}")
    _info(argparse.Namespace(cube=cube))
    print("\n== what if: the simulator's true answer")
    from .weights import default_weights

    weights = "shipped" if (default_weights() / "model.safetensors").is_file() else None
    return _whatif(argparse.Namespace(cube=cube, scenario=scenario, start=args.start,
                                      end=args.end, out=args.out, weights=weights))


def _serve(args: argparse.Namespace) -> int:
    from .app.serve import serve

    host = "localhost" if args.address in (None, "127.0.0.1", "localhost") else args.address
    print(f"KG-VSF explorer on http://{host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    serve(cube=args.cube, weights=args.weights, port=args.port, show=not args.no_show,
          address=args.address)
    return 0


def _cubes(args: argparse.Namespace) -> list:
    import numpy as np

    from .cube import Cube, open_cube
    from .world import SIZES, make_world
    from .world.variants import random_weather_scenario

    cubes = [open_cube(c) for c in args.cube or []]
    for seed in ints(args.worlds, "--worlds"):
        cubes.append(Cube(make_world(seed=seed, size=args.world_size)[0]))
        rng = np.random.default_rng([seed, 7919])
        for _ in range(args.weather_variants):
            scen = random_weather_scenario(rng, SIZES[args.world_size][1])
            cubes.append(Cube(make_world(seed=seed, size=args.world_size, scenario=scen)[0]))
    if not cubes:
        raise ValueError("give training data: --cube PATH (repeatable) and/or --worlds 1,2,3")
    return cubes


def _ints(text: str | None, option: str = "a list") -> list[int]:
    return ints(text, option)


def _pretrain(args: argparse.Namespace) -> int:
    import json

    from .models import preset
    from .training import pretrain

    p = preset(args.preset, objective=args.objective, seed=args.seed)
    cubes = _cubes(args)
    result = pretrain(cubes, args.out, p.model, p.train, resume=args.resume,
                      device=args.device, progress=not args.quiet)
    parts = [str(c) for c in args.cube or []]
    if args.worlds:
        parts.append(f"sample worlds seeds {args.worlds} (size {args.world_size}, "
                     f"kgvsf make-sample), {args.weather_variants} random-weather variant(s) "
                     "of each")
    desc = {"description": "; ".join(parts) + f"; preset {args.preset}, seed {args.seed}"}
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 writes
        (Path(args.out) / "training_data.json").write_text(json.dumps(desc, indent=2) + "\n")
    print(f"{args.objective}: best validation loss {result.best_val:.4f} after {result.steps} "
          f"steps in {result.seconds:.0f} s -> {result.out_dir}")
    return 0


def _forecast(args: argparse.Namespace) -> int:
    import dask
    from dask.diagnostics import ProgressBar

    from ._atomic import check_output, write_output_dir
    from .cube import open_cube
    from .forecaster import Forecaster
    from .scenario import Scenario

    # the output path is checked before any work: an existing folder kgvsf did not write is
    # never replaced without --overwrite, an input or the working folder never
    target = check_output(args.out, overwrite=args.overwrite,
                          inputs=[args.cube, args.weights, *(args.scenario or [])])
    cube = open_cube(args.cube)
    fc = Forecaster.from_pretrained(args.weights, device=args.device or "auto")
    scenario: object = None
    if args.scenario:
        loaded = [Scenario.from_json(path) for path in args.scenario]
        # one file: that scenario; several: the observed weather and each of them
        scenario = loaded[0] if len(loaded) == 1 else [None, *loaded]
    out = fc.forecast(cube, args.bbox, args.start, args.horizons, scenario, chunks=args.chunks,
                      progress=not args.quiet)

    def write(tmp: Path) -> None:
        lazy = dask.is_dask_collection(out)
        with ProgressBar(minimum=1) if lazy and not args.quiet else contextlib.nullcontext():
            out.to_zarr(tmp, mode="w", consolidated=False)

    # written beside the target, marked, swapped in: an interrupted run leaves no half store
    # and the previous store survives until the new one is in place
    write_output_dir(target, write, kind="forecast")
    t = out.attrs["t"]
    snapped = "" if t == args.start else f" (the last image on or before --start {args.start})"
    horizons = ",".join(str(h) for h in args.horizons)
    print(f"forecast from {t}{snapped} for horizons {horizons} days -> {target}")
    return 0


def _evaluate_weights(args: argparse.Namespace) -> int:
    from .evaluation.model_card import evaluate_weights

    evaluate_weights(args.weights, compare=args.compare, seeds=_ints(args.seeds, "--seeds"),
                     size=args.world_size, n_cases=args.cases, card=args.card)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kgvsf``."""
    parser = argparse.ArgumentParser(
        prog="kgvsf", description="KG-VSF explorer: sample worlds, datacubes and what-if runs.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-sample", help="simulate a sample world and write it as a cube")
    p.add_argument("--seed", type=int, required=True, help="seed of every random stream")
    p.add_argument("--out", required=True, help="output folder (cube.zarr + fields.parquet)")
    p.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    p.add_argument("--scenario", help="scenario JSON: re-run the same world under it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_make_sample)

    p = sub.add_parser("info", help="validate a cube and print its summary")
    p.add_argument("cube", help="cube folder, .zarr store or NetCDF file")
    p.add_argument("--check", action="store_true",
                   help="first read every chunk and list the unreadable ones (exit 1 if any)")
    p.set_defaults(func=_info)

    from .ingest.cli import add_finetune_parser, add_ingest_parser

    add_ingest_parser(sub)
    add_finetune_parser(sub)

    p = sub.add_parser("whatif", help="the simulator's true effect of a scenario on a sample cube")
    p.add_argument("--cube", required=True)
    p.add_argument("--scenario", required=True, help="scenario JSON file")
    p.add_argument("--start", type=start_arg, help="first date of the summary window")
    p.add_argument("--end", type=start_arg, help="last date of the summary window")
    p.add_argument("--out", help="folder for the CSV table and PNG figure")
    p.add_argument("--weights", help="also forecast with these weights ('shipped' for ours)")
    p.set_defaults(func=_whatif)

    p = sub.add_parser("pretrain", help="pretrain KG-VSF or a baseline objective")
    p.add_argument("--objective", default="kgvsf",
                   choices=["kgvsf", "sm-mr", "mm-mr", "sm-vsf", "mm-vsf", "next-token"])
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"])
    p.add_argument("--cube", action="append", help="training cube (repeatable)")
    p.add_argument("--worlds", help="seeds of sample worlds to simulate and train on: 1,2,3")
    p.add_argument("--world-size", default="small", choices=["tiny", "small", "medium"])
    p.add_argument("--weather-variants", type=int, default=0,
                   help="per world, also train on N re-runs under random weather what-ifs")
    p.add_argument("--out", required=True, help="checkpoint folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("forecast", help="forecast a region under observed or scenario weather")
    p.add_argument("--cube", required=True)
    p.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    p.add_argument("--start", required=True, type=start_arg,
                   help="forecast date: the forecast starts from the last image on or before "
                        "it (a time zone is converted to UTC)")
    p.add_argument("--horizons", default="5,15,30", type=horizons_arg,
                   help="days ahead of that image, each once, e.g. 5,15,30")
    p.add_argument("--bbox", type=bbox_arg,
                   help="XMIN,YMIN,XMAX,YMAX in the cube's CRS (negative numbers work: "
                        "--bbox -93.6,41.2,-93.5,41.3)")
    p.add_argument("--scenario", action="append",
                   help="scenario JSON file; repeat it to forecast the observed weather and "
                        "each scenario along a 'scenario' dimension")
    p.add_argument("--chunks", type=chunks_arg,
                   help="block edge in pixels (or 'auto') to compute the region "
                                    "block by block through dask; default: in memory unless "
                                    "the region is over a million pixels")
    p.add_argument("--device", help="cpu, cuda (default: cuda when available)")
    p.add_argument("--out", required=True,
                   help="output .zarr; an existing store kgvsf wrote is replaced, any other "
                        "existing folder only with --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out folder that kgvsf did not write")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_forecast)

    p = sub.add_parser("evaluate-weights",
                       help="skill vs persistence/climatology and drought check on unseen worlds")
    p.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    p.add_argument("--compare", help="another checkpoint (e.g. sm-vsf) for the same table")
    p.add_argument("--seeds", default="7", help="world seeds never used in training")
    p.add_argument("--world-size", default="small", choices=["tiny", "small", "medium"])
    p.add_argument("--cases", type=int, default=160, help="test cases per world")
    p.add_argument("--card", help="write the model card (Markdown) here")
    p.set_defaults(func=_evaluate_weights)

    p = sub.add_parser("evaluate", help="the downstream-task table: every pretraining objective "
                                        "on six tasks, and the counterfactual check")
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"])
    where = p.add_mutually_exclusive_group()
    where.add_argument("--seed", type=int, help="evaluation sample world (default 42)")
    where.add_argument("--cube", help="evaluation cube (a simulated world with *_true bands)")
    p.add_argument("--seeds", default="0,1,2", help="finetuning seeds (mean and spread)")
    p.add_argument("--objectives", help="encoders, e.g. kgvsf,sm-mr,random (default: all)")
    p.add_argument("--tasks", help="crop_type,sm_estimation,sm_forecast,"
                                   "sm_forecast_from_state,missing_image,future_image "
                                   "(default: all)")
    p.add_argument("--budgets", help="shares of the labels for the frozen protocol "
                                     "(default: tiny 1.0; small 0.01,0.1,1.0)")
    p.add_argument("--finetune-budgets", default="1.0",
                   help="shares of the labels for the finetune protocol")
    p.add_argument("--protocols", default="frozen,finetune")
    p.add_argument("--out", help="output folder (default build/evaluate/PRESET)")
    p.add_argument("--cache", default="build/evaluate/cache", help="pretraining cache")
    p.add_argument("--pretrain-seeds", "--pretrain-seed", dest="pretrain_seeds",
                   help="seeds of the pretraining runs (default: tiny 0; small 0,1): the first "
                        "runs the whole grid, the others the main protocol, the native rows "
                        "and the check")
    p.add_argument("--what-if", action="store_true",
                   help="also run the counterfactual check (held-out fields, three scenarios)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("serve", help="the dashboard in the browser (panel serve)")
    p.add_argument("--cube", help="cube to explore (default: the shipped sample)")
    p.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    p.add_argument("--port", type=port_arg, default=5006, help="TCP port (default 5006)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; "
                        "0.0.0.0 listens on every interface, with a warning)")
    p.add_argument("--no-show", action="store_true", help="do not open a browser tab")
    p.set_defaults(func=_serve)

    p = sub.add_parser("demo", help="the main job on the shipped sample: summary + what-if")
    p.add_argument("--cube", help="cube to use instead of the shipped sample")
    p.add_argument("--scenario", help="scenario JSON instead of the shipped drought example")
    p.add_argument("--start", default="2022-06-15", type=start_arg)
    p.add_argument("--end", default="2022-09-30", type=start_arg)
    p.add_argument("--out", default="build/demo", help="folder for the table and figure")
    p.set_defaults(func=_demo)
    return parser


def _evaluate_command(args: argparse.Namespace) -> str:
    """The ``kgvsf evaluate`` command line that reproduces ``args`` (for the table's header)."""
    parts = ["kgvsf evaluate", f"--preset {args.preset}"]
    for flag, value, default in (
        ("--seed", args.seed, None), ("--cube", args.cube, None), ("--seeds", args.seeds, "0,1,2"),
        ("--objectives", args.objectives, None), ("--tasks", args.tasks, None),
        ("--budgets", args.budgets, None), ("--finetune-budgets", args.finetune_budgets, "1.0"),
        ("--protocols", args.protocols, "frozen,finetune"), ("--out", args.out, None),
        ("--pretrain-seeds", args.pretrain_seeds, None),
    ):
        if value is not None and value != default:
            parts.append(f"{flag} {value}")
    if args.what_if:
        parts.append("--what-if")
    return " ".join(parts)


def _evaluate(args: argparse.Namespace) -> int:
    import time

    from .evaluation.runner import EvalConfig, run_evaluation

    def names(text: str | None) -> tuple[str, ...]:
        return tuple(x.strip() for x in text.split(",") if x.strip()) if text else ()

    cfg = EvalConfig(
        preset=args.preset, seed=args.seed, cube=args.cube,
        seeds=tuple(_ints(args.seeds, "--seeds")),
        encoders=names(args.objectives), budgets=tuple(float(b) for b in names(args.budgets)),
        finetune_budgets=tuple(float(b) for b in names(args.finetune_budgets)),
        protocols=names(args.protocols), out=args.out or f"build/evaluate/{args.preset}",
        cache=args.cache, what_if=args.what_if,
        pretrain_seeds=tuple(_ints(args.pretrain_seeds, "--pretrain-seeds")),
        extra={"command": _evaluate_command(args)},
    )
    if args.tasks:
        cfg.tasks = names(args.tasks)
        cfg.__post_init__()
    t0 = time.perf_counter()
    out = run_evaluation(cfg)
    print(f"table written to {out}/results.md ({time.perf_counter() - t0:.0f} s)")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings of a command as one line on stderr (no source line of kgvsf_explore)."""
    print(f"kgvsf: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kgvsf`` console script.

    Bad arguments are usage errors (exit status 2, naming the option); bad input files, a full
    disk and the like print ``kgvsf <command>: error: ...`` (exit status 2).
    """
    from .errors import KGVSFError

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(join_negative_values(argv))
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except (OSError, ValueError, KGVSFError) as err:  # disk full, missing files, bad input
        print(f"kgvsf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
