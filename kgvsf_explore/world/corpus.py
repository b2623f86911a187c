"""A pretraining corpus: many sample worlds, each also re-run under randomised weather.

``kgvsf make-corpus --out DIR --worlds N --weather-variants M`` writes ``N`` worlds spread evenly
over the chosen climates and sensors (world ``i`` gets climate ``i mod C`` and sensor
``(i div C) mod S``, each with its climate's default management) and, for each, ``M`` re-runs
of the same fields and random draws under a weather *intervention* (the true counterfactual,
not an observation):

``shift``
    every day warmer or cooler (``tmax``/``tmin`` +-), rain scaled a little;
``scale``
    rain of the whole period scaled by 0.5-1.6;
``swap``
    one growing season (April-September) takes the weather of another year of the same world;
``spells``
    two to four growing-season dry spells, heat waves and wet spells
    (:func:`~kgvsf_explore.world.variants.random_weather_scenario`);
``other-world``
    one calendar year takes the (scene-mean) weather of the same year of another world of the
    same climate.

Variant ``v`` of world ``i`` has kind ``KINDS[(i M + v - 1) mod 5]``, so the kinds are spread
evenly over the corpus; its parameters come from a generator seeded with ``(world seed, v)``.

Layout: ``DIR/manifest.json`` lists every cube (path, world, seed, climate, sensor,
management, variant, scenario kind and text) and ``DIR/wNNNN/base`` and ``DIR/wNNNN/vK`` hold
the cubes (``cube.zarr``, ``fields.parquet``, ``world.json``, ``scenario.json``). Every cube is
written under a temporary name and renamed into place, so a run can be interrupted and re-run:
finished cubes are kept, the rest are made (the manifest is rewritten atomically after every
cube). Cubes are made in parallel worker processes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._atomic import atomic_write
from ..errors import KGVSFError
from .climates import CLIMATES
from .sample import GENERATOR_VERSION, SIZES, WorldOptions, world_inputs, world_spec, world_streams
from .sensors import SENSORS

#: Format version of ``manifest.json``.
MANIFEST_VERSION = 1

#: Kinds of weather intervention of the variants, in the order they are spread.
KINDS: tuple[str, ...] = ("shift", "scale", "swap", "spells", "other-world")

#: Drivers a variant may change (``dayl`` is astronomy, ``swe`` follows from the others).
_CHANGED = ("prcp", "tmax", "tmin", "srad", "vp")


class CorpusError(KGVSFError, ValueError):
    """A corpus request or folder that cannot be used (the message says why and what to do)."""


@dataclass(frozen=True)
class CorpusEntry:
    """One cube of the corpus."""

    path: str  # relative to the corpus folder
    world: int
    seed: int
    climate: str
    sensor: str
    variant: int  # 0: the world's own weather

    def to_dict(self) -> dict[str, Any]:
        """JSON form (without the scenario, which :func:`make_corpus` adds)."""
        return {"path": self.path, "world": self.world, "seed": self.seed,
                "climate": self.climate, "sensor": self.sensor, "variant": self.variant}


def world_seed(corpus_seed: int, world: int) -> int:
    """The seed of world ``world`` of a corpus (a 31-bit mix of both)."""
    state = np.random.SeedSequence([int(corpus_seed), int(world)]).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF


def plan(
    worlds: int,
    weather_variants: int,
    seed: int = 0,
    climates: Sequence[str] | None = None,
    sensors: Sequence[str] | None = None,
) -> list[CorpusEntry]:
    """The cubes of a corpus, in order (worlds, then their variants).

    Raises
    ------
    CorpusError
        On a non-positive number of worlds, a negative number of variants, or an unknown
        climate or sensor.
    """
    climates = list(climates or CLIMATES)
    sensors = list(sensors or SENSORS)
    if worlds < 1:
        raise CorpusError(f"--worlds must be at least 1, got {worlds}")
    if weather_variants < 0:
        raise CorpusError(f"--weather-variants must be 0 or more, got {weather_variants}")
    for c in climates:
        if c not in CLIMATES:
            raise CorpusError(f"unknown climate {c!r}; choose from {sorted(CLIMATES)}")
    for s in sensors:
        if s not in SENSORS:
            raise CorpusError(f"unknown sensor {s!r}; choose from {sorted(SENSORS)}")
    out = []
    for i in range(worlds):
        climate = climates[i % len(climates)]
        sensor = sensors[(i // len(climates)) % len(sensors)]
        for v in range(weather_variants + 1):
            out.append(CorpusEntry(f"w{i:04d}/{'base' if v == 0 else f'v{v}'}", i,
                                   world_seed(seed, i), climate, sensor, v))
    return out


def _met(seed: int, size: str, climate: str):
    """The observed weather of a world (no processes run): for ``other-world`` variants."""
    opts = WorldOptions(climate=climate)
    spec = world_spec(seed, size, opts)
    return world_inputs(spec, world_streams(spec), opts)[3]


def variant_scenario(entry: CorpusEntry, size: str, corpus_seed: int, weather_variants: int):
    """The weather intervention of a variant cube: ``(kind, Scenario)``."""
    from ..scenario import Scenario
    from .variants import random_weather_scenario

    years = SIZES[size][1]
    kind = KINDS[(entry.world * weather_variants + entry.variant - 1) % len(KINDS)]
    rng = np.random.default_rng([entry.seed, entry.variant, 104729])
    name = f"{kind}-{entry.world}-{entry.variant}"
    if kind == "shift":
        dt = float(rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 3.0))
        s = rng.uniform(0.8, 1.2)
        return kind, Scenario.parse(f"tmax {dt:+.2f}", f"tmin {dt:+.2f}", f"prcp x{s:.2f}",
                                    name=name)
    if kind == "scale":
        s = float(rng.choice([rng.uniform(0.5, 0.8), rng.uniform(1.25, 1.6)]))
        return kind, Scenario.parse(f"prcp x{s:.2f}", name=name)
    if kind == "swap" and len(years) > 1:
        target, source = (int(y) for y in rng.choice(years, size=2, replace=False))
        return kind, Scenario.parse(
            f"{', '.join(_CHANGED)} from year {source} from {target}-04-01 to {target}-09-30",
            name=name)
    if kind == "other-world":
        other = world_seed(corpus_seed + 1_000_003, entry.world * 131 + entry.variant)
        year = int(rng.choice(years))
        met = _met(other, size, entry.climate).sel(day=str(year))
        series = pd.DataFrame(
            {v: met[v].mean(("y_met", "x_met")).to_series() for v in _CHANGED})
        return kind, Scenario.from_series(series, name=f"{name}-seed{other}")
    spells = random_weather_scenario(rng, years)
    return "spells", Scenario(spells.changes, name=name)


def _make_one(out: str, entry: dict[str, Any], size: str, corpus_seed: int,
              weather_variants: int) -> dict[str, Any]:
    """Worker: write one cube (if not there yet) and return its manifest record."""
    import warnings

    from .sample import write_world

    e = CorpusEntry(**entry)
    opts = WorldOptions(climate=e.climate, sensor=e.sensor).resolved()
    record = {**e.to_dict(), "size": size, "rotation": opts.rotation,
              "irrigation": opts.irrigation, "scenario": None}
    scenario = None
    if e.variant > 0:
        kind, scenario = variant_scenario(e, size, corpus_seed, weather_variants)
        record["scenario"] = {"kind": kind, "name": scenario.name,
                              "text": str(scenario)[:2000], "file": f"{e.path}/scenario.json"}
    target = Path(out) / e.path
    if not (target / "cube.zarr" / "zarr.json").is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # clipped scenario values are expected here
            write_world(target, seed=e.seed, size=size, scenario=scenario, options=opts,
                        overwrite=True)
    return record


def _write_manifest(out: Path, header: dict[str, Any], records: dict[str, dict]) -> None:
    cubes = [records[k] for k in sorted(records)]
    atomic_write(out / "manifest.json",
                 json.dumps({**header, "cubes": cubes}, indent=1) + "\n")


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a corpus folder.

    Raises
    ------
    CorpusError
        If the folder has no readable ``manifest.json`` of a known version.
    """
    path = Path(folder) / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CorpusError(
            f"{path} cannot be read ({err}); make the corpus with 'kgvsf make-corpus --out "
            f"{folder}'") from None
    if data.get("kgvsf_corpus_version") != MANIFEST_VERSION:
        raise CorpusError(f"{path} is not a kgvsf corpus manifest of version "
                          f"{MANIFEST_VERSION}; re-make it with 'kgvsf make-corpus'")
    return data


def make_corpus(
    out: str | os.PathLike,
    worlds: int,
    weather_variants: int = 0,
    *,
    seed: int = 0,
    climates: Sequence[str] | None = None,
    sensors: Sequence[str] | None = None,
    size: str = "small",
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write (or complete) a corpus; see the module docstring.

    Parameters
    ----------
    out
        Corpus folder.
    worlds, weather_variants
        Number of worlds and of weather variants per world.
    seed
        Corpus seed (world seeds derive from it: :func:`world_seed`).
    climates, sensors
        Names to spread the worlds over (default: all of them).
    size
        World size preset.
    workers
        Worker processes (default: the CPUs this process may use).
    progress
        Show a progress bar.

    Returns
    -------
    pathlib.Path
        The manifest's path.

    Raises
    ------
    CorpusError
        If ``out`` holds a corpus made with other settings (another seed, size, climates or
        sensors); use another folder.
    """
    from tqdm.auto import tqdm

    if size not in SIZES:
        raise CorpusError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    entries = plan(worlds, weather_variants, seed, climates, sensors)
    out = Path(out)
    header = {
        "kgvsf_corpus_version": MANIFEST_VERSION,
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed), "size": size, "weather_variants": int(weather_variants),
        "climates": list(climates or CLIMATES), "sensors": list(sensors or SENSORS),
        "command": f"kgvsf make-corpus --out {out} --worlds {worlds} --weather-variants "
                   f"{weather_variants} --seed {seed} --size {size}",
    }
    records: dict[str, dict] = {}
    if (out / "manifest.json").exists():
        old = read_manifest(out)
        for key in ("seed", "size", "weather_variants", "climates", "sensors",
                    "generator_version"):
            if old.get(key) != header[key]:
                raise CorpusError(
                    f"{out} holds a corpus made with {key}={old.get(key)!r}, not "
                    f"{header[key]!r}; resume with the same settings or use another --out")
        records = {r["path"]: r for r in old.get("cubes", [])
                   if (out / r["path"] / "cube.zarr" / "zarr.json").is_file()}
    out.mkdir(parents=True, exist_ok=True)
    todo = [e for e in entries if e.path not in records]
    workers = workers or len(os.sched_getaffinity(0))
    bar = tqdm(total=len(entries), initial=len(entries) - len(todo), unit="cube",
               desc="make-corpus", disable=not progress)
    try:
        if workers <= 1:
            for e in todo:
                records[e.path] = _make_one(str(out), e.to_dict(), size, seed, weather_variants)
                _write_manifest(out, header, records)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_make_one, str(out), e.to_dict(), size, seed,
                                       weather_variants) for e in todo]
                for fut in as_completed(futures):
                    r = fut.result()
                    records[r["path"]] = r
                    _write_manifest(out, header, records)
                    bar.update()
    finally:
        bar.close()
    _write_manifest(out, header, records)
    return out / "manifest.json"
