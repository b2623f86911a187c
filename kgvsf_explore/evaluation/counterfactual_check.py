"""The counterfactual check: does a model's forecast change under a changed weather match the
simulator's true change, on held-out fields in a held-out year?

For each scenario (less rain, a heat spell, a wet spell) starting at the last image on or before
1 July of the test year, the evaluation world is re-simulated
(:func:`~kgvsf_explore.world.whatif.counterfactual`); the true change is the cloud-free NDVI of
the scenario world minus that of the observed world at the image date nearest ``t + k``. Two
forecasts are compared with it, each as (forecast under the scenario) minus (forecast under the
observed weather) from the same context:

- ``head``: the encoder's frozen embeddings with the future-image head finetuned on the
  downstream task (:mod:`kgvsf_explore.tasks.future_image`), which reads the weather of
  ``(t, t + k]`` like every head (and the network's forecast embedding at ``t + k``, which
  changes with the scenario for encoders that read the weather); every encoder can respond to
  the weather this way;
- ``native``: the pretrained network's own forecaster
  (:func:`~kgvsf_explore.inference.region.forecast_region`); encoders that never read the
  weather (SM-MR, SM-VSF, next-token, random) forecast no change at all.

Metrics on the rain-fed crop pixels (corn, soybean, grassland) of the test field group:
correlation and RMSE of the difference maps, the share of pixels with a true change over 0.02
where the forecast change has the same sign, and both mean changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import schema
from ..cube.cube import Cube
from ..inference.region import forecast_region, scenario_drivers
from ..inference.tiles import Stitcher, context_batches, plan_tiles
from ..scenario import Scenario
from ..tasks.data import driver_features
from ..tasks.protocol import PixelHead, embeddings, head_inputs, predict
from ..tasks.split import FieldYearSplit
from ..world.whatif import counterfactual, ndvi_of
from .whatif import RAINFED, _image_date_near

__all__ = ["CheckCase", "change_metrics", "head_change", "native_change", "prepare_cases",
           "scenarios_at"]

#: Threshold of a true NDVI change counted in the same-sign share.
STRONG = 0.02


def scenarios_at(t: pd.Timestamp) -> dict[str, tuple[Scenario, int]]:
    """The check's scenarios starting the day after ``t``, with their horizon in days:
    -50 % rain for 30 days, +3 degC for 14 days, twice the rain for 30 days (a wet spell)."""
    def window(days: int) -> str:
        a = (t + pd.Timedelta(days=1)).date().isoformat()
        return f"from {a} to {(t + pd.Timedelta(days=days)).date().isoformat()}"
    return {
        "rain-50%-30d": (Scenario.parse(f"prcp x0.5 {window(30)}", name="rain-50%-30d"), 30),
        "heat+3C-14d": (Scenario.parse(f"tmax +3 {window(14)}", f"tmin +3 {window(14)}",
                                       name="heat+3C-14d"), 14),
        "wet-x2-30d": (Scenario.parse(f"prcp x2 {window(30)}", name="wet-x2-30d"), 30),
    }


@dataclass
class CheckCase:
    """One scenario of the check with its truth."""

    name: str
    scenario: Scenario
    t: pd.Timestamp
    k: int
    true_change: np.ndarray
    pixels: np.ndarray


def prepare_cases(cube: Cube, split: FieldYearSplit) -> list[CheckCase]:
    """Simulate the scenarios on the evaluation world (a sample world) and keep the truth."""
    ds = cube.ds
    times = cube.times
    year = split.test_years[-1]
    t = times[times <= pd.Timestamp(f"{year}-07-01")][-1]
    legend = schema.legend_from_attrs(ds[schema.CROP_TYPE].attrs) or schema.CROP_CLASSES
    codes = [c for c, n in legend.items() if n in RAINFED]
    pixels = split.pixels("test") & np.isin(np.asarray(schema.crop_map(ds, year).values),
                                            codes)
    base = ndvi_of(ds)
    cases = []
    for name, (scen, days) in scenarios_at(t).items():
        target = _image_date_near(times, t, days)
        cf = counterfactual(ds, scen)
        d = ndvi_of(cf).sel(time=target).values - base.sel(time=target).values
        cases.append(CheckCase(name, scen, t, int((target - t).days), np.asarray(d, "float32"),
                               pixels))
    return cases


def change_metrics(forecast: np.ndarray, truth: np.ndarray, pixels: np.ndarray) -> dict:
    """Correlation, RMSE, same-sign share and mean changes of two difference maps on
    ``pixels``.

    Examples
    --------
    >>> d = np.array([[0.1, -0.2], [0.05, 0.3]])
    >>> change_metrics(d, d, np.ones((2, 2), bool))["same_sign"]
    1.0
    """
    a, b = np.asarray(forecast, float)[pixels], np.asarray(truth, float)[pixels]
    strong = np.abs(b) > STRONG
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
    return {
        "correlation": corr,
        "rmse": float(np.sqrt(((a - b) ** 2).mean())),
        "same_sign": float((np.sign(a[strong]) == np.sign(b[strong])).mean())
        if strong.any() else float("nan"),
        "forecast_change": float(a.mean()),
        "true_change": float(b.mean()),
    }


def _ndvi(refl: torch.Tensor, bands: tuple[str, ...]) -> torch.Tensor:
    nir, red = refl[:, bands.index("B08")], refl[:, bands.index("B04")]
    return (nir - red) / (nir + red).clamp_min(1e-6)


def head_change(model: nn.Module, head: PixelHead, cube: Cube, case: CheckCase) -> np.ndarray:
    """NDVI change map ``(y, x)`` of the future-image head: scenario minus observed weather."""
    cfg = model.cfg
    plan = plan_tiles(cube, cfg, case.t)
    observed = scenario_drivers(cube, None)
    changed = scenario_drivers(cube, case.scenario)
    stitch = Stitcher(plan)
    for windows, batch in context_batches(plan, 16, progress=False):
        emb = embeddings(model, batch)
        maps = []
        for drivers in (observed, changed):
            table = plan.driver_table(drivers, plan.t_day + 1, plan.t_day + case.k, windows)
            fut = []
            for r, c in windows:
                win = plan.window(r, c)
                fut.append(table.mean(win[schema.Y_DIM], win[schema.X_DIM]))
            full = torch.cat([batch["drivers"], torch.from_numpy(np.stack(fut))], 1)
            k = torch.full((len(windows),), case.k, dtype=torch.long)
            feats = driver_features(full, batch["t_index"], k)
            fc = embeddings(model, {**batch, "drivers": full, "k": k}, forecast=True)
            x = head_inputs(emb, batch["context_mask"], None, feats, fc)
            maps.append(_ndvi(predict(head, x), tuple(cfg.bands)))
        change = (maps[1] - maps[0]).numpy()
        for i, origin in enumerate(windows):
            stitch.add(origin, change[i])
    return stitch.result()


def native_change(model: nn.Module, cube: Cube, case: CheckCase) -> np.ndarray:
    """NDVI change map of the network's own forecaster (zero for encoders without weather)."""
    fc = forecast_region(model, cube, case.t, [case.k], [None, case.scenario], progress=False)
    nd = fc["ndvi"].isel(horizon=0).values
    return np.asarray(nd[1] - nd[0], "float32")
