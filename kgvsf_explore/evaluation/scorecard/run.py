"""``kgvsf evaluate-weights``: score weights on a cube, task by task, beside the peers."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ...cube.cube import Cube
from ...errors import KGVSFError
from .rows import Row

__all__ = ["PEERS", "Scorecard", "TASK_NAMES", "evaluate_weights"]

#: Tasks of a scorecard, in the order they run.
TASK_NAMES: tuple[str, ...] = ("forecast", "gapfill", "crop_type", "soil_moisture", "whatif")

#: Peers a scorecard can set beside the weights.
PEERS: tuple[str, ...] = ("persistence", "climatology", "linear_interpolation", "trees",
                          "random_forest")

#: Largest square window (pixels) the whole-map tasks (gap filling, what-if) score.
MAP_EDGE = 256


@dataclass
class Scorecard:
    """The results of :func:`evaluate_weights`.

    Attributes
    ----------
    rows
        Every score (:class:`~.rows.Row`).
    skipped
        ``{task: reason}`` for the tasks that could not run on this cube.
    meta
        What was evaluated: weights, cube, periods, peers' training data, timings.
    """

    rows: list[Row]
    skipped: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """All rows as a DataFrame."""
        return pd.DataFrame([r.to_dict() for r in self.rows])

    def table(self, task: str, metric: str) -> pd.DataFrame:
        """``bin`` x ``method`` table of one metric."""
        df = self.to_frame()
        sel = df[(df["task"] == task) & (df["metric"] == metric)]
        order = list(dict.fromkeys(sel["bin"]))
        methods = list(dict.fromkeys(sel["method"]))
        return sel.pivot(index="bin", columns="method", values="value").reindex(
            index=order, columns=methods)

    def __repr__(self) -> str:
        tasks = sorted({r.task for r in self.rows})
        methods = list(dict.fromkeys(r.method for r in self.rows))
        skipped = f", skipped {sorted(self.skipped)}" if self.skipped else ""
        return (f"<Scorecard {self.meta.get('objective', '?')} on {self.meta.get('cube', '?')}: "
                f"{len(self.rows)} scores, tasks {tasks}, methods {methods}{skipped}>")

    def _repr_html_(self) -> str:  # pragma: no cover - notebook display
        import html

        from .report import markdown

        return f"<pre>{html.escape(markdown(self))}</pre>"


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _map_window(cube: Cube) -> tuple[slice, slice]:
    """The central window (at most MAP_EDGE pixels a side) of the whole-map tasks."""
    ny, nx = cube.ds.sizes["y"], cube.ds.sizes["x"]
    ey, ex = min(ny, MAP_EDGE), min(nx, MAP_EDGE)
    r0, c0 = (ny - ey) // 2, (nx - ex) // 2
    return slice(r0, r0 + ey), slice(c0, c0 + ex)


def _is_sample_world(cube: Cube) -> bool:
    return "kgvsf_seed" in cube.ds.attrs and "kgvsf_size" in cube.ds.attrs


def evaluate_weights(
    cube: Cube | str | os.PathLike[str] | None = None,
    *,
    weights: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    size: str = "small",
    tasks: Sequence[str] = TASK_NAMES,
    peers: Sequence[str] = PEERS,
    out: str | os.PathLike[str] | None = None,
    n_cases: int = 200,
    gap_dates: int = 12,
    label_seeds: Sequence[int] = (0, 1, 2),
    train_on: str = "auto",
    cache: str | os.PathLike[str] | None = "build/peers-cache",
    pixels_per_date: int = 128,
    quick: bool = False,
    quiet: bool = False,
    intervals: str | os.PathLike[str] | None = None,
    season_head: bool = True,
) -> Scorecard:
    """Score weights on every task beside the peers a user would pick instead.

    Parameters
    ----------
    cube
        The cube (a :class:`~kgvsf_explore.Cube` or a path), or None with ``seed``: a sample
        world simulated now (``size``). It must not be a world the weights were trained on.
    weights
        Checkpoint folder (default: the shipped weights).
    tasks
        Any of :data:`TASK_NAMES`; a task whose truth the cube lacks (a simulator to re-run,
        soil moisture, labels) is skipped with the reason in :attr:`Scorecard.skipped`.
    peers
        Any of :data:`PEERS`.
    out
        Folder for ``results.json``, ``report.md``, ``forecast_by_horizon.png`` and
        ``meta.json`` (None: nothing written).
    n_cases
        Forecast cases (32 x 32 tiles with an origin and a horizon) in the test period.
    gap_dates
        Held-out image dates of the gap-filling task.
    label_seeds
        Finetuning seeds of the weights' heads (crop type, soil moisture).
    train_on
        Where the trees learn: ``"weights"`` (the sample worlds the weights were trained on),
        ``"cube"`` (the cube before its test period) or ``"auto"`` (``weights`` for a sample
        world when the weights name their training worlds, else ``cube``).
    cache
        Folder caching the trees' training rows (None: no cache).
    pixels_per_date
        Training rows of the trees per origin date and cube.
    quick
        Small settings for tests and CI (fewer cases, trees, label tiles, and fill-head
        learning dates and boosting iterations: 60, as the quick trees).
    intervals
        Calibration of the weights' forecast intervals (file or folder; None: the
        ``intervals.json`` beside the weights, if any), scored on the forecast cases
        (``coverage80_*`` and ``width80_*`` rows, see :mod:`.intervals`). One made on the scored
        world or for other weights is not scored (``skipped["forecast intervals"]`` says why).
    season_head
        Also score the season heads (method ``kgvsf-season-head``: frozen embeddings at every
        image date + a head fitted on the labels) on the crop type and soil moisture tasks.

    Returns
    -------
    Scorecard
    """
    from ...cube.io import open_cube
    from ...tasks import ProtocolConfig, make_split
    from ...weights import default_weights, load_model
    from ...world import make_world
    from ..peers.drivers import DriverSums
    from ..peers.forest import CropForest, SoilMoistureForest
    from ..peers.history import PixelHistory
    from . import cases as case_mod
    from .forecast import forecast_rows_of, model_forecasts, score_forecasts
    from .gapfill import gapfill_rows, score_gaps
    from .intervals import find_calibration, interval_rows
    from .labels import crop_rows, soil_moisture_rows
    from .training import fit_trees, training_worlds_of
    from .whatif import whatif_rows

    bad = [t for t in tasks if t not in TASK_NAMES] + [p for p in peers if p not in PEERS]
    if bad:
        raise KGVSFError(f"unknown task or peer {bad}; tasks: {', '.join(TASK_NAMES)}; "
                         f"peers: {', '.join(PEERS)}")
    if train_on not in ("auto", "weights", "cube"):
        raise KGVSFError(f"train_on must be auto, weights or cube, got {train_on!r}")
    t0 = time.perf_counter()
    stages: dict[str, float] = {}  # seconds per stage, in meta["stage_seconds"]
    folder = Path(weights) if weights else default_weights()
    model, sha = load_model(folder)
    trained_on = training_worlds_of(folder)
    if cube is None:
        if seed is None:
            raise KGVSFError("give a cube or the seed of a sample world to simulate")
        if trained_on and seed in trained_on[0] and size == trained_on[1]:
            raise KGVSFError(f"world {seed} ({size}) is one the weights were trained on "
                             f"({trained_on}); pick another seed")
        cube = Cube(make_world(seed=seed, size=size)[0])
        where = f"sample world seed {seed} ({size}), simulated"
    elif isinstance(cube, (str, os.PathLike)):
        where = str(cube)
        cube = open_cube(cube)
    else:
        where = "in-memory cube"
    cube = Cube(cube.ds.load(), fields=cube.fields)
    stages["cube"] = time.perf_counter() - t0
    _log(f"cube ready: {where} ({stages['cube']:.0f} s)", quiet)
    if quick:
        n_cases, gap_dates, pixels_per_date = min(n_cases, 24), min(gap_dates, 4), 24
        label_seeds = tuple(label_seeds)[:1]
    name = model.objective
    first, last = case_mod.test_period(cube)
    sample_world = _is_sample_world(cube)
    mode = train_on
    if mode == "auto":
        mode = "weights" if sample_world and trained_on else "cube"
    if mode == "weights" and not trained_on:
        raise KGVSFError(f"{folder}/training_data.json does not name the sample worlds the "
                         "weights were trained on; use train_on='cube'")
    meta: dict[str, Any] = {
        "weights": str(folder), "weights_sha256": sha, "objective": name, "cube": where,
        "test_period": [str(first.date()), str(last.date())], "tasks": list(tasks),
        "peers": list(peers), "n_cases": n_cases, "gap_dates": gap_dates,
        "label_seeds": list(label_seeds), "quick": quick,
    }
    skipped: dict[str, str] = {}
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    hist = PixelHistory.from_cube(cube)
    sums = DriverSums(cube)
    trees = None
    want_trees = "trees" in peers and any(t in tasks for t in ("forecast", "gapfill", "whatif"))
    if want_trees:
        tt = time.perf_counter()
        trees, meta["trees_trained_on"], cached = fit_trees(
            cube, mode, trained_on, where=where, test_start=first, cache=cache,
            pixels_per_date=pixels_per_date, k_max=model.cfg.k_max, quick=quick)
        meta["trees_rows"] = trees.n_rows
        stages["trees"] = time.perf_counter() - tt
        _log(f"trees fitted on {trees.n_rows} rows ({'cached' if cached else 'drawn'}; "
             f"{stages['trees']:.0f} s)", quiet)
    if "forecast" in tasks:
        tt = time.perf_counter()
        fcases = case_mod.forecast_cases(cube, model.cfg, n_cases, seed=0)
        preds = {name: model_forecasts(model, fcases)}
        errors = score_forecasts(fcases, preds, hist, sums, trees)
        extra["forecast_errors"] = errors
        rows += forecast_rows_of(errors, name)
        cal, why = find_calibration(intervals, folder, sha, {
            "seed": seed, "size": size,
            "cube_path": str(Path(where).resolve()) if seed is None and where != "in-memory "
            "cube" else None})
        if cal is None:
            skipped["forecast intervals"] = why or "no calibration"
        else:
            rows += interval_rows(fcases, preds[name], cal, tuple(model.cfg.bands), name)
            meta["intervals"] = cal.source
        stages["forecast"] = time.perf_counter() - tt
        _log(f"forecast: {errors['case'].nunique() if len(errors) else 0} cases "
             f"({stages['forecast']:.0f} s)", quiet)
    if "gapfill" in tasks:
        tt = time.perf_counter()
        dates = case_mod.gap_dates(cube, gap_dates, k_max=model.cfg.k_max)
        if not dates:
            skipped["gapfill"] = "no image date of the test period is clear enough to hold out"
        else:
            wr, wc = _map_window(cube)
            fill = {"fill_dates": 24, "fill_pixels": 200, "fill_iter": 60} if quick else {}
            errors = score_gaps(model, cube, dates, hist, sums, trees, wr, wc, **fill)
            extra["gapfill_errors"] = errors
            if errors.attrs.get("fill_skipped"):
                skipped["gapfill fill head"] = errors.attrs["fill_skipped"]
            rows += gapfill_rows(errors)
            stages["gapfill"] = time.perf_counter() - tt
            _log(f"gapfill: {len(dates)} dates ({stages['gapfill']:.0f} s)", quiet)
    split = None
    if "crop_type" in tasks or "soil_moisture" in tasks:
        try:
            split = make_split(cube)
        except ValueError as err:
            reason = f"no labels to finetune on: {err}"
            for t in ("crop_type", "soil_moisture"):
                if t in tasks:
                    skipped[t] = reason
        if split is not None and cube.truth is None:
            for t in ("crop_type", "soil_moisture"):
                if t in tasks:
                    skipped[t] = ("the label tasks draw the evaluation table's samples, which "
                                  "need a simulated cube (with *_true bands)")
            split = None
    proto = ProtocolConfig(head_steps=20 if quick else 150, hidden=16 if quick else 64)
    tiles = (16, 8) if quick else (160, 48)
    season = None
    if split is not None and season_head:
        from .season import SeasonInputs

        season = SeasonInputs(model, sha, cube, steps=60 if quick else 800,
                              every=4 if quick else 1, cache=cache)
    if split is not None and "crop_type" in tasks:
        tt = time.perf_counter()
        forest = CropForest(n_estimators=30 if quick else 200).fit(cube, split, hist)
        r, info = crop_rows(model, cube, split, hist, seeds=label_seeds, proto=proto,
                            tiles=tiles, forest=forest, season=season)
        rows += r
        extra["crop_type"] = info
        stages["crop_type"] = time.perf_counter() - tt
        _log(f"crop type ({stages['crop_type']:.0f} s)", quiet)
    if split is not None and "soil_moisture" in tasks:
        if cube.soil_moisture is None:
            skipped["soil_moisture"] = "the cube has no soil_moisture variable to score against"
        else:
            tt = time.perf_counter()
            forest = SoilMoistureForest(n_estimators=20 if quick else 100).fit(cube, split,
                                                                               hist, sums)
            r, info = soil_moisture_rows(model, cube, split, hist, sums, seeds=label_seeds,
                                         proto=proto, tiles=tiles, forest=forest,
                                         season=season)
            rows += r
            extra["soil_moisture"] = info
            stages["soil_moisture"] = time.perf_counter() - tt
            _log(f"soil moisture ({stages['soil_moisture']:.0f} s)", quiet)
    if "whatif" in tasks:
        if not sample_world:
            skipped["whatif"] = ("the true change needs the simulator to re-run the world, "
                                 "and this cube is not a sample world")
        else:
            tt = time.perf_counter()
            wr, wc = _map_window(cube)
            r, per_crop = whatif_rows(model, cube, hist, trees, year=first.year, rows=wr,
                                      cols=wc)
            rows += r
            extra["whatif_per_crop"] = per_crop
            stages["whatif"] = time.perf_counter() - tt
            _log(f"what-if ({stages['whatif']:.0f} s)", quiet)
    keep = set(peers) | {name, f"{name}-fill", "no_change", "truth", "kgvsf-season-head"}
    rows = [r for r in rows if r.method in keep]
    meta["seconds"] = round(time.perf_counter() - t0, 1)
    meta["stage_seconds"] = {k: round(v, 1) for k, v in stages.items()}
    card = Scorecard(rows, skipped, meta, extra)
    for task, why in skipped.items():
        _log(f"skipped {task}: {why}", quiet)
    if out is not None:
        from .report import write_outputs

        write_outputs(card, Path(out))
        _log(f"wrote {out}/results.json, report.md, forecast_by_horizon.png", quiet)
    return card
