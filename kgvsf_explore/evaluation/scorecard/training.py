"""Where the peers learn: the worlds the weights were trained on, or the cube's training part.

A fair peer learns from the same data as the model it is set against. For weights trained on
sample worlds (their ``training_data.json`` names the seeds and size), the tree forecaster's
rows are drawn from those worlds, re-simulated here. On a user's cube (or with
``train_on="cube"``) they are drawn from the cube's dates before the test period, which no
score uses. The rows are cached as ``.npz`` files keyed by what made them (no pickle: the
fitted trees are not stored, fitting them again is seeded and takes seconds).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..._atomic import atomic_write
from ...cube.cube import Cube
from ..peers.trees import TreeForecaster, forecast_rows

__all__ = ["ROWS_VERSION", "fit_trees", "tree_rows", "training_worlds_of"]

#: Version of the training-row recipe (part of the cache key).
ROWS_VERSION = 1


def training_worlds_of(weights: str | os.PathLike[str]) -> tuple[list[int], str] | None:
    """Seeds and size of the sample worlds a checkpoint was trained on, from its
    ``training_data.json`` (``"worlds": {"seeds": [...], "size": ...}``, or a description
    like ``"sample worlds seeds 101,102,103 (size small ..."``); None if it does not say."""
    path = Path(weights) / "training_data.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    worlds = data.get("worlds")
    if isinstance(worlds, dict) and worlds.get("seeds"):
        return [int(s) for s in worlds["seeds"]], str(worlds.get("size", "small"))
    m = re.search(r"seeds ([\d, ]+)\(size (\w+)", str(data.get("description", "")))
    if m:
        return [int(s) for s in m.group(1).replace(" ", "").strip(",").split(",")], m.group(2)
    return None


def _key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def tree_rows(source: dict, cubes_fn, cache: str | os.PathLike[str] | None, *,
              pixels_per_date: int, k_max: int, seed: int,
              period: tuple[str, str] | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Training rows of the trees, from the cache or drawn now (and cached).

    Parameters
    ----------
    source
        What the rows come from (JSON-able; part of the cache key).
    cubes_fn
        Called without arguments to get the cubes when the rows are not cached.
    cache
        Cache folder (None: no cache).

    Returns
    -------
    x, y, cached
    """
    spec = {"source": source, "pixels_per_date": pixels_per_date, "k_max": k_max,
            "seed": seed, "period": period, "version": ROWS_VERSION}
    path = Path(cache) / f"tree-rows-{_key(spec)}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["x"], z["y"], True
    x, y = forecast_rows(cubes_fn(), pixels_per_date=pixels_per_date, k_max=k_max, seed=seed,
                         period=period)
    if path is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, x=x, y=y, spec=np.array(json.dumps(spec)))
        atomic_write(path, buf.getvalue())
    return x, y, False


def cube_training_period(cube: Cube, test_start: pd.Timestamp) -> tuple[str, str]:
    """The cube's dates before the test period (what the trees may learn from)."""
    last = test_start - pd.Timedelta(days=1)
    return str(cube.times[0].date()), str(last.date())


def cube_fingerprint(cube: Cube) -> str:
    """A cheap identity of a cube's content (dates, sizes, a strided sample of the bands)."""
    h = hashlib.sha256()
    h.update(np.asarray(cube.times.values).tobytes())
    ds = cube.ds
    for b in cube.observed_bands:
        h.update(np.ascontiguousarray(ds[b].values[::7, ::5, ::5]).tobytes())
    h.update(json.dumps(dict(ds.sizes)).encode())
    return h.hexdigest()[:16]


def fit_trees(cube: Cube, mode: str, trained_on: tuple[list[int], str] | None, *, where: str,
              test_start: pd.Timestamp, cache: str | os.PathLike[str] | None,
              pixels_per_date: int, k_max: int, quick: bool = False
              ) -> tuple[TreeForecaster, str, bool]:
    """The tree forecaster fitted where ``mode`` says (``"weights"``: the sample worlds
    ``trained_on``; ``"cube"``: the cube before ``test_start``).

    Returns
    -------
    trees, description, cached
        The fitted trees (``trees.n_rows`` rows), where they learnt, and whether the rows came
        from the cache.
    """
    from ...world import make_world

    if mode == "weights":
        if not trained_on:
            raise ValueError("the weights name no training worlds")
        seeds, size = trained_on
        x, y, cached = tree_rows(
            {"worlds": list(seeds), "size": size},
            lambda: [Cube(make_world(seed=s, size=size)[0].load()) for s in seeds],
            cache, pixels_per_date=pixels_per_date, k_max=k_max, seed=0)
        told = f"sample worlds {list(seeds)} ({size}), as the weights"
    else:
        period = cube_training_period(cube, test_start)
        x, y, cached = tree_rows({"cube": where, "sha": cube_fingerprint(cube)}, lambda: [cube],
                                 cache, pixels_per_date=pixels_per_date, k_max=k_max, seed=0,
                                 period=period)
        told = f"this cube, {period[0]} to {period[1]}"
    return TreeForecaster(max_iter=60 if quick else 200).fit(x, y), told, cached
