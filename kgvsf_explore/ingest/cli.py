"""``kgvsf ingest``: the command-line face of :func:`kgvsf_explore.ingest.ingest`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

__all__ = ["add_ingest_parser", "run_ingest", "add_finetune_parser", "run_finetune",
           "parse_mapping", "print_cube_details"]


def parse_mapping(text: str | None) -> dict[str, str | int]:
    """``'tmax=K,prcp=m'`` -> ``{'tmax': 'K', 'prcp': 'm'}`` (digits become ints)."""
    out: dict[str, str | int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"expected name=value pairs separated by commas, got {part!r}")
        k, v = (s.strip() for s in part.split("=", 1))
        out[k] = int(v) if v.isdigit() else v
    return out


def _floats(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    vals = tuple(float(v) for v in text.split(","))
    if len(vals) != 4:
        raise ValueError(f"--bbox takes xmin,ymin,xmax,ymax, got {text!r}")
    return vals


def add_ingest_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``ingest`` sub-command to the ``kgvsf`` parser."""
    p = sub.add_parser("ingest", help="build a cube from your own images, weather and fields")
    p.add_argument("--images", required=True,
                   help="folder of GeoTIFF/JP2 files, one date each (Sentinel-2 or Landsat "
                        "names), or a local STAC ItemCollection .json")
    p.add_argument("--weather", required=True,
                   help="station CSV (one series) or gridded NetCDF/zarr (Daymet, ERA5-Land)")
    p.add_argument("--out", required=True,
                   help="X.zarr (one store) or a folder (cube.zarr + fields.parquet)")
    p.add_argument("--fields", help="field polygons: GeoParquet, GeoPackage, Shapefile, GeoJSON")
    p.add_argument("--bbox", help="xmin,ymin,xmax,ymax in the cube's CRS (or --bbox-crs)")
    p.add_argument("--bbox-crs", help="CRS of --bbox, e.g. EPSG:4326 for lon/lat")
    p.add_argument("--crs", help="target CRS, e.g. EPSG:32615 (needed when images differ)")
    p.add_argument("--resolution", type=float, help="target pixel size in metres")
    p.add_argument("--sensor", choices=["sentinel2", "landsat_oli", "landsat_tm"],
                   help="when the file names do not say")
    p.add_argument("--band-order", help="band names of multi-band files, e.g. B02,B03,B04")
    p.add_argument("--scale", help="reflectance = DN x scale + offset instead of the product "
                                   "rules: one number (1e-4) or per band (B04=1e-4,B08=1e-4)")
    p.add_argument("--offset", help="offset of --scale (default 0): one number or per band")
    p.add_argument("--mask-kind", choices=["fmask", "qa_pixel", "pixel_qa", "scl", "cloud_prob"],
                   help="how to read the quality layers (default: from the file names)")
    p.add_argument("--units", help="weather units the file does not state, e.g. tmax=K,prcp=m")
    p.add_argument("--max-gap", type=int, default=3, help="longest weather gap filled (days)")
    p.add_argument("--krs", type=float, default=0.16,
                   help="Hargreaves coefficient of a srad estimated from tmax - tmin: 0.16 "
                        "interior (default), 0.19 coastal (FAO-56 eq. 50)")
    p.add_argument("--srad-mean", choices=["daylight", "24h"],
                   help="time base of a daily srad in W/m2 (default: detected)")
    p.add_argument("--missing-bands", choices=["nan", "interpolate"], default="nan",
                   help="bands the files lack stay missing, masked in the model (default), or "
                        "a missing red edge B05 is interpolated from B04 and B08")
    p.add_argument("--class-column", help="column of the fields with the crop class")
    p.add_argument("--class-map", help="class name -> cube class, e.g. maize=corn,beans=soybean")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (default: one when stderr is a terminal)")
    p.set_defaults(func=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
    """Run ``kgvsf ingest``; print what was built and what was derived or filled."""
    from .build import ingest
    from .scaling import parse_per_band

    path = ingest(
        args.out, args.images, args.weather, overwrite=args.overwrite, fields=args.fields,
        crs=args.crs, resolution=args.resolution, bbox=_floats(args.bbox), bbox_crs=args.bbox_crs,
        sensor=args.sensor,
        band_order=args.band_order.split(",") if args.band_order else None,
        scale=parse_per_band(args.scale, "--scale"),
        offset=parse_per_band(args.offset, "--offset"), mask_kind=args.mask_kind,
        krs=args.krs, srad_mean=args.srad_mean,
        units={k: str(v) for k, v in parse_mapping(args.units).items()},
        max_gap=args.max_gap, missing_bands=args.missing_bands,
        class_column=args.class_column, class_map=parse_mapping(args.class_map) or None,
        validate=True, progress=False if args.quiet else None,
    )
    from ..cube import open_cube

    cube = open_cube(path)
    a = cube.ds.attrs
    print(f"wrote {path}: {cube.ds.sizes['time']} image dates, {cube.ds.sizes['y']} x "
          f"{cube.ds.sizes['x']} pixels, {cube.ds.sizes['day']} days of weather")
    for rule, bands in json.loads(a.get("kgvsf_scaling", "{}")).items():
        print(f"  reflectance {rule}: {', '.join(bands)}")
    kinds = json.loads(a.get("kgvsf_mask_kinds", "[]"))
    print(f"  quality layers read as: {', '.join(kinds) if kinds else 'none (no cloud mask)'}")
    for key, label in (("kgvsf_bands_derived", "bands derived"),
                       ("kgvsf_missing_bands", "bands missing (all NaN)"),
                       ("kgvsf_weather_estimated", "weather ESTIMATED (not measured)"),
                       ("kgvsf_weather_derived", "weather derived"),
                       ("kgvsf_weather_filled_days", "weather days filled")):
        val = json.loads(a.get(key, "[]"))
        if val:
            print(f"  {label}: {val}" + ("; the model takes them as not observed"
                                          if key == "kgvsf_missing_bands" else ""))
    return 0


def add_finetune_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``finetune`` sub-command to the ``kgvsf`` parser."""
    p = sub.add_parser("finetune",
                       help="adapt the pretrained KG-VSF weights to your cube")
    p.add_argument("--cube", required=True, help="cube (.zarr), e.g. from kgvsf ingest")
    p.add_argument("--out", required=True, help="output checkpoint folder")
    p.add_argument("--weights", help="start checkpoint (default: the shipped kgvsf-small-pcwv)")
    p.add_argument("--steps", type=int, default=200, help="optimiser steps (both phases)")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate")
    p.add_argument("--batch-size", type=int, help="default: the checkpoint's")
    p.add_argument("--eval-every", type=int, help="validate every N steps (default steps/10)")
    p.add_argument("--patience", type=int, default=3, help="early stopping (0: never)")
    p.add_argument("--val-year", type=int, help="held-out year (default: the cube's last)")
    p.add_argument("--resume", action="store_true", help="continue from --out/last")
    p.add_argument("--device", help="torch device (default: CUDA if available)")
    p.add_argument("--check-cases", type=int, default=64,
                   help="held-out cases scored against persistence afterwards (0: skip)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_finetune)


def run_finetune(args: argparse.Namespace) -> int:
    """Run ``kgvsf finetune``."""
    from .finetune import finetune

    result = finetune(args.cube, args.out, weights=args.weights, steps=args.steps, lr=args.lr,
                      batch_size=args.batch_size, eval_every=args.eval_every,
                      patience=args.patience, val_year=args.val_year, resume=args.resume,
                      device=args.device, progress=not args.quiet,
                      check_cases=args.check_cases)
    print(f"adapted: best validation loss {result.best_val:.4f} after {result.steps} steps in "
          f"{result.seconds:.0f} s -> {result.out_dir} (load it with "
          f"Forecaster.from_pretrained({str(result.out_dir)!r}))")
    record = json.loads((Path(args.out) / "training_data.json").read_text())
    check = record.get("held_out_skill")
    if check:
        a, s = check["adapted"], check["start"]
        print(f"held-out dates {a['period'][0]}..{a['period'][1]}: {a.get('dates', '?')} image "
              f"dates, {a.get('forecast_dates', '?')} forecast dates, "
              f"{a.get('date_pairs', '?')} date pairs, {a['cases']} cases: "
              f"forecast MSE {a['model_mse']:.5f} vs persistence {a['persistence_mse']:.5f} "
              f"(skill {a['skill_vs_persistence']:+.2f}; start weights "
              f"{s['skill_vs_persistence']:+.2f})"
              + ("" if check["beats_persistence"] else
                 " -- does NOT beat persistence: train longer or check the cube"))
        for h, r in a.get("by_horizon", {}).items():
            print(f"  horizon {h} days: {r['cases']} cases, {r.get('date_pairs', '?')} date "
                  f"pairs, skill {r['skill_vs_persistence']:+.2f}")
        if a.get("warning"):
            print(f"  WARNING: {a['warning']}")
    return 0


def print_cube_details(ds) -> None:
    """What ``kgvsf info`` adds to the summary: each band's range and valid share (sampled
    on large cubes), the surface classes, and what the ingest decided, derived or estimated."""
    from .. import schema
    from .gate import RANGE, band_summary

    rows, what = band_summary(ds)
    print(f"bands ({what}; plausible reflectance {RANGE[0]}..{RANGE[1]}):")
    for r in rows:
        if "min" not in r:
            print(f"  {r['band']}: no valid value" + (f" ({r['note']})" if "note" in r else ""))
            continue
        flag = f"  {r['outside']:.1%} outside the plausible range" if r["outside"] > 0 else ""
        print(f"  {r['band']}: valid {r['valid']:6.1%}  range {r['min']:.3f}..{r['max']:.3f}"
              f"  (1-99 % {r['p1']:.3f}..{r['p99']:.3f}, mean {r['mean']:.3f}){flag}")
    if schema.SURFACE_FLAG in ds:
        legend = schema.legend_from_attrs(ds[schema.SURFACE_FLAG].attrs)
        flags = ds[schema.SURFACE_FLAG]
        sample = flags.isel({schema.TIME_DIM: slice(None, None, max(1, flags.sizes[
            schema.TIME_DIM] // 24))}).values
        shares = {legend.get(int(c), str(c)): float((sample == c).mean())
                  for c in np.unique(sample)}
        print("surface classes: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items()))
    a = ds.attrs
    for key, label in (("kgvsf_scaling", "reflectance scaling"),
                       ("kgvsf_mask_kinds", "quality layers read as"),
                       ("kgvsf_weather_estimated", "drivers estimated (not measured)"),
                       ("kgvsf_weather_derived", "drivers derived or converted"),
                       ("kgvsf_weather_units_assumed", "weather units assumed"),
                       ("kgvsf_weather_filled_days", "weather days filled")):
        if key not in a:
            continue
        val = json.loads(a[key])
        if not val:
            continue
        if key == "kgvsf_weather_filled_days":
            val = {k: len(v) for k, v in val.items()}
        if isinstance(val, dict):
            print(f"{label}:")
            for k, v in val.items():
                print(f"  {k}: {v}")
        else:
            print(f"{label}: {', '.join(map(str, val))}")
