"""Make the sample world: a datacube with known causality, deterministic from its seed."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS, Transformer

from .. import schema
from ..cube.regrid import drivers_on_pixels
from .climates import DEFAULT_CLIMATE, Climate, get_climate
from .fields import make_fields
from .management import draw_irrigation, draw_rotations
from .observe import CloudModel, add_noise, revisit_dates
from .params import WORLD_CROP_CLASSES
from .sensors import DEFAULT_SENSOR, get_sensor
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


@dataclass(frozen=True)
class WorldOptions:
    """What kind of world: climate, sensor and management (defaults: the shipped sample's).

    ``rotation`` and ``irrigation`` None take the climate's default (off in the corn belt, on
    where the climate's farming relies on them, see
    :data:`~kgvsf_explore.world.climates.CLIMATES`).
    """

    climate: str = DEFAULT_CLIMATE
    sensor: str = DEFAULT_SENSOR
    rotation: bool | None = None
    irrigation: bool | None = None

    def __post_init__(self) -> None:
        get_climate(self.climate)  # clear errors for unknown names
        get_sensor(self.sensor)

    def resolved(self) -> WorldOptions:
        """The options with ``rotation``/``irrigation`` filled in from the climate."""
        cl = get_climate(self.climate)
        return WorldOptions(
            self.climate, self.sensor,
            cl.rotation_default if self.rotation is None else bool(self.rotation),
            cl.irrigation_default if self.irrigation is None else bool(self.irrigation),
        )

    @property
    def is_default(self) -> bool:
        """True for the world as it always was (corn belt, Sentinel-2, no management)."""
        r = self.resolved()
        return (r.climate == DEFAULT_CLIMATE and r.sensor == DEFAULT_SENSOR
                and not r.rotation and not r.irrigation)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (resolved)."""
        return asdict(self.resolved())

    def cli_flags(self) -> str:
        """The ``kgvsf make-sample`` flags that make this world (empty for the default)."""
        if self.is_default:
            return ""
        r, cl = self.resolved(), get_climate(self.climate)
        flags = [f"--climate {r.climate}", f"--sensor {r.sensor}"]
        if r.rotation != cl.rotation_default:
            flags.append("--rotation" if r.rotation else "--no-rotation")
        if r.irrigation != cl.irrigation_default:
            flags.append("--irrigation" if r.irrigation else "--no-irrigation")
        return " " + " ".join(flags)


def world_spec(seed: int, size: str, options: WorldOptions | None = None) -> WorldSpec:
    """The :class:`WorldSpec` of a world: the climate gives its CRS and corner."""
    cl = get_climate((options or WorldOptions()).climate)
    return WorldSpec(seed=int(seed), size=size, crs=cl.crs, x0=cl.x0, y0=cl.y0)


def extra_stream(seed: int, index: int) -> np.random.Generator:
    """Child ``index`` (>= 6) of the world's seed sequence: a stream of a feature the first
    worlds did not have (6: rotations, 7: irrigation), drawn only when the feature is on, so
    the six original streams (:func:`world_streams`) are untouched."""
    if index < 6:
        raise ValueError("streams 0-5 are the original ones (world_streams)")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def _crop_legend(climate: Climate, options: WorldOptions) -> dict[int, str]:
    if climate.name == DEFAULT_CLIMATE and options.is_default:
        return dict(schema.CROP_CLASSES)
    codes = set(climate.crop_shares)
    if options.resolved().rotation:
        codes |= {c for r in climate.rotations for c in r.crops}
    return {c: WORLD_CROP_CLASSES[c] for c in sorted(codes)}


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


def world_inputs(
    spec: WorldSpec, streams: list[np.random.Generator], options: WorldOptions | None = None
) -> tuple[Any, dict, dict, xr.Dataset]:
    """Fields, their rasters, the year kinds and the observed weather (with snowpack) of a world.

    Draws from the fields, weather and years streams (``streams[:3]``) exactly as
    :func:`make_world` does, so a partial re-run (the dashboard's region truth) sees the same
    world. With ``options`` (climate and management) the rasters also hold ``crop_by_year``
    (rotations, ``(years, y, x)``) and ``irrigated`` (``(y, x)``), drawn from their own streams
    (:func:`extra_stream`), and the fields table has ``rotation``, ``crop_<year>`` and
    ``irrigated`` columns.
    """
    opts = (options or WorldOptions()).resolved()
    cl = get_climate(opts.climate)
    rng_fields, rng_weather, rng_years = streams[:3]
    g = _grid(spec)
    n = spec.n
    max_size = max(10, min(40, n // 3))
    fields, rasters = make_fields(
        rng_fields, n, n, g["x_edges"], g["y_edges"], spec.crs, max_size, max_size // 4,
        crop_shares=None if cl.name == DEFAULT_CLIMATE else cl.crop_shares,
    )
    if not opts.is_default:
        fields, rasters = _manage(spec, cl, opts, fields, rasters)
    kinds = ["drought", "wet", "normal"]
    order = rng_years.permutation(len(kinds))
    year_kind = {y: kinds[order[i % len(kinds)]] for i, y in enumerate(spec.years)}
    climate = replace(cl.weather, latitude=_latitude(spec))
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


def _manage(spec: WorldSpec, cl: Climate, opts: WorldOptions, fields: Any,
            rasters: dict) -> tuple[Any, dict]:
    """Rotations and irrigation of the fields (their own streams), into table and rasters."""
    first = fields["crop_code"].to_numpy()
    idx = rasters["field_id"] - 1
    n_years = len(spec.years)
    codes = np.repeat(first[:, None], n_years, axis=1)
    names = ["none"] * len(first)
    if opts.rotation:
        codes, names = draw_rotations(extra_stream(spec.seed, 6), first, cl, n_years)
        rasters["crop_by_year"] = np.moveaxis(codes[idx], -1, 0).astype(np.int8)
    irrigated = np.zeros(len(first), dtype=bool)
    if opts.irrigation:
        irrigated = draw_irrigation(extra_stream(spec.seed, 7), first, cl)
        rasters["irrigated"] = irrigated[idx]
    fields = fields.copy()
    cols: dict[str, Any] = {"rotation": names}
    for k, year in enumerate(spec.years):
        cols[f"crop_{year}"] = [WORLD_CROP_CLASSES[int(c)] for c in codes[:, k]]
    cols["irrigated"] = irrigated
    loc = list(fields.columns).index("geometry")
    for i, (name, values) in enumerate(cols.items()):
        fields.insert(loc + i, name, values)
    return fields, rasters


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
    options: WorldOptions | None = None,
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
    options
        Climate, sensor and management (:class:`WorldOptions`); default: the shipped sample's
        kind of world (corn belt, Sentinel-2, no rotation or irrigation), bit for bit as it
        always was. A rotation world's ``crop_type`` has a ``year`` dimension
        (:func:`kgvsf_explore.schema.crop_map` gives one year's map); a Landsat world's
        ``B05`` is all-NaN and listed in ``attrs["kgvsf_missing_bands"]``.

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
    opts = (options or WorldOptions()).resolved()
    cl, sensor = get_climate(opts.climate), get_sensor(opts.sensor)
    spec = world_spec(seed, size, opts)
    streams = world_streams(spec)
    rng_revisit, rng_clouds, rng_noise = streams[3:]
    fields, rasters, year_kind, met = world_inputs(spec, streams, opts)
    g, n = _grid(spec), spec.n
    if (scenario is not None and not scenario.is_identity
            and any(c.variable == "swe" for c in scenario.changes)):
        warnings.warn(
            "the sample world diagnoses swe from prcp and temperature; the scenario's change "
            "to swe does not act on the simulated world", stacklevel=2)
    stored = scenario_weather(met, scenario)

    image_dates = revisit_dates(rng_revisit, spec.output_days[0], spec.output_days[-1],
                                every=sensor.revisit_days, extra=sensor.extra_pass)
    sim = run_processes(
        stored, rasters, image_dates, spec.output_days, progress=progress,
        first_year=spec.years[0],
    )
    clouds = CloudModel(rng_clouds, len(image_dates), (n, n), wet_beta=cl.cloud_wet_beta,
                        dry_beta=cl.cloud_dry_beta, buffer_px=sensor.cloud_buffer_px)
    cloud = np.stack([clouds.mask(i, p) for i, p in enumerate(sim.scene_prcp)])
    truth = sim.reflectance.reshape(len(image_dates), len(schema.BANDS), n, n)
    observed = add_noise(rng_noise, truth, sensor.noise_abs, sensor.noise_rel)
    observed = np.where(cloud[:, None], np.nan, observed)
    for band in sensor.missing_bands:  # not on this sensor: all-NaN, listed in the attrs
        b = schema.BANDS.index(band)
        observed[:, b] = np.nan
        truth[:, b] = np.nan

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
    crop_attrs = schema.legend_attrs(_crop_legend(cl, opts), "crop type")
    if "crop_by_year" in rasters:
        ds = ds.assign_coords({schema.YEAR_DIM: list(spec.years)})
        ds[schema.CROP_TYPE] = ((schema.YEAR_DIM, "y", "x"), rasters["crop_by_year"],
                                crop_attrs)
    else:
        ds[schema.CROP_TYPE] = (("y", "x"), rasters["crop_type"], crop_attrs)
    ds[schema.SOIL_TYPE] = (("y", "x"), rasters["soil_type"],
                            schema.legend_attrs(schema.SOIL_CLASSES, "soil texture class"))
    for name in ds.data_vars:
        if name != schema.GRID_MAPPING:
            ds[name].attrs["grid_mapping"] = schema.GRID_MAPPING
    ds.attrs = {
        "title": "kgvsf-explore sample world",
        "Conventions": "CF-1.8",
        "source": f"kgvsf make-sample --seed {spec.seed} --size {spec.size}"
                  f"{opts.cli_flags()}",
        "kgvsf_generator_version": GENERATOR_VERSION,
        "kgvsf_seed": spec.seed,
        "kgvsf_size": spec.size,
        "kgvsf_year_kinds": json.dumps({str(k): v for k, v in year_kind.items()}),
        "kgvsf_scenario": "" if scenario is None else json.dumps(scenario.to_dict()),
        "latitude": round(WeatherClimate(latitude=_latitude(spec)).latitude, 4),
    }
    if not opts.is_default:
        ds.attrs["kgvsf_world"] = json.dumps(opts.to_dict())
        ds.attrs["kgvsf_climate"] = opts.climate
        ds.attrs["kgvsf_sensor"] = opts.sensor
        if sensor.missing_bands:
            ds.attrs["kgvsf_missing_bands"] = json.dumps(list(sensor.missing_bands))
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
    options: WorldOptions | None = None,
) -> Path:
    """Simulate the sample world and write it to ``out/`` (``cube.zarr`` + ``fields.parquet``).

    The folder is written under a temporary name beside ``out`` and renamed into place, so an
    interrupted run never leaves a half-written cube, and an existing ``out`` is only replaced
    when ``overwrite=True``. A scenario run also writes ``scenario.json``. ``options`` (climate,
    sensor, management; :class:`WorldOptions`) are passed to :func:`make_world` and, when not
    the default, recorded in ``world.json``.

    Returns
    -------
    pathlib.Path
        The output folder.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    ds, fields = make_world(seed=seed, size=size, scenario=scenario, progress=progress,
                            options=options)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _stored_drivers(ds).to_zarr(tmp / "cube.zarr", encoding=_encoding(ds), mode="w",
                                    consolidated=False, zarr_format=3)
        fields.to_parquet(tmp / "fields.parquet", index=False)
        if scenario is not None:
            scenario.to_json(tmp / "scenario.json")
        info: dict[str, Any] = {
            "seed": int(seed), "size": size, "generator_version": GENERATOR_VERSION,
            "spec": {k: v for k, v in asdict(world_spec(seed, size, options)).items()
                     if k != "climate"}}
        if options is not None and not options.is_default:
            info["world"] = options.to_dict()
        (tmp / "world.json").write_text(json.dumps(info, indent=2) + "\n")
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
