"""The dashboard's state and work: a ``param`` class that a notebook or ``panel serve`` drives.

:class:`Explorer` holds what the user chose (region, start date, horizon, weather controls,
clicked pixel) as parameters and what the model answered (:class:`Forecasts`, a pixel
:class:`Trajectory`, the simulator's :class:`TrueAnswer`) as output parameters. Setting a
parameter does the work at once, so the class is tested without a browser; the Panel layout
(:mod:`kgvsf_explore.app._layout`) only draws these outputs.

Work is split by what changed: a new region or start date builds (or reuses) a
:class:`~kgvsf_explore.app.session.RegionSession` (the encoded context); a weather or horizon
change only re-runs the forecast on it; the simulator's truth (slow) runs in a background thread
and only while its toggle is on. Bad input never raises out of a callback: it sets
:attr:`Explorer.status` (shown as an alert) and keeps the last good result.

Served, the page's events are applied in the order the page sent them, on the document's own
thread (Panel's thread pool would apply two quick ones in either order, and the older value
could win); the model work they ask for is queued on the explorer's own worker thread, and its
outputs (``result``, ``status``, ``truth``...) are handed to :meth:`Explorer.set_publisher`'s
function, which applies them on the document's thread (``doc.add_next_tick_callback``), so
plots are never updated from a worker thread. Only the latest request of a moving control is
computed: a request that a newer one overtook while it waited in the queue is dropped, and a
closed explorer (its browser session ended) drops everything still queued.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import param

from .. import schema
from ..errors import KGVSFError
from .controls import WeatherControls
from .inputs import load_calibration, load_weights, open_cube_arg
from .layers import LAYERS, layer_data
from .results import Forecasts, Trajectory, TrueAnswer
from .session import RegionSession, SessionCache, ndvi, with_drivers_in_memory
from .truth import TruthCache, is_sample_world

#: The largest region the dashboard forecasts (pixels); larger ones go through Forecaster.
MAX_REGION_PIXELS = 256 * 256

#: Served, the spinner shows only for work that lasts longer than this (seconds): a quick
#: re-forecast then sends no spinner updates to the page at all.
BUSY_DELAY_S = 0.3

#: The ``weather_year`` value that keeps each year's own weather.
OBSERVED = "observed"

#: Level of the forecast interval a change is read against (the maps fade changes inside it).
INTERVAL_LEVEL = 0.8

#: Served, how many sessions' queued work (forecasts, regions, layers) may run at once in this
#: process: half the cores, at least one. Each computation runs torch on one thread and holds
#: the GIL for the model's Python between its operations; four sessions computing side by side
#: on 2 cores left the server's event loop (which talks to every page) waiting for the GIL at
#: every step, and the pages fell tens of seconds behind. More at once gains nothing on cores
#: already busy. Work waiting for a slot is still dropped if a newer request overtakes it.
WORK_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))


class Explorer(param.Parameterized):
    """Pick a region, change its weather and see KG-VSF's forecasts and embeddings on maps.

    Parameters
    ----------
    cube
        A :class:`~kgvsf_explore.Cube`, a path :func:`~kgvsf_explore.open_cube` reads, an
        ``xarray.Dataset``, or None for the shipped sample cube.
    weights
        A checkpoint folder, a :class:`~kgvsf_explore.Forecaster` or a loaded
        :class:`~kgvsf_explore.models.KGVSF`; None for the shipped weights. Missing weights
        leave the maps working and say why forecasts are off.
    background
        Run the simulator's truth in a background thread (True in the app; tests may prefer
        False, which computes it at once).
    **params
        Initial values of the parameters (``bbox``, ``start``, ``horizon``...).

    Examples
    --------
    >>> from kgvsf_explore.app import Explorer
    >>> ex = Explorer()                                   # the shipped sample and weights
    ... # doctest: +SKIP
    >>> ex.param.update(temp_offset=3.0, rain_scale=0.5)  # re-forecasts at once
    ... # doctest: +SKIP
    >>> float(ex.result.difference.mean()) < 0            # doctest: +SKIP
    True
    >>> ex.servable()                                     # in a notebook: the dashboard
    ... # doctest: +SKIP
    """

    layer = param.Selector(default="true colour", objects=list(LAYERS), label="Map layer",
                           doc="What the overview map shows.")
    bbox = param.NumericTuple(default=None, length=4, allow_None=True,
                              doc="The region (xmin, ymin, xmax, ymax) in the cube's CRS.")
    start = param.CalendarDate(default=None, allow_None=True, label="Start date t (image dates)",
                               doc="Forecast date t, snapped to the last image on or before it.")
    horizon = param.Integer(default=30, label="Horizon k (days ahead)",
                            doc="Days ahead (the model's range).")
    temp_offset = param.Number(default=0.0, softbounds=(-6.0, 6.0), step=0.5,
                               label="Temperature offset (degC)")
    rain_scale = param.Number(default=1.0, bounds=(0.0, None), softbounds=(0.0, 3.0), step=0.05,
                              label="Rain scale (x)")
    srad_scale = param.Number(default=1.0, bounds=(0.0, None), softbounds=(0.5, 1.5), step=0.05,
                              label="Radiation scale (x)")
    drought = param.Boolean(default=False, label="Drought (no rain) in the window")
    drought_window = param.DateRange(default=None, allow_None=True, label="Drought window")
    weather_year = param.Selector(default=OBSERVED, objects=[OBSERVED],
                                  label="Weather of year (forecast period)")
    show_truth = param.Boolean(default=False, label="Show the simulator's true answer")
    fade_inside = param.Boolean(default=True, label="Fade changes inside the 80 % interval",
                                doc="Fade the model's change map where the scenario stays "
                                    "inside the observed-weather forecast's interval.")
    pixel = param.NumericTuple(default=None, length=2, allow_None=True,
                               doc="(x, y) of the pixel whose trajectory is shown.")

    status = param.String(default="", doc="The message shown to the user (empty: none).")
    status_kind = param.Selector(default="info", objects=["info", "success", "warning", "danger"])
    busy = param.Boolean(default=False, doc="True while a computation runs.")
    result = param.Parameter(default=None, doc="The current Forecasts (or None).")
    trajectory = param.Parameter(default=None, doc="The clicked pixel's Trajectory (or None).")
    truth = param.Parameter(default=None, doc="The simulator's TrueAnswer (or None).")
    truth_status = param.String(default="", doc="What the truth pane says while it waits.")
    region = param.NumericTuple(default=None, length=4, allow_None=True,
                                doc="The bounds of the region of ``result`` (the last good box).")
    context = param.Parameter(default=None,
                              doc="(t, region) of the encoded context behind ``result``.")
    embedding = param.Dict(default=None, doc="The region's embedding in PCA false colour "
                                             "(see :meth:`region_embedding`).")
    overview = param.Dict(default=None, doc="The overview map's data for ``layer`` at "
                                            "``start`` (see :meth:`map_layer`).")

    def __init__(self, cube: Any = None, weights: Any = None, *, background: bool = True,
                 **params: Any) -> None:
        super().__init__()
        self.cube = with_drivers_in_memory(open_cube_arg(cube))
        self.model, self.weights_id, self.weights_error = load_weights(weights)
        #: The weights' forecast-interval calibration (None: no intervals on the maps).
        self.calibration = load_calibration(weights, self.weights_id) \
            if self.model is not None else None
        ds = self.cube.ds
        self.times = pd.DatetimeIndex(ds[schema.TIME_DIM].values)
        self.days = pd.DatetimeIndex(ds[schema.DAY_DIM].values)
        self.x = np.asarray(ds[schema.X_DIM].values)
        self.y = np.asarray(ds[schema.Y_DIM].values)
        self.is_sample = is_sample_world(ds)
        cfg = self.model.cfg if self.model is not None else None
        self.k_range = (cfg.k_min, cfg.k_max) if cfg is not None else (1, 60)
        self.sessions = SessionCache(self.model, self.cube) if self.model is not None else None
        self.truths = TruthCache(ds) if self.is_sample else None
        self._lock = threading.RLock()
        self._count_lock = threading.Lock()
        self._publisher: Callable[[Callable[[], None]], None] | None = None
        self._closed = False
        self._latest = 0          # number of the newest forecast request (any kind)
        self._latest_region = 0   # number of the newest region/date request
        self._latest_map = 0      # number of the newest overview request
        self._result: Forecasts | None = None  # result as computed (published later)
        self.last_error = ""
        self._background = background
        self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="kgvsf-truth") \
            if background else None
        self._truth_job: cf.Future | None = None
        self._work: cf.ThreadPoolExecutor | None = None  # served: the model work, in order
        # set while the worker sets a new region's default drought window: only that thread's
        # own change is not a weather change (a control moved meanwhile on the page's thread is)
        self._building = threading.local()
        self._map_cache: dict[tuple, Any] = {}
        self._obs_cache: dict[tuple, pd.Series] = {}
        self.session: RegionSession | None = None
        years = sorted(set(self.days.year))
        self.param.weather_year.objects = [OBSERVED] + years
        self.param.horizon.softbounds = self.k_range
        defaults = {"start": self._default_start(), "bbox": self._default_bbox(),
                    "horizon": min(max(30, self.k_range[0]), self.k_range[1])}
        defaults.update(params)
        with param.parameterized.discard_events(self):
            self.param.update(**defaults)
        self.param.watch(self._on_region, ["bbox", "start"])
        self.param.watch(self._on_weather, ["horizon", "temp_offset", "rain_scale", "srad_scale",
                                            "drought", "drought_window", "weather_year"])
        self.param.watch(self._on_truth_toggle, ["show_truth"])
        self.param.watch(self._on_pixel, ["pixel"])
        self.param.watch(self._on_layer, ["layer", "start"])
        self._on_layer()
        if self.weights_error:
            self._say(self.weights_error, "danger")
        else:
            self._on_region()

    # ------------------------------------------------------------------ defaults and helpers
    def _default_start(self) -> dt.date:
        """Late June of the last year, or the middle of the record."""
        want = pd.Timestamp(f"{self.times[-1].year}-06-30")
        ok = self.times[self.times <= want]
        t = ok[-1] if len(ok) > 3 else self.times[len(self.times) // 2]
        return t.date()

    def _default_bbox(self) -> tuple[float, float, float, float]:
        """A central box of at most 64 x 64 pixels."""
        ny, nx = len(self.y), len(self.x)
        h, w = min(64, ny), min(64, nx)
        r0, c0 = (ny - h) // 2, (nx - w) // 2
        rx, ry = self.cube.res_xy
        ys, xs = self.y[r0:r0 + h], self.x[c0:c0 + w]
        return (float(xs.min() - rx / 2), float(ys.min() - ry / 2),
                float(xs.max() + rx / 2), float(ys.max() + ry / 2))

    def set_publisher(self, publish: Callable[[Callable[[], None]], None] | None) -> None:
        """Route output updates through ``publish`` (None: apply them at once).

        ``publish(fn)`` must call ``fn()`` later on the thread that owns the display, e.g.
        ``doc.add_next_tick_callback`` of a Bokeh document; :func:`kgvsf_explore.app.serve`
        sets it for every browser session.
        """
        self._publisher = publish

    def on_display(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the display's thread (at once without a publisher); nothing once
        closed. For code that changes Bokeh models in response to a control, which Panel may
        run on a worker thread."""
        if self._publisher is None:
            fn()
            return
        self._publisher(lambda: None if self._closed else fn())

    def _emit(self, **values: Any) -> None:
        """Set output parameters, on the display's thread when a publisher is set."""
        if self._publisher is None:
            self.param.update(**values)
            return

        def apply() -> None:
            if not self._closed:
                self.param.update(**values)

        self._publisher(apply)

    def _say(self, text: str, kind: str = "info") -> None:
        if kind == "danger":
            self.last_error = text
        self._emit(status=text, status_kind=kind)

    def _request(self, region: bool = False) -> int:
        """Number a new forecast request (newer requests make older waiting ones stale)."""
        with self._count_lock:
            self._latest += 1
            if region:
                self._latest_region = self._latest
            return self._latest

    def _guard(self, what: str, fn: Callable[[], Any],
               current: Callable[[], bool] | None = None, background: bool = False,
               lock: bool = True) -> Any:
        """Run ``fn``; turn any failure into a message (the server keeps running).

        ``current`` is asked once the lock is held: False drops the work (a newer request
        came meanwhile). Nothing runs once the explorer is closed. ``background`` work runs on
        this explorer's worker thread when served (a publisher is set; requests queue there in
        the order the page sent them) and at once otherwise. ``lock=False`` runs without the
        explorer's lock (work that reads only thread-safe caches, so that the page's thread
        never waits for a forecast).
        """
        if self._closed:
            return None
        if background and self._publisher is not None:
            if self._work is None:
                self._work = cf.ThreadPoolExecutor(1, thread_name_prefix="kgvsf-work")
            try:
                self._work.submit(self._queued, what, fn, current)
            except RuntimeError:  # shut down: the session closed meanwhile
                pass
            return None
        done = self._show_busy()
        try:
            with self._lock if lock else contextlib.nullcontext():
                if self._closed or (current is not None and not current()):
                    return None
                return fn()
        except KGVSFError as err:
            self._say(f"{what}: {err}", "danger")
        except Exception as err:  # noqa: BLE001 - never let a callback take the app down
            self._say(f"{what} failed ({type(err).__name__}): {err}", "danger")
        finally:
            done()
        return None

    def _queued(self, what: str, fn: Callable[[], Any],
                current: Callable[[], bool] | None) -> Any:
        """Run queued work on the worker once one of the process's :data:`WORK_SLOTS` is free
        (``current`` is asked after the wait)."""
        with WORK_SLOTS:
            return self._guard(what, fn, current)

    def _show_busy(self) -> Callable[[], None]:
        """Set :attr:`busy` for a piece of work; returns the function that ends it.

        Without a publisher (tests, notebooks) ``busy`` is set at once; served, only once the
        work has lasted :data:`BUSY_DELAY_S`, so quick work sends the page no spinner updates.
        """
        if self._publisher is None:
            self._emit(busy=True)
            return lambda: self._emit(busy=False)
        state = {"shown": False, "done": False}

        def show() -> None:
            with self._count_lock:  # queue under the lock: "on" can never follow "off"
                if not state["done"]:
                    state["shown"] = True
                    self._publisher(on)

        def on() -> None:
            # work that ended before this reaches the page shows no spinner: "on" and "off"
            # in one batch cost the page a second message half a second later (Panel defers
            # a second change of a pane within one document hold)
            if not state["done"] and not self._closed:
                self.param.update(busy=True)

        timer = threading.Timer(BUSY_DELAY_S, show)
        timer.daemon = True
        timer.start()

        def done() -> None:
            timer.cancel()
            with self._count_lock:
                state["done"] = True
                if state["shown"]:
                    self._emit(busy=False)

        return done

    @property
    def controls(self) -> WeatherControls:
        """The weather controls' values."""
        window = None
        if self.drought and self.drought_window is not None:
            window = tuple(self.drought_window)
        year = None if self.weather_year == OBSERVED else int(self.weather_year)
        return WeatherControls(self.temp_offset, self.rain_scale, self.srad_scale, window, year)

    def scenario(self) -> Any:
        """The :class:`~kgvsf_explore.Scenario` of the controls for the current session."""
        if self.session is None:
            return None
        return self.controls.scenario(self.session.t, self.session.k_max)

    def region_slices(self) -> tuple[slice, slice]:
        """The rows and columns of :attr:`bbox`, or a :class:`KGVSFError` saying why not."""
        from ..errors import RegionError
        from ..inference.tiles import region_slices

        if self.bbox is None:
            raise RegionError("no region: draw a box on the map")
        xmin, ymin, xmax, ymax = (float(v) for v in self.bbox)
        if not (xmin < xmax and ymin < ymax):
            raise RegionError(f"empty box ({xmin:.0f}, {ymin:.0f}, {xmax:.0f}, {ymax:.0f}): "
                              "drag a box with some width and height")
        cx0, cy0, cx1, cy1 = self.cube.bounds
        if xmax <= cx0 or xmin >= cx1 or ymax <= cy0 or ymin >= cy1:
            raise RegionError(f"the box ({xmin:.0f}, {ymin:.0f}, {xmax:.0f}, {ymax:.0f}) lies "
                              f"outside the cube ({cx0:.0f}, {cy0:.0f}, {cx1:.0f}, {cy1:.0f})")
        rows, cols = region_slices(self.cube, (xmin, ymin, xmax, ymax))
        n = (rows.stop - rows.start) * (cols.stop - cols.start)
        if n > MAX_REGION_PIXELS:
            side = int(MAX_REGION_PIXELS ** 0.5)
            raise RegionError(f"the region has {n} pixels; the dashboard forecasts up to "
                              f"{MAX_REGION_PIXELS} ({side} x {side}). Draw a smaller box, or "
                              "use Forecaster.forecast for large regions")
        return rows, cols

    # ------------------------------------------------------------------ callbacks
    def _on_region(self, *events: Any) -> None:
        if self._closed:
            return
        if self.model is None:
            self._say(self.weights_error, "danger")
            return
        start = self.start
        if start is None:
            self._say("pick a start date", "warning")
            return
        n = int((self.times <= pd.Timestamp(start)).sum())
        if n == 0:
            self._say(f"no image on or before {start}: the cube's first image is "
                      f"{self.times[0].date()}; the model needs at least one past image",
                      "danger")
            return
        t = self.times[n - 1].date()
        if t != start:
            self.start = t  # snap to the image date: the watcher runs again with it
            return

        number = self._request(region=True)

        def build() -> None:
            rows, cols = self.region_slices()
            session = self.sessions.get(start, rows, cols)
            lo, hi = (pd.Timestamp(d) for d in self.controls.period(session.t, session.k_max))
            window = self.drought_window
            if window is None or pd.Timestamp(window[1]) < lo or pd.Timestamp(window[0]) > hi:
                self._building.active = True  # a new default window, not a weather change
                try:
                    self.drought_window = (lo.date(), min(hi, lo + pd.Timedelta(days=29)).date())
                finally:
                    self._building.active = False
            self._forecast(session)  # the new region replaces the old one only if this works
            if self.pixel is not None:
                self._update_trajectory(quiet=True)
            if number == self._latest_region:  # not yet overtaken: its embedding too
                self._emit(embedding=self.region_embedding())

        self._guard("region", build, lambda: number == self._latest_region, background=True)

    def _on_weather(self, *events: Any) -> None:
        if self.session is None or self._closed or getattr(self._building, "active", False):
            return
        number = self._request()

        def run() -> None:
            self._forecast()
            if self.pixel is not None:
                self._update_trajectory()

        self._guard("forecast", run, lambda: number == self._latest, background=True)

    def _on_truth_toggle(self, *events: Any) -> None:
        if self._closed:
            return
        if self.show_truth:
            self._schedule_truth()
        else:
            self._emit(truth=None, truth_status="")

    def _on_layer(self, *events: Any) -> None:
        """Compute the overview map's layer (served: on the worker thread, newest only)."""
        with self._count_lock:
            self._latest_map += 1
            number = self._latest_map
        self._guard("map layer", lambda: self._emit(overview=self.map_layer()),
                    lambda: number == self._latest_map, background=True)

    def _on_pixel(self, *events: Any) -> None:
        if self.pixel is None:
            self._emit(trajectory=None)
            return
        self._guard("pixel", self._update_trajectory, background=True)

    # ------------------------------------------------------------------ work
    def _forecast(self, session: RegionSession | None = None) -> None:
        """Forecast with ``session`` (default: the current one), which becomes current."""
        session = session or self.session
        assert session is not None
        t0 = time.perf_counter()
        (h,) = session.check_horizons([self.horizon])
        scen = self.controls.scenario(session.t, session.k_max)
        base = session.baseline([h])[0]
        out = session.forecast([h], scen)[0] if scen is not None else base
        bands = self.model.cfg.bands
        y, x = session.coords()
        notes = list(self.controls.notes(session.t, session.k_max))
        notes += session.warnings if scen is not None else []
        notes += session.band_notes
        nd_base, nd_out = ndvi(base, bands), ndvi(out, bands)
        inside = None
        if self.calibration is not None and scen is not None:
            from ..inference.intervals import pixel_bounds

            lo, hi = pixel_bounds(self.calibration, nd_base, "ndvi", h,
                                  session.t + pd.Timedelta(days=h), session.anchor_age(),
                                  INTERVAL_LEVEL)
            inside = (nd_out >= lo) & (nd_out <= hi)
        result = Forecasts(session.t, h, x, y, base, out, nd_base, nd_out,
                           str(scen) if scen is not None else "observed weather",
                           time.perf_counter() - t0, notes, inside,
                           INTERVAL_LEVEL if inside is not None else None)
        self.session = session
        self._result = result
        rx, ry = self.cube.res_xy
        region = (float(x.min() - abs(rx) / 2), float(y.min() - abs(ry) / 2),
                  float(x.max() + abs(rx) / 2), float(y.max() + abs(ry) / 2))
        self.last_error = ""
        self._emit(result=result, region=region, context=(session.t, region),
                   status="; ".join(notes),
                   status_kind="warning" if notes else "info")
        if self.show_truth:
            self._schedule_truth()

    def _update_trajectory(self, quiet: bool = False) -> None:
        """The clicked pixel's trajectory (``quiet``: a pixel outside the region is dropped
        without a message, as after a region change)."""
        session = self.session
        if session is None or self.pixel is None:
            return
        px, py = (float(v) for v in self.pixel)
        col = int(np.abs(self.x - px).argmin())
        row = int(np.abs(self.y - py).argmin())
        if not (session.rows.start <= row < session.rows.stop
                and session.cols.start <= col < session.cols.stop):
            if not quiet:
                self._say(f"the pixel ({px:.0f}, {py:.0f}) lies outside the region; click "
                          "inside the forecast maps", "warning")
            self._emit(trajectory=None)
            return
        scen = self.scenario()
        scens = {"observed": None} if scen is None else {"observed": None, "scenario": scen}
        ks = list(range(self.k_range[0], session.k_max + 1))
        refl = session.pixel_forecast(row, col, ks, list(scens.values()))  # (S, K, band)
        bands = list(self.model.cfg.bands)
        nir, red = refl[..., bands.index("B08")], refl[..., bands.index("B04")]
        nd = (nir - red) / (nir + red)
        ddays = session.driver_days()
        names = list(self.model.cfg.drivers)
        prcp, tmax = {}, {}
        for name, s in scens.items():
            d = session.tile_drivers_at(row, col, s)
            prcp[name] = d[:, names.index("prcp")]
            tmax[name] = d[:, names.index("tmax")]
        self._emit(trajectory=Trajectory(
            float(self.x[col]), float(self.y[row]), row, col, session.t,
            pd.DatetimeIndex([session.t + pd.Timedelta(days=k) for k in ks]),
            {n: nd[i] for i, n in enumerate(scens)}, self._observed(row, col, session),
            ddays, prcp, tmax))

    def _observed(self, row: int, col: int, session: RegionSession) -> pd.Series:
        """Observed NDVI of a pixel from 120 days before t to the end of the forecast."""
        key = (row, col, session.t, session.k_max)
        if key not in self._obs_cache:
            lo = session.t - pd.Timedelta(days=120)
            hi = session.t + pd.Timedelta(days=session.k_max)
            sel = self.cube.ds[["B04", "B08"]].isel(y=row, x=col).sel(time=slice(lo, hi))
            sel = sel.compute()
            red, nir = sel["B04"].values, sel["B08"].values
            with np.errstate(invalid="ignore", divide="ignore"):
                s = pd.Series((nir - red) / (nir + red), index=pd.DatetimeIndex(sel.time.values))
            self._obs_cache[key] = s.dropna()
        return self._obs_cache[key]

    # ------------------------------------------------------------------ truth
    def _truth_request(self) -> tuple | None:
        if self.session is None or self._result is None:
            return None
        s = self.session
        return (s.rows, s.cols, s.t, s.k_max, self.scenario(), self._result.horizon)

    def _schedule_truth(self) -> None:
        if not self.is_sample:
            self._emit(truth=None, truth_status=(
                "the simulator's answer exists only for sample worlds made by "
                "`kgvsf make-sample` (this cube has no kgvsf_seed attribute)"))
            return
        req = self._truth_request()
        if req is None:
            return
        if self.truths.ready(*req[:5]):
            self._set_truth(req)
            return
        self._emit(truth_status="the simulator is re-running this region under the "
                                "scenario (a few seconds)...")
        if self._pool is None:
            self._set_truth(req)
        else:
            self._truth_job = self._pool.submit(self._set_truth, req)

    def _set_truth(self, req: tuple) -> None:
        rows, cols, t, k_max, scen, horizon = req
        t0 = time.perf_counter()
        try:
            base, out = self.truths.get(rows, cols, t, k_max, scen)
        except Exception as err:  # noqa: BLE001 - shown in the pane, not raised in a thread
            self._emit(truth=None, truth_status=f"the simulator failed: {err}")
            return
        if self._closed or self._truth_request() != req:  # the user moved on meanwhile
            return
        bands = list(schema.BANDS)
        answer = TrueAnswer(t + pd.Timedelta(days=horizon), pd.DatetimeIndex(base.day.values),
                            base.x.values, base.y.values, ndvi(base.reflectance.values, bands),
                            ndvi(out.reflectance.values, bands), time.perf_counter() - t0)
        self._emit(truth=answer, truth_status="")

    def wait(self, timeout: float = 120.0) -> None:
        """Wait for the queued work and a background truth computation (tests, notebooks)."""
        if self._work is not None and not self._closed:
            self._work.submit(lambda: None).result(timeout=timeout)
        job = self._truth_job
        if job is not None:
            job.result(timeout=timeout)

    # ------------------------------------------------------------------ maps
    def map_layer(self) -> dict[str, Any]:
        """Data of the overview map for :attr:`layer` at the current date (cached).

        Returns a dict with ``kind`` (``"rgb"``, ``"image"``, ``"classes"`` or ``"message"``),
        ``x``, ``y`` and the values.
        """
        start = pd.Timestamp(self.start) if self.start is not None else self.times[-1]
        key = (self.layer, start)
        if key not in self._map_cache:
            out = self._guard(f"map layer {self.layer!r}",
                              lambda: layer_data(self.cube, self.layer, start, self.sessions),
                              lock=False)
            if out is None:
                return {"kind": "message", "text": self.last_error}
            if len(self._map_cache) > 16:
                self._map_cache.clear()
            self._map_cache[key] = out
        return self._map_cache[key]

    def region_embedding(self) -> dict[str, Any] | None:
        """PCA false colour of the region's embedding (None without a session)."""
        if self.session is None:
            return None
        y, x = self.session.coords()
        return {"x": x, "y": y, "values": self.session.embedding_rgb(),
                "title": "region embedding (PCA RGB)"}

    # ------------------------------------------------------------------ display
    def panel(self) -> Any:
        """The dashboard as a Panel layout (one per browser session or notebook cell)."""
        from ._layout import build

        return build(self)

    def servable(self, title: str = "KG-VSF explorer") -> Any:
        """Mark the dashboard servable (``panel serve``) and return it."""
        return self.panel().servable(title=title)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.panel()._repr_mimebundle_(include, exclude)

    def close(self) -> None:
        """Drop all queued and future work and stop the background thread (session ended)."""
        self._closed = True
        for pool in (self._pool, self._work):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
