"""The dashboard's holoviews plots: a pixel's trajectory and the drivers under it.

Drawn once per click, from numpy arrays. The maps, which change at every control step, are
plain Bokeh figures updated in place (:mod:`._maps`). Notebook-grade plots with hvplot live in
:mod:`kgvsf_explore.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd


def true_colour(red: np.ndarray, green: np.ndarray, blue: np.ndarray,
                gain: float = 3.5) -> np.ndarray:
    """``(3, y, x)`` display colours from surface reflectance (a simple linear stretch)."""
    return np.stack([red, green, blue]) * gain


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
