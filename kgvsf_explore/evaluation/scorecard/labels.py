"""Crop type and soil moisture: the weights' frozen embeddings + a head, against random forests.

A third method, ``kgvsf-season-head`` (:mod:`.season`), reads the weights' frozen embeddings at
every image date of the year through a head fitted on the same labels.

The model side is the evaluation table's frozen protocol
(:func:`~kgvsf_explore.tasks.run_cell`, 100 % of the labels, one head per finetuning seed): a
per-pixel head on the frozen embeddings, fitted on group-A fields in the finetune years. The
forests learn from the same labels (:mod:`~kgvsf_explore.evaluation.peers.forest`). Both are
scored by the task's own metric on the same test tiles and pixels (group-B fields in the test
year), so the case lists are identical by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...cube.cube import Cube
from ...tasks import TASKS, ProtocolConfig, frozen_inputs, run_cell
from ...tasks.split import FieldYearSplit
from ..peers.drivers import DriverSums
from ..peers.forest import CropForest, SoilMoistureForest
from ..peers.history import PixelHistory
from .rows import Row
from .season import SEASON_METHOD, SeasonInputs, season_crop_rows, season_sm_rows

__all__ = ["crop_rows", "draw_task", "soil_moisture_rows"]

#: (finetune tiles, test tiles) of the label tasks: the ``small`` evaluation table's sizes.
TASK_TILES = (160, 48)


def draw_task(name: str, model, cube: Cube, split: FieldYearSplit,
              tiles: tuple[int, int] = TASK_TILES):
    """The task's fixed finetune and test samples (the evaluation table's seeds)."""
    task = TASKS[name]
    return (task, task.draw(cube, split, "finetune", model.cfg, tiles[0], 1000 + task.samples),
            task.draw(cube, split, "test", model.cfg, tiles[1], 2000 + task.samples))


def _positions(data) -> list[tuple[int, int, int]]:
    b = data.batch
    return [(int(r), int(c), int(t)) for r, c, t in zip(b["row"], b["col"], b["t"])]


def _model_metrics(task, model, train, test, seeds: Sequence[int], proto: ProtocolConfig
                   ) -> list[dict]:
    inputs = frozen_inputs(model, task, train, test)
    return [run_cell(task, model, train, test, protocol="frozen", budget=1.0, seed=s,
                     cfg=proto, inputs=inputs) for s in seeds]


def _n(test) -> tuple[int, int]:
    return int(test.part_pixels.sum()), len({int(t) for t in test.batch["t"]})


def crop_rows(model, cube: Cube, split: FieldYearSplit, hist: PixelHistory, *,
              seeds: Sequence[int] = (0, 1, 2), proto: ProtocolConfig | None = None,
              tiles: tuple[int, int] = TASK_TILES, forest: CropForest | None = None,
              season: SeasonInputs | None = None) -> tuple[list[Row], dict]:
    """Macro and per-class F1 of the weights' head and of the crop forest on the same pixels
    (and of the season head, :mod:`.season`, when ``season`` is given)."""
    proto = proto or ProtocolConfig(head_steps=150)
    task, train, test = draw_task("crop_type", model, cube, split, tiles)
    n_px, n_dates = _n(test)
    rows: list[Row] = []
    per_seed = _model_metrics(task, model, train, test, seeds, proto)
    name = model.objective
    keys = [k for k in per_seed[0] if k.startswith("f1_") or k == "macro_f1"]
    for key in keys:
        vals = [m[key] for m in per_seed]
        rows.append(Row("crop_type", key, "all", name, float(np.nanmean(vals)), n_px, n_dates))
    forest = forest or CropForest().fit(cube, split, hist)
    year = split.test_years[-1]
    crop_map = forest.predict_map(hist, year)
    n_cls = task.out_dim
    logits = torch.zeros((len(test), n_cls, *test.crop.shape[1:]))
    tile = test.crop.shape[-1]
    for n, (r, c, _) in enumerate(_positions(test)):
        pred = torch.from_numpy(crop_map[r:r + tile, c:c + tile])
        logits[n].scatter_(0, pred[None].clamp(0, n_cls - 1), 1.0)
    metrics = task.metrics(logits, test, test.part_pixels)
    for key in keys:
        rows.append(Row("crop_type", key, "all", forest.name, float(metrics[key]), n_px,
                        n_dates))
    info = {"model": per_seed, "forest": metrics, "positions": _positions(test)}
    if season is not None:
        season_rows, info[SEASON_METHOD] = season_crop_rows(season, split, task, test, keys,
                                                            seeds)
        rows += season_rows
    return rows, info


def soil_moisture_rows(model, cube: Cube, split: FieldYearSplit, hist: PixelHistory,
                       sums: DriverSums, *, seeds: Sequence[int] = (0, 1, 2),
                       proto: ProtocolConfig | None = None,
                       tiles: tuple[int, int] = TASK_TILES,
                       forest: SoilMoistureForest | None = None,
                       season: SeasonInputs | None = None) -> tuple[list[Row], dict]:
    """R^2 and RMSE of soil moisture on day ``t``: the weights' head and the forest (and the
    season head, :mod:`.season`, when ``season`` is given)."""
    proto = proto or ProtocolConfig(head_steps=150)
    task, train, test = draw_task("sm_estimation", model, cube, split, tiles)
    n_px, n_dates = _n(test)
    rows: list[Row] = []
    per_seed = _model_metrics(task, model, train, test, seeds, proto)
    for key in ("r2", "rmse"):
        rows.append(Row("soil_moisture", key, "all", model.objective,
                        float(np.mean([m[key] for m in per_seed])), n_px, n_dates))
    forest = forest or SoilMoistureForest().fit(cube, split, hist, sums)
    tile = test.crop.shape[-1]
    pred = torch.zeros((len(test), 1, tile, tile))
    for n, (r, c, t) in enumerate(_positions(test)):
        rr, cc = np.meshgrid(np.arange(r, r + tile), np.arange(c, c + tile), indexing="ij")
        pred[n, 0] = torch.from_numpy(
            forest.predict(hist, sums, t, rr.ravel(), cc.ravel()).reshape(tile, tile))
    metrics = task.metrics(pred, test, test.part_pixels)
    for key in ("r2", "rmse"):
        rows.append(Row("soil_moisture", key, "all", forest.name, float(metrics[key]), n_px,
                        n_dates))
    info = {"model": per_seed, "forest": metrics, "positions": _positions(test)}
    if season is not None:
        season_rows, info[SEASON_METHOD] = season_sm_rows(season, split, task, test, seeds)
        rows += season_rows
    return rows, info
