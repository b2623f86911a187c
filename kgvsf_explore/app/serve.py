"""Serve the dashboard: one :class:`Explorer` per browser session, one cube and model per server.

``kgvsf serve`` calls :func:`serve`; ``panel serve kgvsf_explore/app/serve.py`` works too (the
cube and weights then come from ``$KGVSF_CUBE`` and ``$KGVSF_WEIGHTS``). The cube and the
network are loaded once and shared read-only by all sessions; each session keeps its own
parameters, encoded contexts and results. Page events run on the server's event loop, in the
order each page sent them (no ``pn.config.nthreads``: Panel's thread pool applies a session's
quick events in any order); each session's model work runs on its own worker thread
(:class:`Explorer`), so one session's forecast does not hold up the others' events.

Security: :func:`serve` listens on 127.0.0.1 (this machine) unless told otherwise, and warns
when it is. Panel's ``/components/<module>/...`` route imports the module the URL names (any
installed module, before any origin check); :func:`serve` puts a stricter handler in front of
it that serves only modules already imported from :data:`COMPONENT_PACKAGES`, so a URL can
never import anything. ``panel serve kgvsf_explore/app/serve.py`` keeps Panel's own route.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from typing import Any

#: Packages whose (already imported) components may have resources served under /components/.
COMPONENT_PACKAGES = ("panel", "panel_material_ui", "bokeh", "holoviews", "kgvsf_explore")
#: Addresses that reach this machine only.
LOOPBACK = ("127.0.0.1", "localhost", "::1")

#: A closed tab's session is destroyed (and its queued work dropped) this long after it goes
#: (Bokeh's default is 15 s, checked every 17 s).
UNUSED_SESSION_MS = 5000
CHECK_UNUSED_MS = 2000

#: The interpreter's thread switch interval when serving (seconds; Python's default 0.005).
SWITCH_INTERVAL_S = 0.001

_shared: dict[tuple, tuple[Any, Any]] = {}


class ClosedTabFilter(logging.Filter):
    """Drop asyncio's report of a write to a browser tab that has just closed.

    When a tab closes while the server is sending it an update, tornado's ``write_message``
    task fails with ``WebSocketClosedError`` and nobody awaits it, so asyncio logs "Task
    exception was never retrieved" with two tracebacks. The message is harmless (tornado's
    maintainers say so: tornadoweb/tornado#2568, holoviz/panel#3341) but reads like a crash in
    the terminal of ``kgvsf serve``. Every other asyncio error still gets through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        try:
            from tornado.iostream import StreamClosedError
            from tornado.websocket import WebSocketClosedError
        except ImportError:  # pragma: no cover - tornado comes with bokeh
            return True
        return not isinstance(exc, (WebSocketClosedError, StreamClosedError))


def quiet_closed_tabs() -> None:
    """Install :class:`ClosedTabFilter` on the ``asyncio`` logger (once)."""
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, ClosedTabFilter) for f in log.filters):
        log.addFilter(ClosedTabFilter())
_shared_lock = threading.Lock()


def component_route() -> tuple[str, type, dict]:
    """A tornado route for ``/components/...`` that never imports a module named in a URL.

    Panel's :class:`~panel.io.server.ComponentResourceHandler` calls
    ``importlib.import_module`` on the first path segment; this subclass first refuses (404)
    any module that is not already imported or not in :data:`COMPONENT_PACKAGES`. Put in
    ``extra_patterns``, it comes before Panel's own route, and tornado takes the first match.
    """
    from panel.io.resources import COMPONENT_PATH
    from panel.io.server import ComponentResourceHandler
    from tornado.web import HTTPError

    class LoadedComponentHandler(ComponentResourceHandler):
        def parse_url_path(self, path: str) -> str:
            module = path.split("/", 1)[0]
            if module not in sys.modules or module.split(".")[0] not in COMPONENT_PACKAGES:
                raise HTTPError(404, reason="Not a loaded component module")
            return super().parse_url_path(path)

    return (f"/{COMPONENT_PATH}(.*)", LoadedComponentHandler, {})


def shared_inputs(cube: Any = None, weights: Any = None) -> tuple[Any, Any]:
    """The cube and weights every session of this process shares (loaded on first use).

    Returns ``(cube, weights)`` ready for :class:`Explorer`: the cube opened with its drivers in
    memory, and a :class:`~kgvsf_explore.Forecaster` when the weights load (else the path, so
    each session shows why forecasts are off).
    """
    from ..forecaster import Forecaster
    from .inputs import load_weights, open_cube_arg
    from .session import with_drivers_in_memory

    key = (str(cube) if cube is not None else None, str(weights) if weights is not None else None)
    with _shared_lock:
        if key not in _shared:
            c = with_drivers_in_memory(open_cube_arg(cube))
            model, sha, error = load_weights(weights)
            w = weights if error else Forecaster(model, sha)
            _shared[key] = (c, w)
        return _shared[key]


class PreparedPages:
    """A dashboard built ahead of time for the next browser session.

    Building a page (the explorer encodes the default region's context and forecasts it; Panel
    and Bokeh make a few hundred models) takes about a second of server time on 2 cores,
    before the browser gets anything. Every page starts on the same default region and date,
    so one is kept ready: a new session takes it and the next one is built in a background
    thread :data:`PREPARE_DELAY_S` later (on one core: torch runs one thread when served, so
    the browser keeps the other). A session that finds the spare still being built waits for
    it; one that finds none (pages opened faster than they are built) builds its own.
    """

    def __init__(self, cube: Any = None, weights: Any = None) -> None:
        self.cube, self.weights = cube, weights
        self._lock = threading.Lock()
        self._ready: tuple[Any, Any] | None = None
        self._building: threading.Event | None = None  # set when the build in progress ends

    def build(self) -> tuple[Any, Any]:
        """A fresh ``(explorer, layout)`` on the shared cube and weights."""
        from .explorer import Explorer

        c, w = shared_inputs(self.cube, self.weights)
        ex = Explorer(c, w)
        return ex, ex.panel()

    def prepare(self) -> None:
        """Build the spare now (a no-op when one is ready or being built)."""
        with self._lock:
            if self._ready is not None or self._building is not None:
                return
            done = self._building = threading.Event()
        try:
            item = self.build()
            with self._lock:
                self._ready = item
        finally:
            with self._lock:
                self._building = None
            done.set()

    def take(self, wait_s: float = 10.0) -> tuple[Any, Any]:
        """The spare (waiting for one being built, which is sooner than a new build, or
        building one now); the next spare is built :data:`PREPARE_DELAY_S` later."""
        with self._lock:
            building = self._building
        if building is not None:
            building.wait(wait_s)
        with self._lock:
            item, self._ready = self._ready, None
        timer = threading.Timer(PREPARE_DELAY_S, self._prepare_quietly)
        timer.daemon = True
        timer.start()
        return item if item is not None else self.build()

    def _prepare_quietly(self) -> None:
        try:
            self.prepare()
        except Exception:  # noqa: BLE001 - the next session builds its own page and says why
            logging.getLogger(__name__).exception("preparing the next dashboard failed")


#: Seconds between a session taking the prepared dashboard and the next one being built.
PREPARE_DELAY_S = 0.5

_prepared: dict[tuple, PreparedPages] = {}


def prepared_pages(cube: Any = None, weights: Any = None) -> PreparedPages:
    """The :class:`PreparedPages` of this cube and weights (one per server process)."""
    key = (str(cube) if cube is not None else None, str(weights) if weights is not None else None)
    with _shared_lock:
        if key not in _prepared:
            _prepared[key] = PreparedPages(cube, weights)
        return _prepared[key]


def session_app(cube: Any = None, weights: Any = None) -> Any:
    """The dashboard for one browser session (its own :class:`Explorer`).

    Served, the page is the one :class:`PreparedPages` built ahead, if it is ready.
    """
    import panel as pn

    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:  # not served: nothing to prepare for
        return prepared_pages(cube, weights).build()[1]
    ex, layout = prepared_pages(cube, weights).take()
    from ._layout import page_beat

    ex.set_publisher(document_publisher(doc, page_beat(layout)))
    if ex.truths is not None:  # the simulator's loop off the server's GIL
        from .truth import simulator_pool

        ex.truths.pool = simulator_pool()
    pn.state.on_session_destroyed(lambda _ctx: ex.close())
    return layout


def document_publisher(doc: Any, beat: Any = None) -> Any:
    """A publisher for :meth:`Explorer.set_publisher`: batches applied on ``doc``'s thread.

    See :class:`~kgvsf_explore.app.pacing.DisplayPublisher`; ``beat`` is the page's
    :class:`~kgvsf_explore.app.pacing.PageBeat` (one batch in flight per page), None sends
    each batch as soon as it is ready.
    """
    from .pacing import DisplayPublisher

    return DisplayPublisher(doc, beat)


def serve(cube: Any = None, weights: Any = None, *, port: int = 5006, show: bool = True,
          address: str | None = "127.0.0.1", threaded: bool = False,
          torch_threads: int | None = 1, blas_threads: int | None = 1,
          **kwargs: Any) -> Any:
    """Serve the dashboard (blocks unless ``threaded``).

    Parameters
    ----------
    cube
        A cube path (default: the shipped sample).
    weights
        A checkpoint folder (default: the shipped weights).
    port
        TCP port; 0 picks a free one.
    show
        Open a browser tab.
    address
        Address to listen on (default 127.0.0.1: this machine only). Any other address (None:
        every interface) gives a warning: the dashboard has no login, and anyone who can reach
        the port can use it.
    threaded
        Run the server in a background thread and return it (``.stop()`` ends it).
    torch_threads
        Torch intra-op threads of this process (None: torch's default). One thread per
        computation lets sessions run side by side on the callback threads; with several
        OpenMP threads per computation, concurrent sessions (or other work on the machine)
        oversubscribe the cores and latencies become erratic (see ``docs/dashboard.md``).
    blas_threads
        Threads of numpy's BLAS in this process (None: its default, one per core). The region
        embedding's PCA (a small ``eigh``) took 400 ms with two OpenBLAS threads contending
        with torch's on 2 cores, against 30 ms with one (``docs/dashboard.md``).
    **kwargs
        Passed to :func:`panel.serve`.

    Returns
    -------
    The Panel server (or its thread when ``threaded``).
    """
    import panel as pn

    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    if blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(blas_threads, user_api="blas")
    # the event loop gives up the GIL at every socket write; with forecasts running on other
    # threads it waited the whole switch interval (5 ms by default) to get it back each time
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    if address not in LOOPBACK:
        warnings.warn(
            f"the dashboard listens on {address or 'every interface'}: anyone who can reach "
            f"port {port} of this machine can use it (there is no login). Use the default "
            "address 127.0.0.1 unless you need access from elsewhere", UserWarning, stacklevel=2)
    shared_inputs(cube, weights)  # load once, before the first browser arrives
    from ._layout import _ensure_extensions

    _ensure_extensions()  # on this thread, before any page is built on another
    prepared_pages(cube, weights).prepare()  # the first page is ready when the browser opens
    quiet_closed_tabs()
    pn.config.nthreads = None  # no pool: events in order; the model work has its own threads
    # an empty pane (the truth before it is asked for) is all-NaN on purpose
    warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
    if "websocket_origin" not in kwargs and port:
        hosts = ["localhost", "127.0.0.1"] + ([address] if address else [])
        kwargs["websocket_origin"] = [f"{h}:{port}" for h in hosts]
    kwargs["extra_patterns"] = [component_route(), *kwargs.get("extra_patterns", [])]
    kwargs.setdefault("unused_session_lifetime_milliseconds", UNUSED_SESSION_MS)
    kwargs.setdefault("check_unused_sessions_milliseconds", CHECK_UNUSED_MS)
    return pn.serve({"/": lambda: session_app(cube, weights)}, port=port, show=show,
                    address=address, threaded=threaded, title="KG-VSF explorer", **kwargs)


if __name__.startswith("bokeh"):  # `panel serve kgvsf_explore/app/serve.py` runs this file
    from kgvsf_explore.app.serve import quiet_closed_tabs as _quiet
    from kgvsf_explore.app.serve import session_app as _session_app  # the package, not a script

    _quiet()

    _session_app(os.environ.get("KGVSF_CUBE"), os.environ.get("KGVSF_WEIGHTS")).servable(
        title="KG-VSF explorer")
