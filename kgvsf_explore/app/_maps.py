"""Bokeh maps the dashboard updates in place: the four forecast maps and the region embedding.

These are the panes that change at every control step, so they are plain Bokeh figures whose
``ColumnDataSource`` data, colour range and title are set on each update (a few milliseconds of
server time and one small patch to the page). Built with holoviews and fed through ``Pipe``
streams they cost 270 ms of server time per step on 2 cores - re-running the element callbacks,
re-applying their options and diffing the plots - and 1 s to build when a page opens
(``benchmarks/bench_dashboard_browser.py`` measures what a person waits). The overview map and
the trajectory, drawn once per layer or click, stay holoviews elements (:mod:`._plots`).

Images are drawn pixel-centred in the cube's ``x``/``y`` coordinates whatever the direction of
its axes (a north-up cube has ``y`` descending; Bokeh draws row 0 at the bottom).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from bokeh.events import Tap
from bokeh.models import (
    BoxZoomTool,
    ColorBar,
    ColumnDataSource,
    HoverTool,
    Image,
    ImageRGBA,
    LinearColorMapper,
    PanTool,
    Plot,
    Range1d,
    ResetTool,
    SaveTool,
    Scatter,
    TapTool,
    Title,
    WheelZoomTool,
)

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
