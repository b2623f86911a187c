"""The simulator's true what-if answer for one region and a few days: fast enough to wait for.

:func:`kgvsf_explore.world.whatif.counterfactual` re-simulates the whole sample world for all
its years (10-15 s for the shipped cube). The dashboard needs the answer only for the pixels of
the selected region and only up to the last forecast day, and every pixel of the simulator
evolves on its own (the only cross-pixel quantity, the scene-mean rain, drives the clouds,
which the truth does not have). :func:`region_truth` therefore repeats the set-up of
:func:`kgvsf_explore.world.make_world` (same seed streams, fields, weather and scenario
handling) and runs the daily processes on the region's pixels only, from the spin-up to the last
requested day, recording the cloud-free, noise-free reflectance and the soil moisture on exactly
the requested days. A test checks it against ``make_world`` bit for bit on a tiny world.

If ``make_world`` changes the way it draws its world, this module must follow (the test fails).

Served, the runs go to :func:`simulator_pool`, one worker process shared by every session: the
simulator's daily loop is Python-heavy and, on a thread of the server, it held the GIL the
server's event loop needs to talk to the pages (a profile of four busy tabs: two simulator
threads and the forecasts kept the loop waiting on every socket write).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import threading
from collections.abc import Sequence
from typing import Any

import pandas as pd
import xarray as xr

from .. import schema
from ..world.sample import WorldOptions, scenario_weather, world_inputs, world_spec, world_streams
from ..world.simulate import run_processes
from ..world.whatif import options_of, world_of


def is_sample_world(ds: xr.Dataset) -> bool:
    """Whether ``ds`` was made by ``kgvsf make-sample`` (so the simulator can re-run it)."""
    try:
        world_of(ds)
    except Exception:  # noqa: BLE001 - any missing or odd attribute means "no"
        return False
    return not ds.attrs.get("kgvsf_scenario")


def region_truth(ds: xr.Dataset, scenario: Any, rows: slice, cols: slice,
                 days: Sequence[Any]) -> xr.Dataset:
    """True reflectance and soil moisture of a region of a sample world under ``scenario``.

    Parameters
    ----------
    ds
        A sample-world cube (attributes ``kgvsf_seed``, ``kgvsf_size``).
    scenario
        A :class:`~kgvsf_explore.scenario.Scenario` or None (the observed weather).
    rows, cols
        The region as pixel slices of the cube.
    days
        The days to record (any days of the cube's day axis, in any order).

    Returns
    -------
    xarray.Dataset
        ``reflectance`` ``(day, band, y, x)`` (cloud- and noise-free) and ``soil_moisture``
        ``(day, y, x)`` on the requested days, with the cube's coordinates.

    Examples
    --------
    >>> out = region_truth(cube.ds, Scenario.warming(3, "2022-07-02", "2022-08-30"),
    ...                    slice(0, 32), slice(0, 32), ["2022-07-31"])   # doctest: +SKIP
    >>> out.reflectance.dims                                               # doctest: +SKIP
    ('day', 'band', 'y', 'x')
    """
    seed, size = world_of(ds)
    opts = (options_of(ds) or WorldOptions()).resolved()  # as make_world resolves them
    spec = world_spec(seed, size, opts)
    _, rasters, _, met = world_inputs(spec, world_streams(spec), opts)
    met = met.isel(y=rows, x=cols)
    y, x = met["y"].values, met["x"].values
    stored = scenario_weather(met, scenario)
    want = pd.DatetimeIndex([pd.Timestamp(d) for d in days])
    order_days = want.sort_values().unique()
    stored = stored.sel(day=slice(None, order_days[-1]))
    region = {k: (v[:, rows, cols] if k == "crop_by_year" else v[rows, cols])
              for k, v in rasters.items()}
    sim = run_processes(stored, region, order_days, order_days, first_year=spec.years[0])
    ny, nx = len(y), len(x)
    pos = order_days.get_indexer(want)
    refl = sim.reflectance.reshape(len(order_days), len(schema.BANDS), ny, nx)[pos]
    sm = sim.soil_moisture.reshape(len(order_days), ny, nx)[pos]
    return xr.Dataset(
        {"reflectance": (("day", "band", "y", "x"), refl),
         "soil_moisture": (("day", "y", "x"), sm)},
        coords={"day": want, "band": list(schema.BANDS), "y": y, "x": x},
        attrs={"long_name": "simulator truth (cloud- and noise-free)"})


#: Worker processes of the server's simulator pool (shared by all sessions).
SIMULATOR_PROCESSES = 1

_pool: cf.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def simulator_pool() -> cf.ProcessPoolExecutor:
    """The process pool that runs the simulator for served pages (made on first use).

    Processes are spawned, not forked: the server has threads (torch's, tornado's) that a fork
    would copy mid-flight. The first run pays the start of a Python process (a few seconds).
    A worker exits as soon as the server is gone, however it ended (a server stopped by a
    signal never shuts its pool down).
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = cf.ProcessPoolExecutor(SIMULATOR_PROCESSES,
                                           mp_context=mp.get_context("spawn"),
                                           initializer=_exit_with_parent)
        return _pool


def _exit_with_parent() -> None:
    """In a pool worker: end this process once the server that spawned it has ended."""
    def watch() -> None:
        mp.parent_process().join()  # waits on the parent's sentinel (no polling)
        os._exit(0)

    threading.Thread(target=watch, name="kgvsf-orphan-check", daemon=True).start()


def _region_truth_in_process(attrs: dict, scenario: str | None, rows: slice, cols: slice,
                             days: list) -> xr.Dataset:
    """:func:`region_truth` in a pool's worker: the world is re-made from the cube's
    attributes (all it reads of the cube), the scenario from its JSON."""
    from ..scenario import Scenario

    scen = None if scenario is None else Scenario.from_json(scenario)
    return region_truth(xr.Dataset(attrs=attrs), scen, rows, cols, days)


class TruthCache:
    """Region truths of one sample world, per (region, t, forecast period, scenario).

    Holds the observed-weather run of each region and date (shared by every scenario) and the
    last few scenario runs; each covers the days ``t+1 .. t+k_max`` so that a horizon change
    needs no new run.
    """

    def __init__(self, ds: xr.Dataset, size: int = 8,
                 pool: cf.Executor | None = None) -> None:
        self.ds, self.size = ds, size
        #: Where the simulator runs (None: on the calling thread); see :func:`simulator_pool`.
        self.pool = pool
        self._items: dict[tuple, xr.Dataset] = {}

    @staticmethod
    def _key(rows: slice, cols: slice, t: pd.Timestamp, k_max: int, scenario: Any) -> tuple:
        scen = None if scenario is None or scenario.is_identity else scenario.to_json()
        return (rows.start, rows.stop, cols.start, cols.stop, pd.Timestamp(t), k_max, scen)

    def ready(self, rows: slice, cols: slice, t: Any, k_max: int, scenario: Any) -> bool:
        """Whether :meth:`get` would answer without running the simulator."""
        keys = {self._key(rows, cols, t, k_max, None), self._key(rows, cols, t, k_max, scenario)}
        return all(k in self._items for k in keys)

    def _one(self, rows: slice, cols: slice, t: Any, k_max: int, scenario: Any) -> xr.Dataset:
        key = self._key(rows, cols, t, k_max, scenario)
        if key not in self._items:
            days = pd.date_range(pd.Timestamp(t) + pd.Timedelta(days=1), periods=k_max)
            if self.pool is None:
                out = region_truth(self.ds, scenario, rows, cols, days)
            else:
                scen = None if scenario is None or scenario.is_identity else \
                    scenario.to_json()
                out = self.pool.submit(_region_truth_in_process, dict(self.ds.attrs), scen,
                                       rows, cols, list(days)).result()
            if len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = out
        return self._items[key]

    def get(self, rows: slice, cols: slice, t: Any, k_max: int,
            scenario: Any) -> tuple[xr.Dataset, xr.Dataset]:
        """``(observed weather, scenario)`` truths of the region for days ``t+1..t+k_max``."""
        base = self._one(rows, cols, t, k_max, None)
        if scenario is None or scenario.is_identity:
            return base, base
        return base, self._one(rows, cols, t, k_max, scenario)
