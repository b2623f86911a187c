"""Does the forecast move the way the simulator moves under a changed weather? (causality check)"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..cube.cube import Cube
from ..errors import KGVSFError
from ..inference.region import forecast_region
from ..models.kgvsf import KGVSF
from ..scenario import Scenario
from ..world import make_world
from ..world.whatif import counterfactual, ndvi_of, world_of

#: Crops whose canopy depends on rain (all but the non-crop class; winter wheat is harvested by
#: July, so the check uses corn, soybean and grassland).
RAINFED = ("corn", "soybean", "grassland")


def drought_scenario(t: pd.Timestamp, horizon: int, warming: float = 3.0) -> Scenario:
    """No rain and ``+warming`` degC on tmax and tmin over ``(t, t + horizon]``."""
    a = (t + pd.Timedelta(days=1)).date().isoformat()
    b = (t + pd.Timedelta(days=horizon)).date().isoformat()
    return Scenario.parse(f"prcp =0 from {a} to {b}", f"tmax +{warming} from {a} to {b}",
                          f"tmin +{warming} from {a} to {b}", name="drought")


def _image_date_near(times: pd.DatetimeIndex, t: pd.Timestamp, days: int) -> pd.Timestamp:
    """The image date closest to ``t + days`` (the simulator's truth exists on image dates)."""
    return times[np.argmin(np.abs((times - (t + pd.Timedelta(days=days))).days))]


def _true_ndvi(ds, date) -> np.ndarray:
    return ndvi_of(ds).sel(time=date).values


def forecast_vs_truth(
    model: KGVSF,
    base: Any,
    counterfactual: Any,
    scenario: Scenario,
    start: str,
    horizons: tuple[int, ...] = (15, 30, 45, 60),
    progress: bool = False,
) -> pd.DataFrame:
    """Mean NDVI change (scenario minus observed) per crop and horizon: model vs simulator.

    ``base`` and ``counterfactual`` are the same sample world simulated under the observed
    weather and under ``scenario`` (see :func:`kgvsf_explore.world.whatif.counterfactual`).
    Horizons are snapped to the nearest image date (the truth exists on image dates).
    """
    times = pd.DatetimeIndex(base[schema.TIME_DIM].values)
    t = times[times <= pd.Timestamp(start)][-1]
    ks, targets = [], []
    for h in horizons:
        target = _image_date_near(times, t, h)
        k = int((target - t).days)
        if model.cfg.k_min <= k <= model.cfg.k_max and k not in ks:
            ks.append(k)
            targets.append(target)
    fc = forecast_region(model, Cube(base), t, ks, [None, scenario], progress=progress)
    legend = schema.legend_from_attrs(base[schema.CROP_TYPE].attrs)
    crop = schema.crop_map(base, t.year).values
    rows = []
    for i, (k, target) in enumerate(zip(ks, targets)):
        d_true = _true_ndvi(counterfactual, target) - _true_ndvi(base, target)
        nd = fc["ndvi"].isel(horizon=i).values
        d_model = nd[1] - nd[0]
        for code, name in legend.items():
            m = crop == code
            if m.any():
                rows.append({"crop_type": name, "k": k, "date": str(target.date()),
                             "true_change": float(d_true[m].mean()),
                             "forecast_change": float(d_model[m].mean())})
    return pd.DataFrame(rows).set_index(["crop_type", "k"]).round(4)


def scenario_response(
    model: KGVSF,
    seed: int,
    *,
    size: str = "small",
    start: str = "2022-07-01",
    horizon: int = 30,
    scenario: Scenario | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Compare the forecast NDVI change under a drought with the simulator's true change.

    The world ``seed`` is simulated twice (observed weather, and the scenario); the model
    forecasts both from the same context. On rain-fed crop pixels it reports the correlation of
    the forecast change with the true change and the share of pixels (with a true change larger
    than 0.02) where both have the same sign.
    """
    base, _ = make_world(seed=seed, size=size)
    cube = Cube(base)
    times = pd.DatetimeIndex(base[schema.TIME_DIM].values)
    t = times[times <= pd.Timestamp(start)][-1]
    target = _image_date_near(times, t, horizon)
    k = int((target - t).days)
    scenario = scenario or drought_scenario(t, k)
    cf, _ = make_world(seed=seed, size=size, scenario=scenario)
    fc = forecast_region(model, cube, t, [k], [None, scenario], progress=progress)

    d_true = _true_ndvi(cf, target) - _true_ndvi(base, target)
    nd = fc["ndvi"].isel(horizon=0).values
    d_model = nd[1] - nd[0]
    legend = schema.legend_from_attrs(base[schema.CROP_TYPE].attrs)
    codes = [c for c, n in legend.items() if n in RAINFED]
    sel = np.isin(schema.crop_map(base, t.year).values, codes)
    a, b = d_model[sel], d_true[sel]
    strong = np.abs(b) > 0.02
    return {
        "seed": seed,
        "t": str(t.date()),
        "k": k,
        "pixels": int(sel.sum()),
        "true_change": float(b.mean()),
        "forecast_change": float(a.mean()),
        "correlation": float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0,
        "same_sign_share": float((np.sign(a[strong]) == np.sign(b[strong])).mean())
        if strong.any() else float("nan"),
    }


def true_forecast(cube: Cube, forecast: xr.Dataset) -> xr.Dataset:
    """The simulator's answer to the question ``forecast`` asked, on a sample world.

    Same region, origin ``t``, horizons and scenarios (read from the forecast's coordinates and
    ``attrs["scenarios"]``): the world is re-simulated under each scenario
    (:func:`~kgvsf_explore.world.whatif.counterfactual`, seconds for a ``small`` world) and the
    cloud-free true NDVI is read at ``t + k``. The truth exists on image dates only, so each
    horizon is snapped to the nearest image date, recorded in the ``time`` coordinate (pick
    horizons that land on image dates to compare exactly, see :func:`image_horizons`).

    Parameters
    ----------
    cube
        The sample-world cube the forecast was made on (``kgvsf make-sample`` output).
    forecast
        A forecast from :meth:`~kgvsf_explore.Forecaster.forecast` on that cube.

    Returns
    -------
    xarray.Dataset
        ``ndvi`` ``([scenario,] horizon, y, x)`` like the forecast's (NaN where the forecast is
        NaN, e.g. outside a geometry region), attrs ``title`` and ``t``.

    Raises
    ------
    KGVSFError
        The cube is not a sample world (the simulator cannot re-run it).

    Examples
    --------
    >>> out = fc.forecast(cube, box, "2022-07-01", [10, 20], [None, dry])   # doctest: +SKIP
    >>> truth = true_forecast(cube, out)                                     # doctest: +SKIP
    >>> (out.ndvi - truth.ndvi).sel(scenario="dry")                          # doctest: +SKIP
    """
    ds = cube.ds
    world_of(ds)  # a clear error before any work if this is not a sample world
    t = pd.Timestamp(forecast.attrs["t"])
    scenarios = [None if d is None else Scenario.from_dict(d)
                 for d in json.loads(forecast.attrs.get("scenarios", "[null]"))]
    targets = [_image_date_near(cube.times, t, int(k)) for k in forecast["horizon"].values]
    where = {schema.Y_DIM: forecast[schema.Y_DIM].values,
             schema.X_DIM: forecast[schema.X_DIM].values}
    maps = []
    for scenario in scenarios:
        world = ds if scenario is None else counterfactual(ds, scenario)
        nd = ndvi_of(world.sel(where)).sel({schema.TIME_DIM: targets})
        maps.append(np.asarray(nd.values, dtype="float32"))
    data = np.stack(maps) if "scenario" in forecast.dims else maps[0]
    out = xr.zeros_like(forecast["ndvi"], dtype="float32").copy(data=data)
    out = out.where(np.isfinite(forecast["ndvi"]))
    out = out.assign_coords({schema.TIME_DIM: ("horizon", pd.DatetimeIndex(targets).values)})
    out.attrs = {"long_name": "true NDVI (simulator, cloud-free)",
                 "grid_mapping": schema.GRID_MAPPING}
    return xr.Dataset({"ndvi": out}, attrs={"title": "simulator truth", "t": str(t.date())})


def image_horizons(cube: Cube, start: Any, near: Sequence[int]) -> list[int]:
    """Horizons (days) from the last image on or before ``start`` to the image dates nearest
    ``t + k`` for each ``k`` in ``near`` (duplicates dropped): forecasts at these horizons can
    be compared with the truth without snapping.

    Examples
    --------
    >>> image_horizons(cube, "2022-07-01", [10, 20, 30])   # doctest: +SKIP
    [10, 20, 30]
    """
    times = cube.times
    before = times[times <= pd.Timestamp(start)]
    if not len(before):
        raise KGVSFError(f"no image on or before {pd.Timestamp(start).date()}")
    t = before[-1]
    out: list[int] = []
    for k in near:
        d = int((_image_date_near(times, t, int(k)) - t).days)
        if d > 0 and d not in out:
            out.append(d)
    return out
