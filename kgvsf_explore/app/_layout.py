"""The Panel layout of an :class:`~kgvsf_explore.app.explorer.Explorer`: widgets and panes.

Only drawing happens here. The forecast maps and the region embedding are Bokeh figures
(:mod:`._maps`) built once per page: one watcher of the explorer's outputs replaces their data,
colour ranges and titles in place, so a weather or horizon change sends the page a small patch
and the axes (and so a zoom) stay; a region of another extent refits the axes and frames to its
shape. The four maps share their ranges (zoom one, all follow); clicking one picks the
trajectory pixel. The overview map (:class:`._maps.OverviewMap`, its layer computed on the
explorer's worker thread and drawn in place) carries a box-select tool whose bounds become
``Explorer.bbox``; its axes stay on the cube.

The sliders send their value when released (``value_throttled``; each key press when moved by
keyboard), and the explorer computes only the newest request, so a dragged slider costs one
forecast.
"""

from __future__ import annotations

import datetime as dt
import html
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import panel as pn
from bokeh.layouts import row

from . import _maps, _plots
from .explorer import OBSERVED
from .pacing import PageBeat

if TYPE_CHECKING:
    from .explorer import Explorer

SIDEBAR_WIDTH = 300
PANE = 260
#: Milliseconds Panel waits after a page event before it runs the widget's watchers (Panel's
#: default, 50, merges the events that follow). Our controls send one event per action (the
#: sliders on release or key press, the region on Enter), so that wait was pure latency:
#: about 45 ms of each slider step's 190 ms in the browser (measured, 128 x 128).
EVENT_DELAY_MS = 0
OVERVIEW_WIDTH = 340


def _ensure_extensions() -> None:
    import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh backend)

    if "holoviews" not in getattr(pn.extension, "_loaded_extensions", []):
        pn.extension()


def _widgets(ex: Explorer) -> list[Any]:
    w = pn.widgets
    dates = [t.date() for t in ex.times]
    k0, k1 = ex.k_range
    years = {"each year's own": OBSERVED}
    years.update({str(y): y for y in ex.param.weather_year.objects if y != OBSERVED})
    day0, day1 = ex.days[0].date(), ex.days[-1].date()
    widgets = [
        w.Select.from_param(ex.param.layer, width=SIDEBAR_WIDTH - 20),
        w.DatePicker.from_param(ex.param.start, enabled_dates=dates, start=dates[0], end=dates[-1],
                                width=SIDEBAR_WIDTH - 20),
        _throttled(ex, "horizon", w.IntSlider, start=k0, end=k1, step=1),
        pn.pane.Markdown("**Weather after t** (the context keeps the observed weather)",
                         margin=(10, 5, 0, 5)),
        _throttled(ex, "temp_offset", w.FloatSlider, start=-6.0, end=6.0, step=0.5),
        _throttled(ex, "rain_scale", w.FloatSlider, start=0.0, end=3.0, step=0.05),
        _throttled(ex, "srad_scale", w.FloatSlider, start=0.5, end=1.5, step=0.05),
        w.Checkbox.from_param(ex.param.drought),
        _drought_slider(ex, day0, day1),
        w.Select.from_param(ex.param.weather_year, options=years, width=SIDEBAR_WIDTH - 20),
        w.Checkbox.from_param(ex.param.show_truth, disabled=not ex.is_sample),
        w.Checkbox.from_param(ex.param.fade_inside, disabled=ex.calibration is None),
    ]
    for widget in widgets:  # not the drought window's slider: it sends every drag step
        if isinstance(widget, (w.Select, w.DatePicker, w.IntSlider, w.FloatSlider, w.Checkbox)):
            _prompt(widget)
    return widgets


def _prompt(widget: pn.widgets.Widget) -> pn.widgets.Widget:
    """Run ``widget``'s watchers as soon as its page event arrives (:data:`EVENT_DELAY_MS`).

    Sets Panel's ``Syncable._debounce`` on the instance. It is a private attribute: a Panel
    release without it would ignore the setting and only bring the 50 ms back.
    """
    widget._debounce = EVENT_DELAY_MS
    return widget


def _throttled(ex: Explorer, name: str, cls: type, **kw: Any) -> pn.widgets.Widget:
    """A slider that sets ``ex.<name>`` on release (or key press), not at every drag step."""
    widget = cls(label=ex.param[name].label, value=getattr(ex, name), width=SIDEBAR_WIDTH - 20,
                 **kw)
    own = threading.local()  # set while this widget's own value is being applied

    def released(event: Any) -> None:
        own.active = True
        try:
            setattr(ex, name, event.new)
        finally:
            own.active = False

    def set_from_code(event: Any) -> None:
        # not an echo of the widget's own value: sent back, it could arrive after the next
        # key press and move the page's slider back a step
        if not getattr(own, "active", False) and widget.value != event.new:
            widget.value = event.new

    widget.param.watch(released, "value_throttled")
    ex.param.watch(set_from_code, name)
    return widget


def _drought_slider(ex: Explorer, day0: dt.date, day1: dt.date) -> pn.widgets.DateRangeSlider:
    """The drought window's slider, bounded by the forecast period of the current region."""
    def period() -> tuple[dt.date, dt.date]:
        if ex.session is None:
            return day0, day1
        lo, hi = ex.controls.period(ex.session.t, ex.session.k_max)
        return dt.date.fromisoformat(lo), dt.date.fromisoformat(hi)

    lo, hi = period()
    slider = pn.widgets.DateRangeSlider.from_param(ex.param.drought_window, start=lo, end=hi,
                                                   step=1, width=SIDEBAR_WIDTH - 20)

    def follow(event: Any) -> None:
        bounds = period()
        if (slider.start, slider.end) != bounds:
            slider.param.update(start=bounds[0], end=bounds[1])

    ex.param.watch(follow, "result")
    return slider


def _region_input(ex: Explorer) -> pn.Column:
    """A text box mirroring the region (type coordinates instead of drawing)."""
    def text(bbox: Any) -> str:
        return "" if bbox is None else ", ".join(f"{v:.0f}" for v in bbox)

    box = _prompt(pn.widgets.TextInput(value=text(ex.bbox), width=SIDEBAR_WIDTH - 20,
                                       css_classes=["kgvsf-region"]))

    # served, Panel runs one session's widget events on a thread pool: two quickly typed
    # boxes may be applied in either order. Typed boxes are applied one at a time, and only
    # while they are still the box's text, so the last one typed is the one that stays.
    lock = threading.Lock()
    in_typed = threading.local()

    def typed(event: Any) -> None:
        try:
            vals = tuple(float(v) for v in event.new.replace(";", ",").split(","))
            if len(vals) != 4:
                raise ValueError
        except ValueError:
            ex.param.update(status=f"region {event.new!r}: write four numbers "
                                   "xmin, ymin, xmax, ymax", status_kind="danger")
            return
        with lock:
            if box.value != event.new:
                return  # a newer box was typed meanwhile: it wins
            in_typed.active = True
            try:
                ex.bbox = vals
            finally:
                in_typed.active = False

    box.param.watch(typed, "value")

    def echo(event: Any) -> None:
        # a region drawn on the map is written into the box; a typed one is already there,
        # and a stale echo (the region moved on while a slow forecast ran) must not
        # overwrite what the user typed since
        if getattr(in_typed, "active", False):
            return
        if ex.bbox == event.new and box.value != text(event.new):
            box.value = text(event.new)

    ex.param.watch(echo, "bbox")
    label = pn.pane.Markdown("Region xmin, ymin, xmax, ymax (or drag a box on the map)",
                             margin=(5, 10, 0, 10))
    return pn.Column(label, box, margin=0)


def _overview(ex: Explorer) -> pn.pane.Bokeh:
    """The overview map: the layer of ``ex.overview``, the region box; a dragged box becomes
    ``ex.bbox`` (a rejected box moves neither the magenta box nor the axes)."""
    def picked(x0: float, y0: float, x1: float, y1: float) -> None:
        ex.bbox = (x0, y0, x1, y1)

    ov = _maps.OverviewMap(ex.cube.bounds, OVERVIEW_WIDTH, on_box=picked)
    ov.show(ex.overview or ex.map_layer())
    ov.show_region(ex.region)
    ex.param.watch(lambda e: ov.show(e.new), "overview")
    ex.param.watch(lambda e: ov.show_region(e.new), "region")
    ov.figure.css_classes = ["kgvsf-overview"]
    return pn.pane.Bokeh(ov.figure)


def _limit(*maps: np.ndarray | None) -> float:
    """Half-width of a change map's colour range: the 99th percentile of ``|change|``."""
    finite = np.concatenate([np.abs(m[np.isfinite(m)]) for m in maps if m is not None])
    return max(float(np.percentile(finite, 99)) if finite.size else 0.0, 0.01)


def _show_forecasts(maps: _maps.ForecastMaps, ex: Explorer) -> None:
    """Put ``ex.result`` (and the truth) on the four maps; a new extent refits the axes."""
    result = ex.result
    if result is None:
        return
    if _maps.extent(result.x, result.y) != maps.extent:
        maps.fit(result.x, result.y)  # a new region; otherwise the zoom stays
    x, y, m = result.x, result.y, maps.maps
    target = f"t+{result.horizon} ({result.target.date()})"
    m["baseline"].show(x, y, result.ndvi_baseline, f"observed weather: NDVI at {target}")
    m["scenario"].show(x, y, result.ndvi_scenario, f"scenario: NDVI at t+{result.horizon}")
    truth = ex.truth
    lim = _limit(result.difference, None if truth is None else truth.difference)
    m["difference"].show(x, y, result.difference, _change_title(ex), (-lim, lim))
    _show_fade(maps, ex)
    _show_truth(maps, ex, lim)


def _change_title(ex: Explorer) -> str:
    result = ex.result
    if result is None or result.inside is None or not ex.fade_inside:
        return "model: scenario - observed NDVI"
    return f"model: scenario - observed (pale: inside the {result.interval_level:.0%} interval)"


def _show_fade(maps: _maps.ForecastMaps, ex: Explorer) -> None:
    """Veil the model's change where it stays inside the forecast interval (if asked)."""
    result = ex.result
    if result is None:
        return
    maps.show_fade(result.x, result.y, result.inside if ex.fade_inside else None)


def _show_truth(maps: _maps.ForecastMaps, ex: Explorer, lim: float | None = None) -> None:
    result, answer = ex.result, ex.truth
    if result is None:
        return
    if lim is None:
        lim = _limit(result.difference, None if answer is None else answer.difference)
    if answer is None:
        title = ex.truth_status or "simulator's answer (toggle it in the sidebar)"
        blank = np.full(result.difference.shape, np.nan, "float32")
        maps.maps["truth"].show(result.x, result.y, blank, title[:60], (-lim, lim))
        return
    maps.maps["truth"].show(answer.x, answer.y, answer.difference,
                            f"simulator: true change at {answer.target.date()}", (-lim, lim))
    maps.maps["difference"].show(result.x, result.y, result.difference, _change_title(ex),
                                 (-lim, lim))


def _traj_xy(traj: Any) -> tuple[float, float] | None:
    return None if traj is None else (traj.x, traj.y)


def _forecast_panes(ex: Explorer) -> pn.pane.Bokeh:
    """The four linked forecast maps, their data replaced in place at every change."""
    def clicked(x: float, y: float) -> None:  # the trajectory is computed off the page's thread
        ex.pixel = (x, y)

    maps = _maps.ForecastMaps(PANE, on_tap=clicked)
    _show_forecasts(maps, ex)
    maps.show_pixel(_traj_xy(ex.trajectory))

    def changed(*events: Any) -> None:
        names = {e.name for e in events}
        if "result" in names:
            _show_forecasts(maps, ex)
        elif names & {"truth", "truth_status"}:
            _show_truth(maps, ex)
        if "fade_inside" in names and "result" not in names:  # from the checkbox's event
            def fade() -> None:
                _show_fade(maps, ex)
                maps.maps["difference"].figure.title.text = _change_title(ex)

            ex.on_display(fade)
        if "trajectory" in names:
            maps.show_pixel(_traj_xy(ex.trajectory))

    ex.param.watch(changed, ["result", "truth", "truth_status", "trajectory", "fade_inside"])
    # the class on the Bokeh model itself: the page (and the browser tests) find it there
    return pn.pane.Bokeh(row(*maps.figures, css_classes=["kgvsf-forecasts"]))


def _trajectory(ex: Explorer) -> pn.viewable.Viewable:
    def view(traj: Any, truth: Any) -> Any:
        if traj is None:
            return pn.pane.Markdown("*Click a pixel of a forecast map to see its trajectory "
                                    "and the drivers under it.*")
        truth_lines = truth.at(traj.x, traj.y) if truth is not None else None
        top = _plots.trajectory(traj.days, traj.ndvi, traj.observed, traj.t,
                                traj.t + _days(ex.horizon), truth_lines)
        bottom = _plots.drivers_panel(traj.driver_days, traj.prcp, traj.tmax, traj.t)
        return (top + bottom).cols(1).opts(shared_axes=True)

    return pn.panel(pn.bind(view, ex.param.trajectory, ex.param.truth), linked_axes=False)


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=int(n))


def _embedding(ex: Explorer) -> pn.pane.Bokeh:
    """The region's embedding in PCA false colour, replaced in place for a new context."""
    rgb = _maps.RGBMap("region embedding (PCA RGB)", PANE, PANE)

    def show(*_: Any) -> None:  # computed on the explorer's worker thread
        d = ex.embedding
        if d is not None:
            rgb.show(d["x"], d["y"], d["values"], d["title"])

    show()
    ex.param.watch(show, "embedding")
    rgb.figure.css_classes = ["kgvsf-embedding"]
    return pn.pane.Bokeh(rgb.figure)


def info_html(ex: Explorer) -> str:
    """The info line: region, dates, weather, the share beyond the interval, timing."""
    result, truth = ex.result, ex.truth
    if result is None:
        return "<p></p>"
    sha = ex.weights_id[:12] if ex.weights_id else "untracked"
    ny, nx = result.ndvi_baseline.shape
    text = (f"<b>region</b> x {result.x.min():.0f}..{result.x.max():.0f}, y "
            f"{result.y.min():.0f}..{result.y.max():.0f} ({nx} x {ny} px) &nbsp; "
            f"<b>t</b> = {result.t.date()}, <b>k</b> = {result.horizon} days "
            f"(<b>t+k</b> = {result.target.date()}) &nbsp; <b>weather</b>: "
            f"{html.escape(result.scenario_text)}{_beyond(result)} &nbsp; <i>re-forecast in "
            f"{1000 * result.seconds:.0f} ms; weights {sha}</i>")
    if ex.show_truth:
        said = ex.truth_status or (f"answered in {truth.seconds:.1f} s (dashed lines in the "
                                   "trajectory)" if truth is not None else "")
        text += f"<br><b>simulator</b>: {html.escape(said)}"
    return f"<p>{text}</p>"


def _info(ex: Explorer) -> pn.pane.HTML:
    """The info line, updated with the maps (in the same batch).

    A Panel ``HTML`` pane: a new text only replaces its inner HTML. A Bokeh ``Div`` re-ran
    the layout of the whole page at each new text (about 50 ms of the page's main thread per
    slider step, measured with Chromium's profiler).
    """
    pane = pn.pane.HTML(info_html(ex), css_classes=["kgvsf-info"], sizing_mode="stretch_width",
                        margin=(5, 10))

    def show(*_: Any) -> None:
        text = info_html(ex)
        if pane.object != text:
            pane.object = text

    ex.param.watch(show, ["result", "truth", "truth_status"])
    ex.param.watch(lambda *_: ex.on_display(show), ["show_truth"])  # a checkbox's event
    return pane


def _beyond(result: Any) -> str:
    """How much of the region the scenario moves beyond the forecast interval."""
    if result.inside is None:
        return ""
    share = 1.0 - float(np.mean(result.inside[np.isfinite(result.difference)])) \
        if np.isfinite(result.difference).any() else 0.0
    return f" ({share:.0%} of pixels beyond the {result.interval_level:.0%} interval)"


def _alert(ex: Explorer) -> pn.pane.Alert:
    alert = pn.pane.Alert(ex.status, alert_type=ex.status_kind, visible=bool(ex.status),
                          sizing_mode="stretch_width")

    def update(*_: Any) -> None:
        alert.param.update(object=ex.status, alert_type=ex.status_kind,
                           visible=bool(ex.status))

    ex.param.watch(update, ["status", "status_kind"])
    return alert


def build(ex: Explorer) -> pn.viewable.Viewable:
    """The whole dashboard of ``ex``."""
    _ensure_extensions()
    spinner = pn.indicators.LoadingSpinner(value=ex.busy, width=28, height=28)
    forecasts = _forecast_panes(ex)
    trajectory = _trajectory(ex)
    ex.param.watch(lambda e: setattr(spinner, "value", e.new), "busy")
    sidebar = pn.Column(
        pn.pane.Markdown("## KG-VSF explorer", margin=(0, 5)),
        _region_input(ex), *_widgets(ex), width=SIDEBAR_WIDTH,
    )
    header = pn.Row(spinner, _alert(ex), sizing_mode="stretch_width")
    beat = PageBeat()  # the page confirms each batch of updates (served only)
    main = pn.Column(
        header,
        pn.Row(_overview(ex), _embedding(ex)),
        _info(ex),
        forecasts,
        trajectory,
        pn.pane.Bokeh(beat.model, visible=False, margin=0),
    )
    layout = pn.Row(sidebar, main, css_classes=["kgvsf-explorer"])
    _BEATS[layout] = beat
    return layout


_BEATS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def page_beat(layout: Any) -> PageBeat | None:
    """The :class:`~kgvsf_explore.app.pacing.PageBeat` of a layout made by :func:`build`."""
    return _BEATS.get(layout)
