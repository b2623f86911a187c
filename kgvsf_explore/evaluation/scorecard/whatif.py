"""What-if: NDVI change maps under changed weather, against the simulator's true change.

The scenarios are the counterfactual check's (:func:`~kgvsf_explore.evaluation.
counterfactual_check.scenarios_at`: half the rain for 30 days, +3 degC for 14 days, twice the
rain for 30 days) from the last image on or before 1 July of the test year. The world is
re-simulated under each; the true change is the cloud-free NDVI of the scenario world minus
the observed world's at the image date nearest the window's end. The weights forecast both
weathers from the same context; the trees get the scenario's drivers exactly as the model
does; ``no_change`` (what persistence and climatology answer) predicts zero. Scored on every
pixel of the cube: same-sign share (pixels whose true change exceeds 0.02), Pearson r, RMSE,
and the mean change per crop type beside the true one.

On a world with irrigation (its fields table has an ``irrigated`` column), each crop type that
has both irrigated and rain-fed pixels in the window also gets its two halves
(``corn_irrigated``, ``corn_rainfed``), and ``irrigated_ratio`` is the mean absolute change of
the irrigated pixels over that of the rain-fed pixels of the same crop types, each side the
mean over those crop types (below 1: irrigated fields change less, as the water they get does
not depend on the rain; read it on the rain scenarios, heat can favour irrigated crops).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import schema
from ...cube.cube import Cube
from ...inference.region import forecast_region
from ...world.whatif import counterfactual, ndvi_of
from ..counterfactual_check import STRONG, scenarios_at
from ..peers.drivers import DriverSums
from ..peers.forest import crop_of_year
from ..peers.history import PixelHistory
from ..peers.trees import TreeForecaster
from ..whatif import _image_date_near
from .rows import Row

__all__ = ["whatif_rows", "irrigated_map"]


def irrigated_map(cube: Cube, rows: slice, cols: slice) -> np.ndarray | None:
    """Whether each pixel of the window is irrigated, from the fields table; None when the
    cube has no fields table with an ``irrigated`` column or no field is irrigated."""
    fields = cube.fields
    if (fields is None or "irrigated" not in fields.columns
            or schema.FIELD_ID not in cube.ds or not fields["irrigated"].any()):
        return None
    fid = np.asarray(cube.ds[schema.FIELD_ID].values)[rows, cols]
    return np.isin(fid, fields.loc[fields["irrigated"].astype(bool), schema.FIELD_ID])


def _irrigation_split(crop: np.ndarray, irrigated: np.ndarray, legend: dict
                      ) -> dict[str, np.ndarray]:
    """Masks of ``<crop>_irrigated`` / ``<crop>_rainfed`` for crop types that have both."""
    out = {}
    for code, cname in legend.items():
        m = crop == code
        if (m & irrigated).any() and (m & ~irrigated).any():
            out[f"{cname}_irrigated"] = m & irrigated
            out[f"{cname}_rainfed"] = m & ~irrigated
    return out


def _metrics(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    strong = np.abs(b) > STRONG
    return {
        "same_sign": float((np.sign(a[strong]) == np.sign(b[strong])).mean())
        if strong.any() else float("nan"),
        "pearson_r": float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0
        else float("nan"),
        "rmse": float(np.sqrt(np.mean((a - b) ** 2))),
    }


def _irrigated_ratio(change: np.ndarray, split: dict[str, np.ndarray]) -> float:
    """Mean absolute change of irrigated pixels over rain-fed ones, each the mean over the
    crop types of :func:`_irrigation_split` (every crop type counts once, so a crop that is
    mostly irrigated does not stand for the irrigated side alone)."""
    irr = [np.nanmean(np.abs(change[m])) for g, m in split.items() if g.endswith("_irrigated")]
    dry = [np.nanmean(np.abs(change[m])) for g, m in split.items() if g.endswith("_rainfed")]
    den = float(np.mean(dry))
    return float(np.mean(irr)) / den if den > 0 else float("nan")


def whatif_rows(model, cube: Cube, hist: PixelHistory, trees: TreeForecaster | None, *,
                year: int, rows: slice, cols: slice) -> tuple[list[Row], pd.DataFrame]:
    """Rows per scenario and their means over scenarios (bin ``all``), and a per-crop table."""
    ds = cube.ds
    times = cube.times
    t = times[times <= pd.Timestamp(f"{year}-07-01")][-1]
    i = int(np.searchsorted(times.values, np.datetime64(t, "ns")))
    rr, cc = np.meshgrid(np.arange(rows.start, rows.stop), np.arange(cols.start, cols.stop),
                         indexing="ij")
    r, c = rr.ravel(), cc.ravel()
    shape = rr.shape
    crop = crop_of_year(ds, year)[rows, cols]
    legend = schema.legend_from_attrs(ds[schema.CROP_TYPE].attrs) or schema.CROP_CLASSES
    base_sums = DriverSums(cube) if trees is not None else None
    base_ndvi = ndvi_of(ds.isel(y=rows, x=cols))
    irrigated = irrigated_map(cube, rows, cols)
    groups = {cname: crop == code for code, cname in legend.items()}
    split = _irrigation_split(crop, irrigated, legend) if irrigated is not None else {}
    groups.update(split)
    n_split = int(sum(m.sum() for m in split.values()))
    name = model.objective
    out: list[Row] = []
    per_crop = []
    scores: dict[tuple[str, str], list[float]] = {}
    for label, (scen, days) in scenarios_at(t).items():
        target = _image_date_near(times, t, days)
        k = int((target - t).days)
        world = counterfactual(ds, scen)
        truth = (ndvi_of(world.isel(y=rows, x=cols)).sel(time=target).values
                 - base_ndvi.sel(time=target).values).astype("float32")
        fc = forecast_region(model, cube, t, [k], [None, scen], rows=rows, cols=cols,
                             progress=False)
        nd = np.asarray(fc["ndvi"].isel(horizon=0).values, "float32")
        changes = {name: nd[1] - nd[0], "no_change": np.zeros(shape, "float32")}
        if trees is not None:
            _, base_nd = trees.predict(hist, base_sums, i, k, r, c)
            _, scen_nd = trees.predict(hist, DriverSums(cube, scen, block=base_sums.block), i,
                                       k, r, c)
            changes["trees"] = (scen_nd - base_nd).reshape(shape)
        n_px = int(np.isfinite(truth).sum())
        for method, change in changes.items():
            for metric, value in _metrics(change, truth).items():
                if metric == "pearson_r" and method == "no_change":
                    continue
                n = int((np.abs(truth) > STRONG).sum()) if metric == "same_sign" else n_px
                out.append(Row("whatif", metric, label, method, value, n, 1))
                scores.setdefault((metric, method), []).append(value)
        for cname, m in groups.items():
            if not m.any():
                continue
            row = {"scenario": label, "k": k, "crop_type": cname, "pixels": int(m.sum()),
                   "truth": float(np.nanmean(truth[m]))}
            row.update({method: float(np.nanmean(ch[m])) for method, ch in changes.items()
                        if method != "no_change"})
            per_crop.append(row)
            out.append(Row("whatif", f"mean_change_{cname}", label, "truth", row["truth"],
                           int(m.sum()), 1))
            for method in changes:
                if method != "no_change":
                    out.append(Row("whatif", f"mean_change_{cname}", label, method,
                                   row[method], int(m.sum()), 1))
        if split:
            for method, ch in {"truth": truth, **changes}.items():
                if method != "no_change":
                    out.append(Row("whatif", "irrigated_ratio", label, method,
                                   _irrigated_ratio(ch, split), n_split, 1))
    n_scen = len(scenarios_at(t))
    for (metric, method), vals in scores.items():
        out.append(Row("whatif", metric, "all", method, float(np.nanmean(vals)),
                       n_scen * int(np.prod(shape)), n_scen))
    return out, pd.DataFrame(per_crop)
