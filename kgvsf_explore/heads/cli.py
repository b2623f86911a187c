"""``kgvsf crop-map`` (fit a season crop-map head on field polygons and map a year) and
``kgvsf fill`` (fill cloud-hidden or missing image dates)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_crop_map_parser", "add_fill_parser"]


def add_crop_map_parser(sub) -> None:
    """Add the ``crop-map`` command to the ``kgvsf`` sub-parsers."""
    from .._cli_args import bbox_arg

    p = sub.add_parser("crop-map", help="fit a crop-map head on field polygons (season "
                                        "embeddings of the frozen weights) and map a year")
    p.add_argument("--cube", required=True)
    p.add_argument("--labels", required=True,
                   help="field polygons with a class column (GeoParquet, GeoPackage, "
                        "Shapefile, GeoJSON; any CRS)")
    p.add_argument("--class-column", help="the polygons' class column (default: class, "
                                          "crop_type, crop, label or landcover)")
    p.add_argument("--year", required=True, type=int, help="the year to map")
    p.add_argument("--train-year", type=int, action="append",
                   help="year(s) the labels hold (repeat it; default: --year)")
    p.add_argument("--bbox", type=bbox_arg, help="XMIN,YMIN,XMAX,YMAX of the map (cube CRS)")
    p.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    p.add_argument("--every", type=int, default=1,
                   help="embed every N-th image date only (faster on large cubes)")
    p.add_argument("--steps", type=int, default=800, help="training steps of the head")
    p.add_argument("--save-head", help="also save the fitted head to this folder")
    p.add_argument("--out", required=True, help="output .zarr (crop_map, probability)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out folder that kgvsf did not write")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_crop_map)


def _crop_map(args: argparse.Namespace) -> int:
    from .._atomic import check_output, write_output_dir
    from ..cube import open_cube
    from ..forecaster import Forecaster
    from ..ingest.fields import read_fields
    from .crop_map import CropMapHead

    target = check_output(args.out, overwrite=args.overwrite,
                          inputs=[args.cube, args.weights, args.labels])
    fields = read_fields(args.labels)
    cube = open_cube(args.cube)
    fc = Forecaster.from_pretrained(args.weights)
    show = not args.quiet
    years = args.train_year or [args.year]
    train = [fc.season_embeddings(cube, None, y, progress=show, every=args.every)
             for y in years]
    head = CropMapHead(steps=args.steps).fit(train, [fields] * len(train),
                                             class_column=args.class_column, progress=show)
    if args.save_head:
        head.save(args.save_head, overwrite=args.overwrite)
    emb = (train[years.index(args.year)] if args.bbox is None and args.year in years
           else fc.season_embeddings(cube, args.bbox, args.year, progress=show,
                                     every=args.every))
    out = head.predict(emb)
    write_output_dir(target, lambda tmp: out.to_zarr(tmp, mode="w", consolidated=False),
                     kind="crop-map")
    counts = {str(c): int((out.crop_map == code).sum())
              for c, code in zip(head.classes, out.crop_map.attrs["flag_values"])}
    print(f"crop map of {args.year} ({head.info['pixels']} labelled pixels, classes "
          f"{head.classes}) -> {Path(target)}; pixels per class: {counts}")
    return 0


def add_fill_parser(sub) -> None:
    """Add the ``fill`` command to the ``kgvsf`` sub-parsers."""
    from .._cli_args import bbox_arg, positive_int_arg

    p = sub.add_parser("fill", help="fill cloud-hidden or missing image dates from the images "
                                    "on both sides, the weather between and the weights")
    p.add_argument("--cube", required=True)
    p.add_argument("--dates", help="comma-separated dates to fill, e.g. 2022-07-14,2022-07-19 "
                                   "(default: every image date of the region less than half "
                                   "clear)")
    p.add_argument("--bbox", type=bbox_arg, help="XMIN,YMIN,XMAX,YMAX of the region (cube CRS)")
    p.add_argument("--weights", help="checkpoint folder (default: the shipped weights)")
    p.add_argument("--train-dates", type=positive_int_arg, default=400,
                   help="clear image dates the fill head learns from (each hidden in turn)")
    p.add_argument("--pixels-per-date", type=positive_int_arg, default=500,
                   help="training pixels drawn per learning date")
    p.add_argument("--seed", type=int, default=0, help="seeds the head and its pixels")
    p.add_argument("--device", help="cpu, cuda (default: cuda when available)")
    p.add_argument("--out", required=True, help="output .zarr (reflectance, ndvi)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out folder that kgvsf did not write")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_fill)


def _fill(args: argparse.Namespace) -> int:
    from .._atomic import check_output, write_output_dir
    from ..cube import open_cube
    from ..forecaster import Forecaster

    target = check_output(args.out, overwrite=args.overwrite, inputs=[args.cube, args.weights])
    dates = [d.strip() for d in args.dates.split(",") if d.strip()] if args.dates else None
    cube = open_cube(args.cube)
    fc = Forecaster.from_pretrained(args.weights, device=args.device or "auto")
    out = fc.fill(cube, args.bbox, dates, train_dates=args.train_dates,
                  pixels_per_date=args.pixels_per_date, seed=args.seed,
                  progress=not args.quiet)
    write_output_dir(target, lambda tmp: out.to_zarr(tmp, mode="w", consolidated=False),
                     kind="fill")
    days = ", ".join(str(t)[:10] for t in out.time.values)
    print(f"filled {out.sizes['time']} date(s) ({days}) of {out.sizes['y']} x "
          f"{out.sizes['x']} px -> {Path(target)}")
    return 0
