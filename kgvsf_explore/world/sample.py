"""Make the sample world: a datacube with known causality, deterministic from its seed."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS, Transformer

from .. import schema
from ..cube.regrid import drivers_on_pixels
from .fields import make_fields
from .observe import CloudModel, add_noise, revisit_dates
from .simulate import run_processes
from .water import snowpack
from .weather import WeatherClimate, generate_weather

if TYPE_CHECKING:
    from ..scenario import Scenario

#: Version of the generator; a change that alters any output byte bumps it.
GENERATOR_VERSION = "1"

#: Size presets: pixels per side and simulated years.
SIZES: dict[str, tuple[int, tuple[int, ...]]] = {
    "tiny": (32, (2021, 2022)),
    "small": (128, (2020, 2021, 2022)),
    "medium": (256, (2020, 2021, 2022)),
}

#: The seed and size of the cube shipped in ``data_samples/sample``.
SHIPPED_SEED, SHIPPED_SIZE = 42, "small"


@dataclass(frozen=True)
class WorldSpec:
    """Where, when and how big the sample world is."""

    seed: int = SHIPPED_SEED
    size: str = SHIPPED_SIZE
    crs: str = "EPSG:32615"  # UTM zone 15N (central Iowa)
    x0: float = 446_000.0  # left edge, m
    y0: float = 4_650_000.0  # top edge, m
    res: float = 10.0
    met_res: float = 320.0  # spacing of the native weather grid, m
    climate: WeatherClimate = field(default_factory=WeatherClimate)

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; choose one of {sorted(SIZES)}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    @property
    def n(self) -> int:
        return SIZES[self.size][0]

    @property
    def years(self) -> tuple[int, ...]:
        return SIZES[self.size][1]

    @property
    def output_days(self) -> pd.DatetimeIndex:
        return pd.date_range(f"{self.years[0]}-01-01", f"{self.years[-1]}-12-31", freq="D")

    @property
    def simulated_days(self) -> pd.DatetimeIndex:
        """Output days plus a spin-up from 1 September of the year before (autumn sowing)."""
        return pd.date_range(f"{self.years[0] - 1}-09-01", f"{self.years[-1]}-12-31", freq="D")


def _grid(spec: WorldSpec) -> dict[str, np.ndarray]:
    n, res = spec.n, spec.res
    m = math.ceil(n * res / spec.met_res) + 2
    return {
        "x": spec.x0 + res * (np.arange(n) + 0.5),
        "y": spec.y0 - res * (np.arange(n) + 0.5),
        "x_edges": spec.x0 + res * np.arange(n + 1),
        "y_edges": spec.y0 - res * np.arange(n + 1),
        "x_met": spec.x0 - spec.met_res / 2 + spec.met_res * np.arange(m),
        "y_met": spec.y0 + spec.met_res / 2 - spec.met_res * np.arange(m),
    }


def _latitude(spec: WorldSpec) -> float:
    to_geo = Transformer.from_crs(spec.crs, "EPSG:4326", always_xy=True)
    half = spec.n * spec.res / 2
    return float(to_geo.transform(spec.x0 + half, spec.y0 - half)[1])


def _crs_variable(crs: str) -> xr.DataArray:
    wkt = CRS.from_user_input(crs).to_wkt()
    return xr.DataArray(0, attrs={"crs_wkt": wkt, "spatial_ref": wkt})


def _with_snowpack(met: xr.Dataset) -> xr.Dataset:
    swe = snowpack(met["prcp"].values, met["tmax"].values, met["tmin"].values)
    return met.assign(swe=(met["prcp"].dims, swe.astype(np.float32)))


def _driver_attrs(ds: xr.Dataset) -> xr.Dataset:
    for name in schema.DRIVERS:
        ds[name].attrs = {
            "units": schema.DRIVER_UNITS[name],
            "long_name": schema.DRIVER_LONG_NAMES[name],
        }
    return ds


def world_streams(spec: WorldSpec) -> list[np.random.Generator]:
    """The six random streams of a world: fields, weather, years, revisits, clouds, noise."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(6)]


def world_inputs(spec: WorldSpec, streams: list[np.random.Generator]) -> tuple[Any, dict, dict,
                                                                                xr.Dataset]:
    """Fields, their rasters, the year kinds and the observed weather (with snowpack) of a world.

    Draws from the fields, weather and years streams (``streams[:3]``) exactly as
    :func:`make_world` does, so a partial re-run (the dashboard's region truth) sees the same
    world.
    """
    rng_fields, rng_weather, rng_years = streams[:3]
    g = _grid(spec)
    n = spec.n
    max_size = max(10, min(40, n // 3))
    fields, rasters = make_fields(
        rng_fields, n, n, g["x_edges"], g["y_edges"], spec.crs, max_size, max_size // 4
    )
    kinds = ["drought", "wet", "normal"]
    order = rng_years.permutation(len(kinds))
    year_kind = {y: kinds[order[i % len(kinds)]] for i, y in enumerate(spec.years)}
    climate = WeatherClimate(latitude=_latitude(spec))
    ym, xm = np.meshgrid(g["y_met"], g["x_met"], indexing="ij")
    cells = np.column_stack([xm.ravel(), ym.ravel()])
    sim_days = spec.simulated_days
    weather = generate_weather(rng_weather, sim_days, cells, year_kind, climate)
    shape = (len(sim_days), len(g["y_met"]), len(g["x_met"]))
    met = xr.Dataset(
        {k: (("day", "y_met", "x_met"), v.reshape(shape).astype(np.float32))
         for k, v in weather.items()},
        coords={"day": sim_days, "y_met": g["y_met"], "x_met": g["x_met"],
                "y": g["y"], "x": g["x"]},
    )
    return fields, rasters, year_kind, _with_snowpack(met)


def scenario_weather(met: xr.Dataset, scenario: Any) -> xr.Dataset:
    """The world's weather under ``scenario`` (on pixels when a change has a region)."""
    if scenario is None or scenario.is_identity:
        return met
    if any(c.region is not None for c in scenario.changes):
        stored = scenario.apply(drivers_on_pixels(met))
    else:
        stored = scenario.apply(met)
    return _with_snowpack(stored.assign_coords(y=met["y"], x=met["x"]))


def make_world(
    seed: int = SHIPPED_SEED,
    size: str = SHIPPED_SIZE,
    scenario: Scenario | None = None,
    progress: bool = False,
) -> tuple[xr.Dataset, gpd.GeoDataFrame]:
    """Simulate the sample world and return its cube and field polygons.

    The same ``seed`` and ``size`` give the same bytes; a ``scenario`` re-runs the same world (same
    fields, same random draws) under changed weather, which makes the returned cube the true
    counterfactual a what-if forecast is judged against.

    Parameters
    ----------
    seed
        Seed of every random stream (fields, weather, years, revisits, clouds, noise).
    size
        ``"tiny"`` (32 px, 2 years; for tests), ``"small"`` (128 px, 3 years; the shipped cube) or
        ``"medium"`` (256 px, 3 years).
    scenario
        A :class:`kgvsf_explore.Scenario` applied to the drivers before the processes run.
    progress
        Show a progress bar.

    Returns
    -------
    cube, fields
        An :class:`xarray.Dataset` following :mod:`kgvsf_explore.schema` and a GeoDataFrame of
        the fields (GeoParquet-ready).

    Examples
    --------
    >>> ds, fields = make_world(seed=7, size="tiny")
    >>> sorted(fields.crop_type.unique())[:2]
    ['corn', 'grassland']
    """
    spec = WorldSpec(seed=int(seed), size=size)
    streams = world_streams(spec)
    rng_revisit, rng_clouds, rng_noise = streams[3:]
    fields, rasters, year_kind, met = world_inputs(spec, streams)
    g, n = _grid(spec), spec.n
    if (scenario is not None and not scenario.is_identity
            and any(c.variable == "swe" for c in scenario.changes)):
        warnings.warn(
            "the sample world diagnoses swe from prcp and temperature; the scenario's change "
            "to swe does not act on the simulated world", stacklevel=2)
    stored = scenario_weather(met, scenario)

    image_dates = revisit_dates(rng_revisit, spec.output_days[0], spec.output_days[-1])
    sim = run_processes(
        stored, rasters, image_dates, spec.output_days, progress=progress
    )
    clouds = CloudModel(rng_clouds, len(image_dates), (n, n))
    cloud = np.stack([clouds.mask(i, p) for i, p in enumerate(sim.scene_prcp)])
    truth = sim.reflectance.reshape(len(image_dates), len(schema.BANDS), n, n)
    observed = add_noise(rng_noise, truth)
    observed = np.where(cloud[:, None], np.nan, observed)

    ds = xr.Dataset(coords={
        "time": image_dates, "day": spec.output_days, "y": g["y"], "x": g["x"],
    })
    ds[schema.GRID_MAPPING] = _crs_variable(spec.crs)
    for b, band in enumerate(schema.BANDS):
        attrs = {"units": "1", "long_name": f"surface reflectance {band} "
                 f"({schema.BAND_WAVELENGTH_NM[band]} nm)"}
        ds[band] = (("time", "y", "x"), observed[:, b], attrs)
    ds[schema.CLOUD_MASK] = (("time", "y", "x"), cloud, {"long_name": "cloud mask"})
    for b, band in enumerate(schema.BANDS):
        ds[schema.truth_name(band)] = (("time", "y", "x"), truth[:, b], {
            "units": "1", "long_name": f"cloud-free, noise-free surface reflectance {band} "
            "(simulator truth)"})
    ds[schema.SOIL_MOISTURE] = (
        ("day", "y", "x"), sim.soil_moisture.reshape(-1, n, n),
        {"units": schema.SOIL_MOISTURE_UNITS, "long_name": "root-zone volumetric soil moisture"},
    )
    out_drivers = stored.sel(day=spec.output_days)
    for name in schema.DRIVERS:
        ds[name] = out_drivers[name].drop_vars(["y", "x"], errors="ignore")
    ds = _driver_attrs(ds)
    ds[schema.FIELD_ID] = (("y", "x"), rasters["field_id"], {"long_name": "field identifier"})
    ds[schema.CROP_TYPE] = (("y", "x"), rasters["crop_type"],
                            schema.legend_attrs(schema.CROP_CLASSES, "crop type"))
    ds[schema.SOIL_TYPE] = (("y", "x"), rasters["soil_type"],
                            schema.legend_attrs(schema.SOIL_CLASSES, "soil texture class"))
    for name in ds.data_vars:
        if name != schema.GRID_MAPPING:
            ds[name].attrs["grid_mapping"] = schema.GRID_MAPPING
    ds.attrs = {
        "title": "kgvsf-explore sample world",
        "Conventions": "CF-1.8",
        "source": f"kgvsf make-sample --seed {spec.seed} --size {spec.size}",
        "kgvsf_generator_version": GENERATOR_VERSION,
        "kgvsf_seed": spec.seed,
        "kgvsf_size": spec.size,
        "kgvsf_year_kinds": json.dumps({str(k): v for k, v in year_kind.items()}),
        "kgvsf_scenario": "" if scenario is None else json.dumps(scenario.to_dict()),
        "latitude": round(WeatherClimate(latitude=_latitude(spec)).latitude, 4),
    }
    return ds, fields


#: Decimals the stored drivers keep (far below any sensor's accuracy). Rounding the float64
#: values before the float32 cast makes the stored bytes independent of last-bit differences
#: between numpy releases (seen: 2 of 39,456 temperatures differing by one float32 ulp), so a
#: world is regenerated bit for bit on any machine.
DRIVER_DECIMALS: dict[str, int] = {"prcp": 4, "tmax": 4, "tmin": 4, "srad": 3, "vp": 2,
                                   "dayl": 1, "swe": 4}


def _stored_drivers(ds: xr.Dataset) -> xr.Dataset:
    """The drivers rounded to :data:`DRIVER_DECIMALS` (``-0.0`` written as ``0.0``)."""
    out = ds.copy()
    for name, digits in DRIVER_DECIMALS.items():
        if name in out:
            values = np.round(out[name].values.astype("float64"), digits) + 0.0
            out[name] = out[name].copy(data=values.astype("float32"))
    return out


def _encoding(ds: xr.Dataset) -> dict[str, dict]:
    """Storage encoding: reflectance as Sentinel-2-style int16 DN x 1e-4, soil moisture as int16
    x 1e-3 m3/m3 (far finer than any sensor's accuracy), byte-shuffled zstd everywhere."""
    from zarr.codecs import BloscCodec

    codec = {"compressors": [BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")]}
    enc: dict[str, dict] = {}
    reflectance = list(schema.BANDS) + [schema.truth_name(b) for b in schema.BANDS]
    for name in reflectance:
        enc[name] = {"dtype": "int16", "scale_factor": 1e-4, "_FillValue": -9999,
                     "chunks": (32, 64, 64), **codec}
    enc[schema.SOIL_MOISTURE] = {"dtype": "int16", "scale_factor": 1e-3, "_FillValue": -9999,
                                 "chunks": (128, 64, 64), **codec}
    enc[schema.CLOUD_MASK] = {"chunks": (32, 64, 64), **codec}
    for name in schema.DRIVERS:
        enc[name] = {"dtype": "float32", **codec}
    return enc


def write_world(
    out: str | os.PathLike,
    seed: int = SHIPPED_SEED,
    size: str = SHIPPED_SIZE,
    scenario: Scenario | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Simulate the sample world and write it to ``out/`` (``cube.zarr`` + ``fields.parquet``).

    The folder is written under a temporary name beside ``out`` and renamed into place, so an
    interrupted run never leaves a half-written cube, and an existing ``out`` is only replaced
    when ``overwrite=True``. A scenario run also writes ``scenario.json``.

    Returns
    -------
    pathlib.Path
        The output folder.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    ds, fields = make_world(seed=seed, size=size, scenario=scenario, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _stored_drivers(ds).to_zarr(tmp / "cube.zarr", encoding=_encoding(ds), mode="w",
                                    consolidated=False, zarr_format=3)
        fields.to_parquet(tmp / "fields.parquet", index=False)
        if scenario is not None:
            scenario.to_json(tmp / "scenario.json")
        (tmp / "world.json").write_text(json.dumps(
            {"seed": int(seed), "size": size, "generator_version": GENERATOR_VERSION,
             "spec": {k: v for k, v in asdict(WorldSpec(seed=int(seed), size=size)).items()
                      if k != "climate"}},
            indent=2) + "\n")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
