"""The Panel layout of an :class:`~kgvsf_explore.app.explorer.Explorer`: widgets and panes.

Only drawing happens here. The forecast maps are holoviews ``DynamicMap`` objects fed through
``Pipe`` streams by one watcher of the explorer's outputs: a weather or horizon change sends new
data into the existing plots (their data sources and colour ranges change, the axes and so a
zoom stay); only a region of another extent gets new plots, sized to its shape. Their axes are
linked (zoom one, all follow); clicking a forecast map picks the trajectory pixel. The overview
map carries a box-select tool whose bounds become ``Explorer.bbox``; its axes stay on the cube.

The sliders send their value when released (``value_throttled``; each key press when moved by
keyboard), and the explorer computes only the newest request, so a dragged slider costs one
forecast.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any

import holoviews as hv
import numpy as np
import panel as pn

from . import _plots
from .explorer import OBSERVED

if TYPE_CHECKING:
    from .explorer import Explorer

SIDEBAR_WIDTH = 300
PANE = 260


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
    ]
    return widgets


def _throttled(ex: Explorer, name: str, cls: type, **kw: Any) -> pn.widgets.Widget:
    """A slider that sets ``ex.<name>`` on release (or key press), not at every drag step."""
    widget = cls(name=ex.param[name].label, value=getattr(ex, name), width=SIDEBAR_WIDTH - 20,
                 **kw)
    widget.param.watch(lambda e: setattr(ex, name, e.new), "value_throttled")
    ex.param.watch(lambda e: setattr(widget, "value", e.new), name)  # set from code
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

    box = pn.widgets.TextInput(value=text(ex.bbox), width=SIDEBAR_WIDTH - 20,
                               css_classes=["kgvsf-region"])

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


def overview_element(ex: Explorer) -> hv.Element:
    """The overview map of ``ex.layer`` (axes fixed on the cube) or a message saying why not."""
    d = ex.map_layer()
    x0, y0, x1, y1 = ex.cube.bounds
    opts = {"tools": ["box_select", "hover"], "active_tools": ["box_select"],
            "frame_width": 340, "xlim": (x0, x1), "ylim": (y0, y1)}
    if d["kind"] == "message":
        return _plots.message(d["text"], 340)
    if d["kind"] == "rgb":
        return _plots.rgb(d["x"], d["y"], d["values"], d["title"], **opts)
    if d["kind"] == "classes":
        return _plots.classes(d["x"], d["y"], d["values"], d["legend"], d["title"], **opts)
    return _plots.image(d["x"], d["y"], d["values"], d["title"], cmap=d["cmap"],
                        clim=d.get("clim"), label=d["label"], **opts)


def _overview(ex: Explorer) -> pn.viewable.Viewable:
    # the box of the current forecasts (a rejected box moves neither it nor the axes)
    region = hv.DynamicMap(lambda region: _plots.region_box(region),
                           streams=[hv.streams.Params(ex, ["region"])])

    def view(layer: str, start: Any) -> Any:
        el = overview_element(ex)
        if isinstance(el, hv.Text):
            return el
        bounds = hv.streams.BoundsXY(source=el)

        def picked(bounds: Any) -> None:
            if bounds is None:
                return
            x0, y0, x1, y1 = bounds
            if np.isfinite([x0, y0, x1, y1]).all() and (x0, y0) != (x1, y1):
                ex.bbox = (float(min(x0, x1)), float(min(y0, y1)), float(max(x0, x1)),
                           float(max(y0, y1)))

        bounds.add_subscriber(picked)
        return el * region

    return pn.pane.HoloViews(pn.bind(view, ex.param.layer, ex.param.start), linked_axes=False,
                             css_classes=["kgvsf-overview"])


def _empty_image(title: str) -> hv.Image:
    return _plots.image(np.arange(2.0), np.arange(2.0), np.full((2, 2), np.nan), title)


def _frame(result: Any) -> dict[str, Any]:
    """Frame size of a forecast map: PANE wide, as high as the region's shape asks."""
    if result is None:
        return {"frame_width": PANE, "frame_height": PANE}
    ny, nx = result.ndvi_baseline.shape
    return {"frame_width": PANE, "frame_height": max(40, round(PANE * ny / max(nx, 1))),
            "data_aspect": None}


def _forecast_layout(ex: Explorer) -> tuple[hv.Layout, dict[str, hv.streams.Pipe]]:
    """The four linked maps of the current region, fed by ``Pipe`` streams (see the module)."""
    pipes = {"result": hv.streams.Pipe(data=ex.result),
             "truth": hv.streams.Pipe(data=(ex.truth, ex.truth_status, ex.result)),
             "pixel": hv.streams.Pipe(data=_traj_xy(ex.trajectory))}
    opts = _frame(ex.result)

    def base(data: Any) -> hv.Image:
        result = data
        if result is None:
            return _empty_image("baseline forecast").opts(**opts)
        return _plots.image(result.x, result.y, result.ndvi_baseline,
                            f"observed weather: NDVI at t+{result.horizon} "
                            f"({result.target.date()})", cmap="RdYlGn", clim=(-0.2, 1.0),
                            label="NDVI", **opts)

    def scen(data: Any) -> hv.Image:
        result = data
        if result is None:
            return _empty_image("scenario forecast").opts(**opts)
        return _plots.image(result.x, result.y, result.ndvi_scenario,
                            f"scenario: NDVI at t+{result.horizon}", cmap="RdYlGn",
                            clim=(-0.2, 1.0), label="NDVI", **opts)

    def limit(result: Any, truth: Any) -> float:
        vals = [np.abs(result.difference)]
        if truth is not None:
            vals.append(np.abs(truth.difference))
        finite = np.concatenate([v[np.isfinite(v)] for v in vals])
        return float(np.percentile(finite, 99)) if finite.size else 0.0

    def diff(data: Any) -> hv.Image:
        result = data
        if result is None:
            return _empty_image("difference").opts(**opts)
        return _plots.difference(result.x, result.y, result.difference,
                                 "model: scenario - observed NDVI",
                                 limit(result, ex.truth), **opts)

    def truth(data: Any) -> hv.Image:
        answer, status, result = data
        if result is None:
            return _empty_image("simulator's answer").opts(**opts)
        if answer is None:
            title = status or "simulator's answer (toggle it in the sidebar)"
            blank = np.full(result.difference.shape, np.nan)
            return _plots.difference(result.x, result.y, blank, title[:60], 0.01, **opts)
        return _plots.difference(answer.x, answer.y, answer.difference,
                                 f"simulator: true change at {answer.target.date()}",
                                 limit(result, answer), **opts)

    maps = [hv.DynamicMap(fn, streams=[pipes["result"]]) for fn in (base, scen, diff)]
    maps.append(hv.DynamicMap(truth, streams=[pipes["truth"]]))

    def clicked(x: float | None, y: float | None) -> None:
        if x is not None and y is not None:
            ex.pixel = (float(x), float(y))

    for m in maps:
        hv.streams.Tap(source=m).add_subscriber(clicked)
    marker = hv.DynamicMap(lambda data: _plots.pixel_marker(data), streams=[pipes["pixel"]])
    layout = hv.Layout([m * marker for m in maps]).cols(4).opts(shared_axes=True)
    return layout, pipes


def _traj_xy(traj: Any) -> tuple[float, float] | None:
    return None if traj is None else (traj.x, traj.y)


def _extent(result: Any) -> tuple | None:
    if result is None:
        return None
    return (float(result.x[0]), float(result.x[-1]), float(result.y[0]), float(result.y[-1]))


def _forecast_panes(ex: Explorer) -> pn.pane.HoloViews:
    """The forecast maps: a new extent gets new plots, anything else new data in place."""
    layout, pipes = _forecast_layout(ex)
    pane = pn.pane.HoloViews(layout, linked_axes=False, css_classes=["kgvsf-forecasts"])
    state = {"extent": _extent(ex.result), "pipes": pipes}

    def changed(*events: Any) -> None:
        names = {e.name for e in events}
        extent = _extent(ex.result)
        if extent != state["extent"]:
            state["extent"] = extent
            pane.object, state["pipes"] = _forecast_layout(ex)
            return
        pipes = state["pipes"]
        if "result" in names:
            pipes["result"].send(ex.result)
        if names & {"result", "truth", "truth_status"}:
            pipes["truth"].send((ex.truth, ex.truth_status, ex.result))
        if "trajectory" in names:
            pipes["pixel"].send(_traj_xy(ex.trajectory))

    ex.param.watch(changed, ["result", "truth", "truth_status", "trajectory"])
    return pane


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


def _embedding(ex: Explorer) -> pn.viewable.Viewable:
    def view(context: Any) -> Any:
        d = ex.region_embedding()
        if d is None:
            return _plots.message("no region yet", PANE)
        return _plots.rgb(d["x"], d["y"], d["values"], d["title"], frame_width=PANE)

    return pn.pane.HoloViews(pn.bind(view, ex.param.context), linked_axes=False,
                             css_classes=["kgvsf-embedding"])


def _info(ex: Explorer) -> pn.viewable.Viewable:
    def view(result: Any, truth: Any, truth_status: str, show_truth: bool) -> str:
        if result is None:
            return ""
        sha = ex.weights_id[:12] if ex.weights_id else "untracked"
        ny, nx = result.ndvi_baseline.shape
        text = (f"**region** x {result.x.min():.0f}..{result.x.max():.0f}, y "
                f"{result.y.min():.0f}..{result.y.max():.0f} ({nx} x {ny} px) &nbsp; "
                f"**t** = {result.t.date()}, **k** = {result.horizon} days "
                f"(**t+k** = {result.target.date()}) &nbsp; **weather**: "
                f"{result.scenario_text} &nbsp; *re-forecast in "
                f"{1000 * result.seconds:.0f} ms; weights {sha}*")
        if show_truth:
            said = truth_status or (f"answered in {truth.seconds:.1f} s (dashed "
                                    "lines in the trajectory)" if truth is not None else "")
            text += f"  \n**simulator**: {said}"
        return text

    bound = pn.bind(view, ex.param.result, ex.param.truth, ex.param.truth_status,
                    ex.param.show_truth)
    return pn.pane.Markdown(bound, sizing_mode="stretch_width", css_classes=["kgvsf-info"])


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
    main = pn.Column(
        header,
        pn.Row(_overview(ex), _embedding(ex)),
        _info(ex),
        forecasts,
        trajectory,
    )
    return pn.Row(sidebar, main, css_classes=["kgvsf-explorer"])
