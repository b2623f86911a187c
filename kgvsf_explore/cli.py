"""The ``kgvsf`` command line: one sub-command per job, each a thin call into the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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

    print(repr(open_cube(args.cube)))
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
    return _whatif(argparse.Namespace(cube=cube, scenario=scenario, start=args.start,
                                      end=args.end, out=args.out))


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
    p.set_defaults(func=_info)

    p = sub.add_parser("whatif", help="the simulator's true effect of a scenario on a sample cube")
    p.add_argument("--cube", required=True)
    p.add_argument("--scenario", required=True, help="scenario JSON file")
    p.add_argument("--start", help="first date of the summary window")
    p.add_argument("--end", help="last date of the summary window")
    p.add_argument("--out", help="folder for the CSV table and PNG figure")
    p.set_defaults(func=_whatif)

    p = sub.add_parser("demo", help="the main job on the shipped sample: summary + what-if")
    p.add_argument("--cube", help="cube to use instead of the shipped sample")
    p.add_argument("--scenario", help="scenario JSON instead of the shipped drought example")
    p.add_argument("--start", default="2022-06-15")
    p.add_argument("--end", default="2022-09-30")
    p.add_argument("--out", default="build/demo", help="folder for the table and figure")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kgvsf`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"kgvsf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
