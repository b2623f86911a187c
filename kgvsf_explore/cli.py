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
    nonneg_float_arg,
    nonneg_int_arg,
    port_arg,
    positive_int_arg,
    start_arg,
)


def _make_sample(args: argparse.Namespace) -> int:
    from .world import write_world
    from .world.sample import WorldOptions

    scenario = None
    if args.scenario:
        from .scenario import Scenario

        scenario = Scenario.from_json(args.scenario)
    options = WorldOptions(climate=args.climate, sensor=args.sensor, rotation=args.rotation,
                           irrigation=args.irrigation)
    out = write_world(args.out, seed=args.seed, size=args.size, scenario=scenario,
                      overwrite=args.overwrite, progress=not args.quiet,
                      options=None if options.is_default else options)
    print(f"wrote sample world seed={args.seed} size={args.size}{options.cli_flags()}"
          f"{' scenario=' + args.scenario if args.scenario else ''} to {out}")
    return 0


def _make_corpus(args: argparse.Namespace) -> int:
    import time

    from .world.corpus import make_corpus

    def names(text: str | None) -> list[str] | None:
        return [x.strip() for x in text.split(",") if x.strip()] if text else None

    t0 = time.perf_counter()
    manifest = make_corpus(args.out, args.worlds, args.weather_variants, seed=args.seed,
                           climates=names(args.climates), sensors=names(args.sensors),
                           size=args.size, workers=args.workers, progress=not args.quiet)
    print(f"corpus of {args.worlds} world(s) x {1 + args.weather_variants} cube(s) in "
          f"{time.perf_counter() - t0:.0f} s -> {manifest}")
    return 0


def _make_ensemble(args: argparse.Namespace) -> int:
    from .weights import make_ensemble

    members = _names(args.members)
    out = make_ensemble(members, args.out, overwrite=args.overwrite)
    print(f"ensemble of {len(members)} member(s) -> {out} (forecasts averaged; calibrate and "
          "score it as any weights: kgvsf calibrate / evaluate-weights --weights)")
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
    from .ingest.cli import print_cube_details

    print_cube_details(cube.ds)
    gaps = driver_gaps(cube.ds)  # every day, not the sample validation reads
    if gaps:
        print(f"\n{len(gaps)} driver(s) of {args.cube} with gaps:")
        print("\n".join(f"  {g}" for g in gaps))
        return 1
    return 0


def _scenario_window(scenario) -> tuple[str | None, str | None]:
    """The days a scenario changes: its changes' earliest start and latest end (a series
    replacement's own days when it has no window); None where a change is open-ended."""
    import pandas as pd

    starts, ends = [], []
    for c in scenario.changes:
        days = pd.DatetimeIndex(getattr(c, "days", ()) or ())
        starts.append(c.start or (str(days.min().date()) if len(days) else None))
        ends.append(c.end or (str(days.max().date()) if len(days) else None))
    start = None if not starts or None in starts else min(starts)
    end = None if not ends or None in ends else max(ends)
    return start, end


def _whatif(args: argparse.Namespace) -> int:
    import pandas as pd

    from .cube import open_cube
    from .scenario import Scenario
    from .world.whatif import counterfactual, effect_by_crop

    cube = open_cube(args.cube)
    series = getattr(args, "series", None)
    if args.scenario is None and series is None:
        raise ValueError("give --scenario JSON and/or --series CSV (with --year to re-date it)")
    scenario = Scenario.from_json(args.scenario) if args.scenario else None
    if series is not None:
        own = Scenario.from_series(series, year=getattr(args, "year", None))
        scenario = own if scenario is None else scenario & own
    print(f"scenario: {scenario}")
    window = _scenario_window(scenario)
    start, end = args.start or window[0], args.end or window[1]
    if (start, end) != (args.start, args.end):
        print(f"window: {start or 'start'} to {end or 'end'} (the scenario's; --start/--end "
              "to change it)")
    base = cube.ds.load()
    scen = counterfactual(base, scenario)
    table = effect_by_crop(base, scen, start, end)
    print(f"true effect from the simulator, {start or 'start'} to {end or 'end'}:")
    print(table.to_string())
    weights = getattr(args, "weights", None)
    if weights is not None:
        from .evaluation import forecast_vs_truth
        from .weights import load_model

        model, sha = load_model(None if weights == "shipped" else weights)
        if start is None:  # an open-ended scenario: from the middle of the cube's images
            times = pd.DatetimeIndex(base.time.values)
            start = str(times[len(times) // 2].date())
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

    if getattr(args, "corpus", None):
        if args.cube or args.worlds:
            raise ValueError("give either --corpus DIR or --cube/--worlds, not both")
        from .training.corpus import CorpusData

        kinds = getattr(args, "corpus_kinds", None)
        return CorpusData(  # type: ignore[return-value]
            args.corpus, kinds=tuple(_names(kinds)) if kinds else None)

    if getattr(args, "corpus_kinds", None):
        raise ValueError("--corpus-kinds selects the interventions of a --corpus; give "
                         "--corpus DIR too, or drop --corpus-kinds")
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
    from dataclasses import replace

    from .models import preset
    from .training import pretrain

    p = preset(args.preset, objective=args.objective, seed=args.seed)
    if args.pixel_residual or args.pixel_context:
        p = replace(p, model=replace(p.model, pixel_residual=True,
                                     pixel_context=args.pixel_context))
    if getattr(args, "weather_windows", False):
        p = replace(p, model=replace(p.model, weather_windows=True))
    if args.ndvi_weight:
        p = replace(p, train=replace(p.train, ndvi_weight=args.ndvi_weight))
    if getattr(args, "pair_weight", 0):
        p = replace(p, train=replace(p.train, pair_weight=args.pair_weight))
    if args.steps:
        # the preset's split between the two phases is kept
        total = p.train.phase1_steps + p.train.phase2_steps
        one = round(args.steps * p.train.phase1_steps / total) if p.train.phase1_steps else 0
        p = replace(p, train=replace(p.train, phase1_steps=one, phase2_steps=args.steps - one))
    if getattr(args, "patience", None) is not None:
        p = replace(p, train=replace(p.train, patience=args.patience))
    cubes = _cubes(args)
    result = pretrain(cubes, args.out, p.model, p.train, resume=args.resume,
                      device=args.device, progress=not args.quiet,
                      in_memory=False if getattr(args, "stream", False) else None)
    parts = [str(c) for c in args.cube or []]
    if getattr(args, "corpus", None):
        parts.append(f"corpus {args.corpus} (kgvsf make-corpus), streamed")
        if getattr(args, "corpus_kinds", None):
            parts.append(f"interventions of kind(s) {args.corpus_kinds} only")
    if args.worlds:
        parts.append(f"sample worlds seeds {args.worlds} (size {args.world_size}, "
                     f"kgvsf make-sample), {args.weather_variants} random-weather variant(s) "
                     "of each")
    options = [f"preset {args.preset}", f"seed {args.seed}",
               f"{p.train.phase1_steps + p.train.phase2_steps} steps"]
    if p.model.pixel_context or p.model.pixel_residual:
        options.append("pixel context" if p.model.pixel_context else "pixel residual")
    if p.model.weather_windows:
        options.append("weather windows")
    if p.train.ndvi_weight:
        options.append(f"NDVI weight {p.train.ndvi_weight:g}")
    if p.train.pair_weight:
        options.append(f"paired-variant weight {p.train.pair_weight:g}")
    if getattr(args, "stream", False):
        options.append("cubes read from disk in blocks")
    desc: dict = {"description": "; ".join(parts) + "; " + ", ".join(options)}
    if args.worlds:
        desc["worlds"] = {"seeds": _ints(args.worlds, "--worlds"), "size": args.world_size}
    if getattr(args, "corpus", None):
        desc["split"] = cubes.split(p.train.val_year)
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
    if args.interval is not None and args.intervals:
        fc.load_intervals(args.intervals)
    elif args.interval is not None and args.weights:
        fc.load_intervals(args.weights)
    out = fc.forecast(cube, args.bbox, args.start, args.horizons, scenario, chunks=args.chunks,
                      progress=not args.quiet, interval=args.interval)

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
    from .errors import KGVSFError
    from .evaluation.model_card import write_model_card
    from .evaluation.scorecard import evaluate_weights
    from .evaluation.scorecard.report import markdown

    if (args.cube is None) == (args.seed is None):
        raise KGVSFError("give exactly one of --cube PATH or --seed N (a sample world to "
                         "simulate)")
    out = args.out or "build/evaluate-weights"
    card = evaluate_weights(args.cube, weights=args.weights, seed=args.seed,
                            size=args.world_size, tasks=_names(args.tasks),
                            peers=_names(args.peers), out=out, n_cases=args.cases,
                            gap_dates=args.gap_dates, train_on=args.train_on,
                            cache=args.cache, quick=args.quick, quiet=args.quiet,
                            intervals=args.intervals,
                            season_head=not args.no_season_head)
    if not args.quiet:
        print()
        print(markdown(card))
    if args.card:
        where = (f"--cube {args.cube}" if args.cube
                 else f"--seed {args.seed} --world-size {args.world_size}")
        weights = f" --weights {args.weights}" if args.weights else ""
        write_model_card(card, args.card,
                         command=f"kgvsf evaluate-weights {where}{weights} --out {out}")
        print(f"wrote {args.card}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from .cube import Cube, open_cube
    from .errors import KGVSFError
    from .evaluation.scorecard.training import training_worlds_of
    from .forecaster import Forecaster
    from .weights import default_weights
    from .world import make_world

    if (args.cube is None) == (args.seed is None):
        raise KGVSFError("give exactly one of --cube PATH or --seed N (a sample world to "
                         "simulate)")
    folder = Path(args.weights) if args.weights else default_weights()
    fc = Forecaster.from_pretrained(folder, device=args.device or "auto")
    where = (f"--cube {args.cube}" if args.cube
             else f"--seed {args.seed} --world-size {args.world_size}")
    weights = f" --weights {args.weights}" if args.weights else ""
    extra = "".join(f" --{name} {value}" for name, value in
                    (("start", args.start), ("end", args.end), ("truth", args.truth))
                    if value and value != "auto")
    source = {"command": f"kgvsf calibrate {where}{weights} --cases {args.cases} "
                         f"--case-seed {args.case_seed}{extra} --out {args.out}"}
    cubes: list = []
    if args.seed is not None:
        seeds = ints(args.seed, "--seed")
        trained = training_worlds_of(folder)
        bad = [s for s in seeds if trained and s in trained[0] and args.world_size == trained[1]]
        if bad:
            raise KGVSFError(f"world(s) {bad} ({args.world_size}) are ones the weights were "
                             f"trained on ({trained}); pick other seeds")
        for s in seeds:
            cubes.append(Cube(make_world(seed=s, size=args.world_size)[0].load()))
        source.update(cube=f"sample world(s) seed {','.join(map(str, seeds))} "
                           f"({args.world_size})", seed=seeds, size=args.world_size)
    else:
        cube = open_cube(args.cube)
        cubes.append(Cube(cube.ds.load(), fields=cube.fields))
        source.update(cube=str(args.cube), cube_path=str(Path(args.cube).resolve()))
    period = (args.start, args.end) if args.start or args.end else None
    cal = fc.calibrate(cubes, n_cases=args.cases, seed=args.case_seed, period=period,
                       truth=args.truth, source=source)
    path = cal.save(args.out)
    n = sum(1 for g in cal.groups if g["variable"] == "ndvi" and g["age"] != "*")
    print(f"calibrated on {source['cube']}: {cal.source['n_cases']} cases, {n} NDVI groups "
          f"-> {path}")
    return 0


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


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
    p.add_argument("--climate", default="corn-belt",
                   choices=["corn-belt", "great-plains", "mediterranean", "maritime"],
                   help="climate, place and crops (default corn-belt: the shipped sample's)")
    p.add_argument("--sensor", default="sentinel2", choices=["sentinel2", "landsat"],
                   help="satellite: sentinel2 (5-day, 7 bands) or landsat (8-day, no B05)")
    p.add_argument("--rotation", action=argparse.BooleanOptionalAction, default=None,
                   help="crop rotations (crop_type gets a year dimension); default: the "
                        "climate's (off in the corn belt)")
    p.add_argument("--irrigation", action=argparse.BooleanOptionalAction, default=None,
                   help="irrigate some fields; default: the climate's (off in the corn belt)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_make_sample)

    p = sub.add_parser("make-ensemble", help="one weights folder of several checkpoints of "
                                             "one recipe (other seeds), forecasting as "
                                             "their mean")
    p.add_argument("--members", required=True, metavar="DIR1,DIR2",
                   help="comma-separated checkpoint folders (two or more, equal config)")
    p.add_argument("--out", required=True, help="the ensemble folder (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.set_defaults(func=_make_ensemble)

    p = sub.add_parser("make-corpus", help="many sample worlds and weather interventions of "
                                           "each, with a manifest, for pretraining")
    p.add_argument("--out", required=True, help="corpus folder (resumed if it exists)")
    p.add_argument("--worlds", type=int, required=True, help="number of worlds")
    p.add_argument("--weather-variants", type=int, default=0,
                   help="per world, re-runs under randomised weather (default 0)")
    p.add_argument("--climates", help="comma-separated climates (default: all)")
    p.add_argument("--sensors", help="comma-separated sensors (default: all)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    p.add_argument("--workers", type=int, help="worker processes (default: the CPUs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_make_corpus)

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
    p.add_argument("--scenario", help="scenario JSON file")
    p.add_argument("--series", help="a station CSV (date + driver columns in cube units) whose "
                                    "days replace the cube's drivers (Scenario.from_series)")
    p.add_argument("--year", type=int,
                   help="re-date --series onto this year by month and day (its first year)")
    p.add_argument("--start", type=start_arg, help="first date of the summary window (default: "
                                                   "the scenario's first changed day)")
    p.add_argument("--end", type=start_arg, help="last date of the summary window (default: the "
                                                 "scenario's last changed day)")
    p.add_argument("--out", help="folder for the CSV table and PNG figure")
    p.add_argument("--weights", help="also forecast with these weights ('shipped' for ours)")
    p.set_defaults(func=_whatif)

    p = sub.add_parser("pretrain", help="pretrain KG-VSF or a baseline objective")
    p.add_argument("--objective", default="kgvsf",
                   choices=["kgvsf", "sm-mr", "mm-mr", "sm-vsf", "mm-vsf", "next-token"])
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"])
    p.add_argument("--cube", action="append", help="training cube (repeatable)")
    p.add_argument("--worlds", help="seeds of sample worlds to simulate and train on: 1,2,3")
    p.add_argument("--corpus", help="a 'kgvsf make-corpus' folder: stream its cubes (a few "
                                    "open at a time), held-out worlds and year for validation")
    p.add_argument("--corpus-kinds", metavar="K1,K2",
                   help="with --corpus: train only on interventions of these kinds (shift, "
                        "scale, swap, spells, other-world); observed cubes are always kept")
    p.add_argument("--world-size", default="small", choices=["tiny", "small", "medium"])
    p.add_argument("--weather-variants", type=int, default=0,
                   help="per world, also train on N re-runs under random weather what-ifs")
    p.add_argument("--out", required=True, help="checkpoint folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--pixel-residual", action="store_true",
                   help="experimental: forecast a per-pixel, weather-modulated correction of "
                        "each pixel's last clear observation")
    p.add_argument("--pixel-context", action="store_true",
                   help="experimental (implies --pixel-residual): the correction also reads "
                        "each pixel's whole context series and the target's season")
    p.add_argument("--weather-windows", action="store_true",
                   help="experimental: the weather summary also reads each driver's mean over "
                        "the forecast window (t, t+k], the sums a tree peer reads")
    p.add_argument("--ndvi-weight", type=nonneg_float_arg, default=0.0, metavar="W",
                   help="add W x the forecast's NDVI error (in units of 0.25 NDVI) to the "
                        "forecast loss (our extension; default 0: the paper's loss)")
    p.add_argument("--pair-weight", type=nonneg_float_arg, default=0.0, metavar="W",
                   help="add W x the paired-variant loss (our extension; needs "
                        "--weather-variants, or a --corpus made with it): paired batches (a "
                        "third of them with one variant per world, half with --corpus) read "
                        "one tile, date and horizon from a world and "
                        "from its weather variant, and the error of the forecast change "
                        "between them is penalised (default 0: off)")
    p.add_argument("--steps", type=positive_int_arg, metavar="N",
                   help="train N steps in all instead of the preset's (its split between the "
                        "two phases is kept), e.g. for a learning curve")
    p.add_argument("--stream", action="store_true",
                   help="read the --cube stores from disk in blocks while training (bounded "
                        "memory) instead of loading them (default: load when they hold 2 GiB "
                        "or less)")
    p.add_argument("--patience", type=nonneg_int_arg, metavar="N",
                   help="validations without a better loss before a phase stops early "
                        "(default: the preset's, 5 for small; 0: never stop early)")
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
    p.add_argument("--interval", type=float,
                   help="add the central forecast interval of this level, e.g. 0.8: "
                        "reflectance_q10/q90 and ndvi_q10/q90 (needs a calibration: "
                        "kgvsf calibrate)")
    p.add_argument("--intervals", help="calibration file or folder for --interval (default: "
                                       "intervals.json beside the weights)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_forecast)

    p = sub.add_parser("calibrate", help="calibrate forecast intervals of weights on a world "
                                         "they were not trained on (writes intervals.json)")
    p.add_argument("--cube", help="calibration cube")
    p.add_argument("--seed", help="instead of --cube: simulate the sample world(s) of these "
                                  "seeds, e.g. 6262,6263,6264 (never ones the weights were "
                                  "trained on)")
    p.add_argument("--world-size", default="small", choices=["tiny", "small", "medium"],
                   help="size of the --seed worlds")
    p.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    p.add_argument("--cases", type=int, default=600, help="forecast cases (tiles) drawn from "
                                                          "each world")
    p.add_argument("--case-seed", type=int, default=0, help="seed of the case draw")
    p.add_argument("--start", help="first origin date (default: the cube's first)")
    p.add_argument("--end", help="last origin date (default: the cube's last)")
    p.add_argument("--truth", default="auto", choices=["auto", "observed"],
                   help="outcome: auto (the simulator's truth where present, else clear "
                        "observations) or observed")
    p.add_argument("--device", help="cpu, cuda (default: cuda when available)")
    p.add_argument("--out", required=True,
                   help="folder (gets intervals.json) or .json file; written atomically")
    p.set_defaults(func=_calibrate)

    from .heads.cli import add_crop_map_parser, add_fill_parser

    add_crop_map_parser(sub)
    add_fill_parser(sub)

    p = sub.add_parser("evaluate-weights",
                       help="score weights on a cube beside the peers (persistence, "
                            "climatology, linear interpolation, trees, random forests)")
    p.add_argument("--cube", help="cube to score on (its last year, or last 30 %% of a "
                                  "one-year cube, is the test period)")
    p.add_argument("--seed", type=int, help="instead of --cube: simulate the sample world of "
                                            "this seed (never one the weights were trained on)")
    p.add_argument("--world-size", default="small", choices=["tiny", "small", "medium"],
                   help="size of the --seed world")
    p.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    p.add_argument("--tasks", default="forecast,gapfill,crop_type,soil_moisture,whatif",
                   help="comma-separated tasks")
    p.add_argument("--peers", default="persistence,climatology,linear_interpolation,trees,"
                                      "random_forest", help="comma-separated peers")
    p.add_argument("--out", help="output folder (default build/evaluate-weights)")
    p.add_argument("--cases", type=int, default=200, help="forecast cases (tiles)")
    p.add_argument("--gap-dates", type=int, default=12, help="held-out dates of gap filling")
    p.add_argument("--train-on", default="auto", choices=["auto", "weights", "cube"],
                   help="where the trees learn: the weights' training worlds or the cube "
                        "before its test period (auto: the worlds for a sample world)")
    p.add_argument("--cache", default="build/peers-cache", help="cache of the trees' rows")
    p.add_argument("--intervals", help="calibration of the forecast intervals to score "
                                       "(default: intervals.json beside the weights)")
    p.add_argument("--card", help="also write the weights' model card (Markdown) here")
    p.add_argument("--quick", action="store_true", help="small settings (tests, CI)")
    p.add_argument("--no-season-head", action="store_true",
                   help="skip the season heads (kgvsf-season-head rows; they embed every "
                        "image date of the cube, minutes on CPU)")
    p.add_argument("--quiet", action="store_true")
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
    p.add_argument("--peers", default="persistence,climatology,linear_interpolation,trees,"
                                      "random_forest",
                   help="peers scored as rows beside the encoders ('' for none)")
    p.add_argument("--peers-only", action="store_true",
                   help="score only the peers (no pretraining): rows to set beside a table")
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
    if args.peers_only:
        parts.append("--peers-only")
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
        peers=names(args.peers), peers_only=args.peers_only,
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
