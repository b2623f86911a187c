"""The peers as rows of the evaluation table, on exactly the table's task samples.

``kgvsf evaluate`` draws fixed samples per task (:func:`~.runner.task_samples`); here each peer
predicts the same test tiles and is scored by the task's own metric on the same test pixels,
with the same labels to learn from (group-A fields in the finetune years):

- ``crop_type`` and ``sm_estimation``: the random forests of :mod:`.peers.forest`;
- ``future_image``: persistence, day-of-year climatology and the gradient-boosted trees
  (trained on the table's training worlds, as the encoders were pretrained);
- ``missing_image``: linear interpolation between the clear observations around the hidden
  date (none later than the sample's ``t``, as the encoders see), and persistence.

The soil-moisture forecasting tasks have no peer row. A prediction a peer cannot make (a pixel
never seen clear) takes the band's mean over the cube's clear observations, so every pixel the
encoders are scored on is scored for the peers too. Cells are written as encoder
``peer:<name>``, frozen protocol, 100 % of the labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..cube.cube import Cube
from ..tasks.split import FieldYearSplit
from .peers.climatology import climatology
from .peers.drivers import DriverSums
from .peers.forest import CropForest, SoilMoistureForest
from .peers.history import PixelHistory
from .peers.interpolation import linear_fill
from .peers.persistence import persistence
from .peers.trees import TreeForecaster

__all__ = ["PEER_ROWS", "peer_cells"]

#: The peers of each table task.
PEER_ROWS: dict[str, tuple[str, ...]] = {
    "crop_type": ("random_forest",),
    "sm_estimation": ("random_forest",),
    "future_image": ("persistence", "climatology", "trees"),
    "missing_image": ("linear_interpolation", "persistence"),
}


def _tile_pixels(r: int, c: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    rr, cc = np.meshgrid(np.arange(r, r + tile), np.arange(c, c + tile), indexing="ij")
    return rr.ravel(), cc.ravel()


def _stack(test, tile: int, hist: PixelHistory,
           fn: Callable[[int, int, int, int, int], np.ndarray]) -> torch.Tensor:
    """``(N, C, H, W)`` from ``fn(n, row, col, t_day, k) -> (pixels, C)``, NaN filled."""
    b = test.batch
    fill = np.nanmean(hist.refl, axis=(0, 2, 3))
    out = []
    for n in range(len(test)):
        r, c, t, k = (int(b["row"][n]), int(b["col"][n]), int(b["t"][n]), int(b["k"][n]))
        refl = fn(n, r, c, t, k)
        refl = np.where(np.isfinite(refl), refl, fill[None])
        out.append(refl.T.reshape(-1, tile, tile))
    return torch.from_numpy(np.stack(out).astype("float32"))


def peer_cells(task_name: str, train, test, cube: Cube, split: FieldYearSplit, *,
               hist: PixelHistory, sums: DriverSums, trees: TreeForecaster | None,
               seed: int = 0) -> list[tuple[str, dict]]:
    """``[(peer, metrics)]`` of the peers of ``task_name`` on the table's ``test`` samples."""
    from ..tasks import TASKS

    task = TASKS[task_name]
    tile = test.crop.shape[-1]
    mask = test.part_pixels
    index = {int(d): i for i, d in enumerate(hist.days)}
    out: list[tuple[str, dict]] = []
    if task_name == "crop_type":
        forest = CropForest(seed=seed).fit(cube, split, hist)
        crop_map = forest.predict_map(hist, split.test_years[-1])
        logits = torch.zeros((len(test), task.out_dim, tile, tile))
        for n in range(len(test)):
            r, c = int(test.batch["row"][n]), int(test.batch["col"][n])
            pred = torch.from_numpy(crop_map[r:r + tile, c:c + tile])
            logits[n].scatter_(0, pred[None].clamp(0, task.out_dim - 1), 1.0)
        out.append(("random_forest", task.metrics(logits, test, mask)))
    elif task_name == "sm_estimation":
        forest = SoilMoistureForest(seed=seed).fit(cube, split, hist, sums)
        pred = torch.zeros((len(test), 1, tile, tile))
        for n in range(len(test)):
            r, c, t = (int(test.batch[k][n]) for k in ("row", "col", "t"))
            rows, cols = _tile_pixels(r, c, tile)
            pred[n, 0] = torch.from_numpy(forest.predict(hist, sums, t, rows, cols)
                                          .reshape(tile, tile))
        out.append(("random_forest", task.metrics(pred, test, mask)))
    elif task_name == "future_image":
        def persist(n, r, c, t, k):
            return persistence(hist, index[t], *_tile_pixels(r, c, tile))[0]

        def clim(n, r, c, t, k):
            target = hist.times[index[t]] + np.timedelta64(k, "D")
            return climatology(hist, target, *_tile_pixels(r, c, tile))[0]

        out.append(("persistence", task.metrics(_stack(test, tile, hist, persist), test, mask)))
        out.append(("climatology", task.metrics(_stack(test, tile, hist, clim), test, mask)))
        if trees is not None:
            def tree(n, r, c, t, k):
                return trees.predict(hist, sums, index[t], k, *_tile_pixels(r, c, tile))[0]

            out.append(("trees", task.metrics(_stack(test, tile, hist, tree), test, mask)))
    elif task_name == "missing_image":
        g = test.gap
        offsets = test.batch["image_offsets"]

        def hidden(n: int, t: int) -> int:
            return index[t + int(offsets[n, g])]

        def fill(n, r, c, t, k):
            return linear_fill(hist, hidden(n, t), *_tile_pixels(r, c, tile), until=index[t])[0]

        def persist(n, r, c, t, k):
            return persistence(hist, hidden(n, t) - 1, *_tile_pixels(r, c, tile))[0]

        out.append(("linear_interpolation",
                    task.metrics(_stack(test, tile, hist, fill), test, mask)))
        out.append(("persistence", task.metrics(_stack(test, tile, hist, persist), test, mask)))
    return out
