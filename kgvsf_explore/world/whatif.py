"""The simulator's true answer to a what-if question: re-run a sample world under a scenario."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..errors import KGVSFError
from .sample import WorldOptions, make_world


def world_of(ds: xr.Dataset) -> tuple[int, str]:
    """Seed and size of a sample-world dataset (from its attributes)."""
    try:
        return int(ds.attrs["kgvsf_seed"]), str(ds.attrs["kgvsf_size"])
    except KeyError as err:
        raise KGVSFError(
            "this cube was not made by 'kgvsf make-sample' (no kgvsf_seed/kgvsf_size "
            "attributes), so the simulator cannot re-run it under a scenario"
        ) from err


def options_of(ds: xr.Dataset) -> WorldOptions | None:
    """Climate, sensor and management of a sample-world dataset (None: the default world)."""
    raw = ds.attrs.get("kgvsf_world")
    return None if not raw else WorldOptions(**json.loads(raw))


def counterfactual(ds: xr.Dataset, scenario) -> xr.Dataset:
    """The same sample world re-simulated under ``scenario`` (same seed, size, climate, sensor,
    management, fields and draws)."""
    seed, size = world_of(ds)
    cf, _ = make_world(seed=seed, size=size, scenario=scenario, options=options_of(ds))
    return cf


def ndvi_of(ds: xr.Dataset, truth: bool = True) -> xr.DataArray:
    """NDVI of a sample-world dataset: of the cloud-free truth (default) or of the observations."""
    nir = ds[schema.truth_name("B08") if truth else "B08"]
    red = ds[schema.truth_name("B04") if truth else "B04"]
    return (nir - red) / (nir + red)


def effect_by_crop(
    base: xr.Dataset, scen: xr.Dataset, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """Mean true change (scenario minus baseline) of NDVI and soil moisture per crop type.

    Uses the cloud-free truth, over image dates / days in ``[start, end]``.

    Returns
    -------
    pandas.DataFrame
        One row per crop type: baseline and scenario means and their difference.
    """
    window = slice(start, end)
    nd_b = ndvi_of(base).sel(time=window)
    nd_s = ndvi_of(scen).sel(time=window)
    sm_b = base[schema.SOIL_MOISTURE].sel(day=window)
    sm_s = scen[schema.SOIL_MOISTURE].sel(day=window)
    legend = schema.legend_from_attrs(base[schema.CROP_TYPE].attrs) or schema.CROP_CLASSES
    crop = schema.crop_map(base)  # a rotation world: the crops of its last year
    rows = []
    for code, name in legend.items():
        m = crop == code
        if not bool(m.any()):
            continue
        row = {
            "crop_type": name,
            "pixels": int(m.sum()),
            "ndvi_base": float(nd_b.where(m).mean()),
            "ndvi_scenario": float(nd_s.where(m).mean()),
            "sm_base": float(sm_b.where(m).mean()),
            "sm_scenario": float(sm_s.where(m).mean()),
        }
        row["ndvi_change"] = row["ndvi_scenario"] - row["ndvi_base"]
        row["sm_change"] = row["sm_scenario"] - row["sm_base"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("crop_type").round(4)


def ndvi_series_by_crop(ds: xr.Dataset, truth: bool = True) -> xr.DataArray:
    """Mean NDVI per crop type and image date, ``(crop_type, time)`` with crop names."""
    nd = ndvi_of(ds, truth)
    legend = schema.legend_from_attrs(ds[schema.CROP_TYPE].attrs) or schema.CROP_CLASSES
    crop = schema.crop_map(ds)
    series = [nd.where(crop == c).mean(("y", "x")) for c in legend]
    out = xr.concat(series, dim="crop_type").assign_coords(crop_type=list(legend.values()))
    return out.rename("ndvi").where(np.isfinite(out))
