"""The season heads (:mod:`kgvsf_explore.heads`) beside the forests on the label tasks.

Method ``kgvsf-season-head``: the weights' frozen season embeddings (every image date of a
year) and a :class:`~kgvsf_explore.heads.CropMapHead` / :class:`~kgvsf_explore.heads.
SoilMoistureHead` fitted on the labels the forests learn from (group-A fields in the finetune
years: the crop map of each year; soil moisture at the image dates), scored by the task's own
metric on the same test tiles and pixels as the forests and the one-date heads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ... import schema
from ...cube.cube import Cube
from ...heads import CropMapHead, SoilMoistureHead, season_embeddings
from ...tasks.split import FieldYearSplit
from ..peers.forest import crop_of_year
from .rows import Row
from .training import cube_fingerprint

__all__ = ["SEASON_METHOD", "SeasonInputs", "season_crop_rows", "season_sm_rows"]

#: Method name of the season heads in a scorecard.
SEASON_METHOD = "kgvsf-season-head"


class SeasonInputs:
    """Season embeddings of the whole cube, one year at a time, kept (float16) once computed.

    Parameters
    ----------
    model, weights_id
        The frozen weights and their SHA-256.
    cube
        The cube.
    steps
        Training steps of each head.
    every
        Embed every ``every``-th image date only (quick scorecards).
    cache
        Folder caching the embeddings as ``.npy`` (None: no cache).
    """

    def __init__(self, model, weights_id: str, cube: Cube, *, steps: int = 800,
                 every: int = 1, cache: str | os.PathLike[str] | None = None) -> None:
        self.model, self.weights_id, self.cube, self.steps = model, weights_id, cube, steps
        self.every = every
        self.cache = Path(cache) if cache else None
        self._years: dict[int, xr.DataArray] = {}

    def year(self, year: int) -> xr.DataArray:
        """Season embeddings ``(time, feature, y, x)`` of ``year`` (float16 values)."""
        if year not in self._years:
            self._years[year] = self._compute(year)
        return self._years[year]

    def _compute(self, year: int) -> xr.DataArray:
        from ..._atomic import atomic_write

        path = None
        if self.cache is not None:
            key = (f"{self.weights_id[:12]}-{cube_fingerprint(self.cube)}-{year}"
                   f"-every{self.every}")
            path = self.cache / f"season-embeddings-{key}.npy"
        if path is not None and path.is_file():
            return _with_data(self.cube, year, np.load(path, allow_pickle=False),
                              self.weights_id, self.every)
        with torch.no_grad():
            full = season_embeddings(self.model, self.cube, year, progress=False,
                                     weights_id=self.weights_id, every=self.every)
        data = full.values.astype(np.float16)
        if path is not None:
            import io

            buf = io.BytesIO()
            np.save(buf, data, allow_pickle=False)
            atomic_write(path, buf.getvalue())
        return full.copy(data=data)


def _with_data(cube: Cube, year: int, data: np.ndarray, weights_id: str, every: int
               ) -> xr.DataArray:
    """A season embedding array of ``year`` around cached values."""
    from ...heads.season import CLEAR_COORD, season_dates

    dates = season_dates(cube, year)[::every]
    ds = cube.ds
    clear = cube.valid.sel({schema.TIME_DIM: dates.values})
    coords = {schema.TIME_DIM: dates.values, "feature": np.arange(data.shape[1]),
              schema.Y_DIM: ds[schema.Y_DIM].values, schema.X_DIM: ds[schema.X_DIM].values,
              "doy": (schema.TIME_DIM, dates.day_of_year.values.astype("int16")),
              CLEAR_COORD: ((schema.TIME_DIM, schema.Y_DIM, schema.X_DIM),
                            np.asarray(clear.values))}
    return xr.DataArray(data, dims=(schema.TIME_DIM, "feature", schema.Y_DIM, schema.X_DIM),
                        coords=coords, attrs={"weights_sha256": weights_id,
                                              "season": f"{dates[0].date()} to "
                                                        f"{dates[-1].date()}"})


def _label_raster(values: np.ndarray, like: xr.DataArray) -> xr.DataArray:
    return xr.DataArray(values, dims=(schema.Y_DIM, schema.X_DIM),
                        coords={schema.Y_DIM: like[schema.Y_DIM].values,
                                schema.X_DIM: like[schema.X_DIM].values})


def _positions(test) -> list[tuple[int, int, int]]:
    b = test.batch
    return [(int(r), int(c), int(t)) for r, c, t in zip(b["row"], b["col"], b["t"])]


def season_crop_rows(season: SeasonInputs, split: FieldYearSplit, task, test,
                     keys: Sequence[str], seeds: Sequence[int]) -> tuple[list[Row], list[dict]]:
    """Crop-type rows of the season head (mean over ``seeds``) on the test tiles' pixels."""
    cube = season.cube
    group_a = split.pixels("finetune")
    embs, labels = [], []
    for year in split.finetune_years:
        emb = season.year(year)
        embs.append(emb)
        labels.append(_label_raster(np.where(group_a, crop_of_year(cube.ds, year), -1), emb))
    test_year = split.test_years[-1]
    test_emb = season.year(test_year)
    n_cls, tile = task.out_dim, test.crop.shape[-1]
    per_seed = []
    for seed in seeds:
        head = CropMapHead(steps=season.steps, seed=seed).fit(embs, labels, progress=False)
        crop_map = np.clip(head.predict(test_emb).crop_map.values.astype(np.int64), 0,
                           n_cls - 1)
        logits = torch.zeros((len(test), n_cls, tile, tile))
        for n, (r, c, _) in enumerate(_positions(test)):
            pred = torch.from_numpy(crop_map[r:r + tile, c:c + tile])
            logits[n].scatter_(0, pred[None], 1.0)
        per_seed.append(task.metrics(logits, test, test.part_pixels))
    n_px, n_dates = int(test.part_pixels.sum()), len({int(t) for t in test.batch["t"]})
    rows = [Row("crop_type", k, "all", SEASON_METHOD,
                float(np.nanmean([m[k] for m in per_seed])), n_px, n_dates) for k in keys]
    return rows, per_seed


def season_sm_rows(season: SeasonInputs, split: FieldYearSplit, task, test,
                   seeds: Sequence[int], weather: bool = True) -> tuple[list[Row], list[dict]]:
    """Soil moisture rows (R^2, RMSE) of the season head on the test tiles' pixels; with
    ``weather`` the head also reads the cube's weather up to the day (as the forest does)."""
    cube = season.cube
    sm = cube.soil_moisture
    group_a = split.pixels("finetune")
    embs, obs = [], []
    for year in split.finetune_years:
        emb = season.year(year)
        vals = sm.sel({schema.DAY_DIM: emb[schema.TIME_DIM].values}).values
        embs.append(emb)
        obs.append(xr.DataArray(np.where(group_a[None], vals, np.nan).astype("float32"),
                                dims=(schema.TIME_DIM, schema.Y_DIM, schema.X_DIM),
                                coords={schema.TIME_DIM: emb[schema.TIME_DIM].values,
                                        schema.Y_DIM: emb[schema.Y_DIM].values,
                                        schema.X_DIM: emb[schema.X_DIM].values}))
    test_emb = season.year(split.test_years[-1])
    tile = test.crop.shape[-1]
    pos = _positions(test)
    rr = np.concatenate([np.repeat(np.arange(r, r + tile), tile) for r, _, _ in pos])
    cc = np.concatenate([np.tile(np.arange(c, c + tile), tile) for _, c, _ in pos])
    dd = np.concatenate([np.full(tile * tile, t) for _, _, t in pos])
    per_seed = []
    for seed in seeds:
        wx = cube if weather else None
        head = SoilMoistureHead(steps=season.steps, seed=seed).fit(embs, obs, weather=wx,
                                                                    progress=False)
        pred = head.predict_at(test_emb, rr, cc, dd, weather=wx).reshape(len(pos), 1, tile,
                                                                          tile)
        per_seed.append(task.metrics(torch.from_numpy(np.nan_to_num(pred)), test,
                                     test.part_pixels))
    n_px, n_dates = int(test.part_pixels.sum()), len({int(t) for t in test.batch["t"]})
    rows = [Row("soil_moisture", k, "all", SEASON_METHOD,
                float(np.mean([m[k] for m in per_seed])), n_px, n_dates) for k in ("r2", "rmse")]
    return rows, per_seed
