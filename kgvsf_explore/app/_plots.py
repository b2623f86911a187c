"""Small holoviews elements for the dashboard, built straight from numpy arrays (fast to update).

Maps are in the cube's own ``x``/``y`` coordinates (metres of its CRS) with equal aspect; no
basemap tiles (no network is assumed). Notebook-grade plots with hvplot live in
:mod:`kgvsf_explore.plots`; these are the cheap ones a slider redraws many times a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd

#: Colours of the crop classes (by code order), then a fallback cycle.
CLASS_COLOURS = ("#d9d9d9", "#f2c12e", "#3a9b3a", "#b5651d", "#8dd3c7", "#80b1d3", "#fb8072")

MAP_OPTS: dict[str, Any] = {"data_aspect": 1, "frame_width": 300, "colorbar": True,
                            "xaxis": None, "yaxis": None, "toolbar": "above",
                            "default_tools": ["pan", "wheel_zoom", "reset", "save"],
                            # holoviews asks for WebGL; a browser without a GPU (or headless)
                            # emulates it and paints an image several times slower
                            "backend_opts": {"plot.output_backend": "canvas"}}


def image(x: np.ndarray, y: np.ndarray, values: np.ndarray, title: str, *,
          cmap: Any = "viridis", clim: tuple[float, float] | None = None, label: str = "value",
          **opts: Any) -> hv.Image:
    """A map of ``values`` ``(y, x)``."""
    img = hv.Image((np.asarray(x), np.asarray(y), np.asarray(values, dtype="float32")),
                   kdims=["x", "y"], vdims=[label])
    kw = {**MAP_OPTS, "cmap": cmap, "title": title, "tools": ["hover", "tap"],
          "clipping_colors": {"NaN": "#eeeeee"}}
    if clim is not None:
        kw["clim"] = clim
    kw.update(opts)
    return img.opts(**kw)


def rgb(x: np.ndarray, y: np.ndarray, bands: np.ndarray, title: str, **opts: Any) -> hv.RGB:
    """A colour map from ``bands`` ``(3, y, x)`` in ``[0, 1]`` (NaN drawn light grey)."""
    arr = np.where(np.isfinite(bands), np.clip(bands, 0.0, 1.0), 0.93)
    el = hv.RGB((np.asarray(x), np.asarray(y), arr[0], arr[1], arr[2]), kdims=["x", "y"])
    kw = {k: v for k, v in MAP_OPTS.items() if k != "colorbar"}
    kw.update({"title": title, "tools": ["tap"]}, **opts)
    return el.opts(**kw)


def true_colour(red: np.ndarray, green: np.ndarray, blue: np.ndarray,
                gain: float = 3.5) -> np.ndarray:
    """``(3, y, x)`` display colours from surface reflectance (a simple linear stretch)."""
    return np.stack([red, green, blue]) * gain


def classes(x: np.ndarray, y: np.ndarray, codes: np.ndarray, legend: Mapping[int, str],
            title: str, **opts: Any) -> hv.Image:
    """A categorical map: each class code in its colour; hover names the class."""
    keys = sorted(legend)
    index = np.full(codes.shape, np.nan, dtype="float32")
    for i, k in enumerate(keys):
        index[codes == k] = i
    colours = [CLASS_COLOURS[i % len(CLASS_COLOURS)] for i in range(len(keys))]
    from bokeh.models import FixedTicker  # the colour bar wants a Ticker model, not a dict

    img = hv.Image((np.asarray(x), np.asarray(y), index), kdims=["x", "y"], vdims=["class"])
    kw = {**MAP_OPTS, "cmap": colours, "clim": (-0.5, len(keys) - 0.5),
          "color_levels": len(keys), "title": title, "tools": ["hover", "tap"],
          "colorbar_opts": {"major_label_overrides": {i: legend[k] for i, k in enumerate(keys)},
                            "ticker": FixedTicker(ticks=list(range(len(keys))))}}
    kw.update(opts)
    return img.opts(**kw)


def difference(x: np.ndarray, y: np.ndarray, values: np.ndarray, title: str,
               limit: float | None = None, **opts: Any) -> hv.Image:
    """A diverging map centred on zero (red: lower, blue: higher)."""
    if limit is None:
        finite = np.abs(values[np.isfinite(values)])
        limit = float(np.percentile(finite, 99)) if finite.size else 0.0
    limit = max(limit, 0.01)
    return image(x, y, values, title, cmap="RdBu", clim=(-limit, limit), label="change", **opts)


def message(text: str, width: int = 300) -> hv.Text:
    """A placeholder element that says why a pane is empty."""
    return hv.Text(0.5, 0.5, text, fontsize=9).opts(
        xaxis=None, yaxis=None, frame_width=width, frame_height=width, toolbar=None,
        xlim=(0, 1), ylim=(0, 1), title="")


def region_box(bbox: Sequence[float] | None) -> hv.Bounds:
    """The selected region drawn as a rectangle."""
    box = tuple(bbox) if bbox is not None else (np.nan,) * 4
    return hv.Bounds(box).opts(color="#ff00ff", line_width=2)


def pixel_marker(xy: Sequence[float] | None) -> hv.Points:
    """The clicked pixel."""
    pts = [tuple(xy)] if xy is not None else []
    return hv.Points(pts, kdims=["x", "y"]).opts(color="black", marker="x", size=12,
                                                 line_width=2)


def trajectory(days: pd.DatetimeIndex, series: Mapping[str, np.ndarray],
               observed: pd.Series | None, t: pd.Timestamp, target: pd.Timestamp,
               truth: Mapping[str, pd.Series] | None = None,
               ylabel: str = "NDVI") -> hv.Overlay:
    """Forecast NDVI per scenario against the dates, with observations and the truth."""
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    layers: list[Any] = []
    for i, (name, vals) in enumerate(series.items()):
        layers.append(hv.Curve((days, vals), "date", ylabel, label=f"forecast: {name}")
                      .opts(color=colours[i % 4], line_width=2))
    for i, (name, s) in enumerate((truth or {}).items()):
        layers.append(hv.Curve((s.index, s.values), "date", ylabel, label=f"truth: {name}")
                      .opts(color=colours[i % 4], line_dash="dashed"))
    if observed is not None and len(observed):
        layers.append(hv.Scatter((observed.index, observed.values), "date", ylabel,
                                 label="observed").opts(color="black", size=5))
    layers.append(hv.VLine(t).opts(color="grey", line_dash="dotted"))
    layers.append(hv.VLine(target).opts(color="#ff00ff", line_width=1))
    return hv.Overlay(layers).opts(
        frame_width=520, frame_height=170, legend_position="right", show_grid=True,
        title=f"pixel trajectory (t = {t.date()}, magenta: t + k)", toolbar="above")


def drivers_panel(days: pd.DatetimeIndex, prcp: Mapping[str, np.ndarray],
                  tmax: Mapping[str, np.ndarray], t: pd.Timestamp) -> hv.Overlay:
    """Daily rain (steps) and maximum temperature (lines) per scenario, under the trajectory."""
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    layers: list[Any] = []
    for i, (name, vals) in enumerate(prcp.items()):
        layers.append(hv.Curve((days, vals), "date", "prcp (mm/day) / tmax (degC)",
                               label=f"prcp: {name}")
                      .opts(interpolation="steps-mid", color=colours[i % 4], alpha=0.6))
    for i, (name, vals) in enumerate(tmax.items()):
        layers.append(hv.Curve((days, vals), "date", "prcp (mm/day) / tmax (degC)",
                               label=f"tmax: {name}")
                      .opts(color=colours[i % 4], line_dash="dashed"))
    layers.append(hv.VLine(t).opts(color="grey", line_dash="dotted"))
    return hv.Overlay(layers).opts(frame_width=520, frame_height=120, show_grid=True,
                                   legend_position="right", title="drivers the model reads",
                                   toolbar=None)
