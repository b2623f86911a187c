"""Bokeh maps the dashboard updates in place: the overview, the four forecast maps and the
region embedding.

These are the panes that change at every control step, so they are plain Bokeh figures whose
``ColumnDataSource`` data, colour range and title are set on each update (a few milliseconds of
server time and one small patch to the page). Built with holoviews and fed through ``Pipe``
streams they cost 270 ms of server time per step on 2 cores - re-running the element callbacks,
re-applying their options and diffing the plots - and 1 s to build when a page opens
(``benchmarks/bench_dashboard_browser.py`` measures what a person waits). The overview map was
a holoviews element re-rendered per layer: 200-300 ms of the page's main thread and a new plot
per change. Only the trajectory, drawn once per click, stays a holoviews element
(:mod:`._plots`).

Images are drawn pixel-centred in the cube's ``x``/``y`` coordinates whatever the direction of
its axes (a north-up cube has ``y`` descending; Bokeh draws row 0 at the bottom).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from bokeh.events import SelectionGeometry, Tap
from bokeh.models import (
    BasicTicker,
    BoxSelectTool,
    BoxZoomTool,
    ColorBar,
    ColumnDataSource,
    CustomJSHover,
    FixedTicker,
    HoverTool,
    Image,
    ImageRGBA,
    LinearColorMapper,
    PanTool,
    Plot,
    Quad,
    Range1d,
    ResetTool,
    SaveTool,
    Scatter,
    TapTool,
    Title,
    WheelZoomTool,
)

#: Colours of the crop classes (by code order), then a fallback cycle.
CLASS_COLOURS = ("#d9d9d9", "#f2c12e", "#3a9b3a", "#b5651d", "#8dd3c7", "#80b1d3", "#fb8072")

#: Colour of pixels without a value (masked, outside the data).
NAN_COLOUR = "#eeeeee"
#: Opacity (0-255) of the white veil over changes inside the forecast interval.
VEIL_ALPHA = 200


def palette(name: str, n: int = 256) -> list[str]:
    """``n`` hex colours of a ColorBrewer map (``"RdYlGn"``, ``"RdBu"``...), low values first.

    Bokeh keeps ColorBrewer's diverging maps high-first; they are reversed here to match
    matplotlib's and holoviews' direction (``RdBu``: red low, blue high).
    """
    from bokeh import palettes

    brewer = getattr(palettes, name)
    return list(palettes.interp_palette(tuple(reversed(brewer[max(brewer)])), n))


def extent(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """``(xmin, xmax, ymin, ymax)`` of the pixel edges of centres ``x``, ``y``."""
    dx = float(abs(x[1] - x[0])) if len(x) > 1 else 1.0
    dy = float(abs(y[1] - y[0])) if len(y) > 1 else 1.0
    return (float(np.min(x)) - dx / 2, float(np.max(x)) + dx / 2,
            float(np.min(y)) - dy / 2, float(np.max(y)) + dy / 2)


def _upright(x: np.ndarray, y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` ``(..., y, x)`` reordered so that row 0 is the lowest ``y`` and column 0 the
    lowest ``x`` (Bokeh's image order)."""
    out = np.asarray(values)
    if len(y) > 1 and y[0] > y[-1]:
        out = out[..., ::-1, :]
    if len(x) > 1 and x[0] > x[-1]:
        out = out[..., :, ::-1]
    return out


def _image_data(x: np.ndarray, y: np.ndarray, image: np.ndarray) -> dict[str, list]:
    x0, x1, y0, y1 = extent(x, y)
    return {"image": [np.ascontiguousarray(image)], "x": [x0], "y": [y0], "dw": [x1 - x0],
            "dh": [y1 - y0]}


def _rgba(bands: np.ndarray) -> np.ndarray:
    """``(3, y, x)`` colours in ``[0, 1]`` (NaN: light grey) as Bokeh's packed uint32 RGBA."""
    arr = np.where(np.isfinite(bands), np.clip(bands, 0.0, 1.0), 0.93)
    rgb = np.round(arr * 255).astype(np.uint8)
    out = np.empty(rgb.shape[1:] + (4,), dtype=np.uint8)
    out[..., :3] = np.moveaxis(rgb, 0, -1)
    out[..., 3] = 255
    return out.view(np.uint32)[..., 0]


def _veil(mask: np.ndarray) -> np.ndarray:
    """Packed RGBA: translucent white where ``mask``, transparent elsewhere."""
    out = np.zeros(mask.shape + (4,), dtype=np.uint8)
    out[mask] = (255, 255, 255, VEIL_ALPHA)
    return out.view(np.uint32)[..., 0]


def _figure(title: str, width: int, height: int, x_range: Range1d, y_range: Range1d) -> Plot:
    """A bare plot: no axes or grid (a map in the cube's metres needs neither), so the page
    builds few models."""
    tools = [PanTool(), WheelZoomTool(), BoxZoomTool(), ResetTool(), SaveTool(), TapTool()]
    plot = Plot(title=Title(text=title), frame_width=width, frame_height=height,
                x_range=x_range, y_range=y_range, toolbar_location="above", min_border=5,
                output_backend="canvas")
    plot.add_tools(*tools)
    plot.toolbar.active_scroll = tools[1]
    return plot


class ImageMap:
    """One Bokeh figure showing a ``(y, x)`` array through a colour map, updated in place.

    Parameters
    ----------
    title, cmap, clim, label
        First title, colormap name, colour range and the value's name (hover, colour bar).
    width, height
        Frame size in screen pixels.
    x_range, y_range
        Ranges shared with other maps (linked zoom).
    """

    def __init__(self, title: str, cmap: str, clim: tuple[float, float], label: str,
                 width: int, height: int, x_range: Range1d, y_range: Range1d) -> None:
        self.source = ColumnDataSource(_image_data(np.arange(2.0), np.arange(2.0),
                                                   np.full((2, 2), np.nan, "float32")))
        self.mapper = LinearColorMapper(palette=palette(cmap), low=clim[0], high=clim[1],
                                        nan_color=NAN_COLOUR)
        self.figure = _figure(title, width, height, x_range, y_range)
        renderer = self.figure.add_glyph(self.source, Image(
            image="image", x="x", y="y", dw="dw", dh="dh", color_mapper=self.mapper))
        self.figure.add_tools(HoverTool(renderers=[renderer], tooltips=[
            ("x", "$x{0}"), ("y", "$y{0}"), (label, "@image{0.000}")]))
        self.figure.add_layout(ColorBar(color_mapper=self.mapper, width=10), "right")

    def show(self, x: np.ndarray, y: np.ndarray, values: np.ndarray, title: str,
             clim: tuple[float, float] | None = None) -> None:
        """Draw ``values`` ``(y, x)`` at pixel centres ``x``, ``y``; the axes do not move."""
        image = _upright(x, y, np.asarray(values, dtype="float32"))
        self.source.data = _image_data(x, y, image)
        if self.figure.title.text != title:
            self.figure.title.text = title
        if clim is not None and (self.mapper.low, self.mapper.high) != clim:
            self.mapper.update(low=clim[0], high=clim[1])


class RGBMap:
    """One Bokeh figure showing ``(3, y, x)`` colours in ``[0, 1]``, updated in place."""

    def __init__(self, title: str, width: int, height: int) -> None:
        self.source = ColumnDataSource(_image_data(np.arange(2.0), np.arange(2.0),
                                                   _rgba(np.full((3, 2, 2), np.nan))))
        self.figure = _figure(title, width, height, Range1d(0, 2), Range1d(0, 2))
        self.figure.add_glyph(self.source, ImageRGBA(image="image", x="x", y="y", dw="dw",
                                                     dh="dh"))

    def show(self, x: np.ndarray, y: np.ndarray, bands: np.ndarray, title: str) -> None:
        """Draw ``bands`` and fit the axes and the frame's height to the region."""
        self.source.data = _image_data(x, y, _upright(x, y, _rgba(bands)))
        fit(self.figure, x, y)
        self.figure.title.text = title


def fit(fig: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Set ``fig``'s axes (and the reset tool's extent) to the region, its frame to its shape."""
    x0, x1, y0, y1 = extent(x, y)
    fig.x_range.update(start=x0, end=x1, reset_start=x0, reset_end=x1)
    fig.y_range.update(start=y0, end=y1, reset_start=y0, reset_end=y1)
    height = max(40, round(fig.frame_width * len(y) / max(len(x), 1)))
    if fig.frame_height != height:
        fig.frame_height = height


class ForecastMaps:
    """The four linked forecast maps: baseline, scenario, model change, simulator's change.

    Parameters
    ----------
    width
        Frame width of each map (screen pixels); the height follows the region's shape.
    on_tap
        Called with ``(x, y)`` when a map is clicked (served: on the document's thread).
    """

    NAMES = ("baseline", "scenario", "difference", "truth")

    def __init__(self, width: int, on_tap: Callable[[float, float], None] | None = None) -> None:
        self.x_range, self.y_range = Range1d(0, 2), Range1d(0, 2)  # shared: zoom one, all follow
        ndvi = dict(cmap="RdYlGn", clim=(-0.2, 1.0), label="NDVI")
        change = dict(cmap="RdBu", clim=(-0.01, 0.01), label="change")
        make = lambda title, kw: ImageMap(title, width=width, height=width,  # noqa: E731
                                          x_range=self.x_range, y_range=self.y_range, **kw)
        self.maps = {"baseline": make("baseline forecast", ndvi),
                     "scenario": make("scenario forecast", ndvi),
                     "difference": make("difference", change),
                     "truth": make("simulator's answer", change)}
        # the change map's veil: white over pixels whose change is inside the interval
        self.fade = ColumnDataSource(_image_data(np.arange(2.0), np.arange(2.0),
                                                 _veil(np.zeros((2, 2), bool))))
        self.maps["difference"].figure.add_glyph(self.fade, ImageRGBA(
            image="image", x="x", y="y", dw="dw", dh="dh"))
        self.marker = ColumnDataSource({"x": [], "y": []})
        for m in self.maps.values():
            m.figure.add_glyph(self.marker, Scatter(x="x", y="y", marker="x", size=12,
                                                    line_width=2, line_color="black"))
            if on_tap is not None:
                m.figure.on_event(Tap, lambda e: on_tap(float(e.x), float(e.y)))
        self.extent: tuple | None = None

    @property
    def figures(self) -> list[Any]:
        """The four Bokeh figures, in display order."""
        return [self.maps[n].figure for n in self.NAMES]

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Fit the shared axes and every frame to a region of centres ``x``, ``y``."""
        self.extent = extent(x, y)
        for fig in self.figures:
            fit(fig, x, y)

    def show_fade(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray | None) -> None:
        """Veil the change map where ``mask`` ``(y, x)`` is True (None: no veil)."""
        mask = np.zeros((len(y), len(x)), bool) if mask is None else np.asarray(mask, bool)
        self.fade.data = _image_data(x, y, _upright(x, y, _veil(mask)))

    def show_pixel(self, xy: Sequence[float] | None) -> None:
        """Mark the clicked pixel (None: no mark)."""
        self.marker.data = {"x": [] if xy is None else [float(xy[0])],
                            "y": [] if xy is None else [float(xy[1])]}


class OverviewMap:
    """The overview map of the whole cube: one layer at a time, the region box, box select.

    Built once per page and updated in place like the forecast maps: a new layer replaces the
    data of its glyph (a colour-mapped image for values and classes, packed RGBA for colours),
    the colour bar's mapper and ticks, the hover label and the title. The axes stay on the cube.
    A box dragged with the box-select tool calls ``on_box(xmin, ymin, xmax, ymax)`` (served: on
    the document's thread); :meth:`show_region` draws the current region as a magenta box.

    Parameters
    ----------
    bounds
        ``(xmin, ymin, xmax, ymax)`` of the cube (the axes).
    width
        Frame width in screen pixels; the height follows the cube's shape.
    on_box
        Called with the dragged box's bounds.
    """

    def __init__(self, bounds: Sequence[float], width: int,
                 on_box: Callable[[float, float, float, float], None] | None = None) -> None:
        x0, y0, x1, y1 = (float(v) for v in bounds)
        height = max(40, round(width * (y1 - y0) / max(x1 - x0, 1e-9)))
        self.figure = _figure("overview", width, height, Range1d(x0, x1), Range1d(y0, y1))
        blank = _image_data(np.arange(2.0), np.arange(2.0), np.full((2, 2), np.nan, "float32"))
        self.values = ColumnDataSource(blank)
        self.colours = ColumnDataSource(_image_data(np.arange(2.0), np.arange(2.0),
                                                    _rgba(np.full((3, 2, 2), np.nan))))
        self.mapper = LinearColorMapper(palette=palette("RdYlGn"), low=0.0, high=1.0,
                                        nan_color=NAN_COLOUR)
        self.value_glyph = self.figure.add_glyph(self.values, Image(
            image="image", x="x", y="y", dw="dw", dh="dh", color_mapper=self.mapper))
        self.colour_glyph = self.figure.add_glyph(self.colours, ImageRGBA(
            image="image", x="x", y="y", dw="dw", dh="dh"))
        self.names = CustomJSHover(args={"names": []}, code=(
            "return names.length ? (names[Math.round(value)] ?? '') : value.toFixed(3)"))
        self.hover = HoverTool(renderers=[self.value_glyph], formatters={"@image": self.names},
                               tooltips=[("x", "$x{0}"), ("y", "$y{0}"),
                                         ("value", "@image{custom}")])
        self.bar = ColorBar(color_mapper=self.mapper, width=10)
        self.figure.add_layout(self.bar, "right")
        self.box = ColumnDataSource({"left": [], "right": [], "bottom": [], "top": []})
        box = self.figure.add_glyph(self.box, Quad(left="left", right="right", bottom="bottom",
                                                   top="top", fill_alpha=0.0,
                                                   line_color="#ff00ff", line_width=2))
        box.nonselection_glyph = None  # selecting with the box tool never fades anything
        select = BoxSelectTool(renderers=[box])
        self.figure.add_tools(self.hover, select)
        self.figure.toolbar.active_drag = select
        if on_box is not None:
            self.figure.on_event(SelectionGeometry, lambda e: _picked(e, on_box))

    def show(self, layer: dict[str, Any]) -> None:
        """Draw a layer as :func:`~kgvsf_explore.app.layers.layer_data` returns it (or a
        ``{"kind": "message", "text": ...}``: the title says why the map is empty)."""
        kind = layer["kind"]
        self.value_glyph.visible = kind in ("image", "classes")
        self.colour_glyph.visible = kind == "rgb"
        self.bar.visible = kind in ("image", "classes")
        title = layer["text"][:90] if kind == "message" else layer["title"]
        if self.figure.title.text != title:
            self.figure.title.text = title
        if kind == "message":
            return
        x, y = np.asarray(layer["x"]), np.asarray(layer["y"])
        if kind == "rgb":
            self.colours.data = _image_data(x, y, _upright(x, y, _rgba(layer["values"])))
            return
        if kind == "classes":
            keys = sorted(layer["legend"])
            codes = np.asarray(layer["values"])
            index = np.full(codes.shape, np.nan, dtype="float32")
            for i, k in enumerate(keys):
                index[codes == k] = i
            colours = [CLASS_COLOURS[i % len(CLASS_COLOURS)] for i in range(len(keys))]
            self.mapper.update(palette=colours, low=-0.5, high=len(keys) - 0.5)
            self.bar.update(ticker=FixedTicker(ticks=list(range(len(keys)))),
                            major_label_overrides={i: str(layer["legend"][k])
                                                   for i, k in enumerate(keys)})
            self.names.args = {"names": [str(layer["legend"][k]) for k in keys]}
            self.hover.tooltips = [("x", "$x{0}"), ("y", "$y{0}"), ("class", "@image{custom}")]
            self.values.data = _image_data(x, y, _upright(x, y, index))
            return
        values = np.asarray(layer["values"], dtype="float32")
        clim = layer.get("clim")
        if clim is None:
            finite = values[np.isfinite(values)]
            clim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        self.mapper.update(palette=palette(layer["cmap"]), low=clim[0], high=clim[1])
        self.bar.update(ticker=BasicTicker(), major_label_overrides={})
        self.names.args = {"names": []}
        self.hover.tooltips = [("x", "$x{0}"), ("y", "$y{0}"), (layer["label"], "@image{custom}")]
        self.values.data = _image_data(x, y, _upright(x, y, values))

    def show_region(self, bbox: Sequence[float] | None) -> None:
        """Draw the region ``(xmin, ymin, xmax, ymax)`` as a magenta box (None: none)."""
        if bbox is None:
            self.box.data = {"left": [], "right": [], "bottom": [], "top": []}
            return
        x0, y0, x1, y1 = (float(v) for v in bbox)
        self.box.data = {"left": [x0], "right": [x1], "bottom": [y0], "top": [y1]}


def _picked(event: Any, on_box: Callable[[float, float, float, float], None]) -> None:
    """Hand a finished box selection's bounds to ``on_box`` (empty or odd boxes are ignored)."""
    g = event.geometry or {}
    if not event.final or g.get("type") != "rect":
        return
    x0, y0, x1, y1 = (g.get(k) for k in ("x0", "y0", "x1", "y1"))
    if None in (x0, y0, x1, y1) or not np.isfinite([x0, y0, x1, y1]).all() or \
            (x0 == x1 or y0 == y1):
        return
    on_box(float(min(x0, x1)), float(min(y0, y1)), float(max(x0, x1)), float(max(y0, y1)))
