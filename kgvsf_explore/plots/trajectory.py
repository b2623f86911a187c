"""A pixel's or a field's trajectory: observations, truth and forecasts above the weather drivers.

The data come from :mod:`kgvsf_explore.plots._series`; this module only draws them. The panels
share one ``time`` dimension, so holoviews links their time axes (zoom one, all follow).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..errors import KGVSFError
from . import _series, _style

__all__ = ["trajectory"]

#: Days shown before the earliest forecast date ``t`` and after its last forecast date.
WINDOW: tuple[int, int] = (90, 10)
#: Heights in pixels of the variable panel and of each driver panel.
MAIN_HEIGHT, DRIVER_HEIGHT = 260, 120


def trajectory(
    cube: Any,
    forecasts: xr.Dataset | Sequence[xr.Dataset] | None = None,
    *,
    pixel: tuple[float, float] | None = None,
    field: int | None = None,
    var: str = "ndvi",
    drivers: Sequence[str] = ("prcp", "tmax"),
    scenarios: Sequence[Any] | None = None,
    window: tuple[int, int] | None = WINDOW,
    min_valid: float = 0.5,
    frame_width: int = _style.SERIES_FRAME_WIDTH,
) -> Any:
    """A pixel's or a field's ``var`` over time with its forecasts, above its weather drivers.

    The top panel shows the cube's cloud-free observations (points), the cloud-free truth as a
    line when the cube carries ``<band>_true`` bands (the simulated sample does), and every
    forecast: for each scenario, its values at ``t + k`` joined from the value at ``t`` (the
    observation, else the truth), one colour per scenario, with a dashed vertical line at ``t``.
    Below, one panel per driver: the observed series and, from ``t`` on, the series under each
    scenario of ``scenarios`` (the forecast keeps the observed weather up to ``t``).

    Parameters
    ----------
    cube
        A :class:`kgvsf_explore.Cube`.
    forecasts
        One forecast of :func:`kgvsf_explore.inference.forecast_region`, several (e.g. from
        different dates), or None for the observations alone.
    pixel
        ``(x, y)`` in the cube's CRS: the nearest pixel is shown.
    field
        A field id (``cube.field_id``, ``cube.fields.field_id``): the mean over its pixels.
    var
        A spectral index (``"ndvi"``, ...) or a band; forecasts without it get it from their
        ``reflectance``.
    drivers
        Driver names, one panel each (``()`` for none).
    scenarios
        The :class:`kgvsf_explore.Scenario` objects of the forecasts (None stands for the
        observed weather), to draw their drivers; matched to forecast scenarios by name.
    window
        ``(before, after)`` days around the forecasts: from ``before`` days before the
        earliest ``t`` to ``after`` days after the last forecast date; None (or no forecast)
        shows the whole record.
    min_valid
        For a field, the fraction of its pixels that must be cloud-free for a date to count.
    frame_width
        Width in pixels of every panel's plotting area.

    Returns
    -------
    holoviews.Layout
        One column: the ``var`` panel, then one panel per driver, with linked time axes.

    Examples
    --------
    >>> import kgvsf_explore as kx
    >>> from kgvsf_explore.plots import trajectory
    >>> cube = kx.open_cube(kx.sample_path())                         # doctest: +SKIP
    >>> dry = kx.Scenario.parse("prcp x0", name="dry")                 # doctest: +SKIP
    >>> fc = forecast_region(model, cube, "2022-07-01", [5, 15, 30],
    ...                      [None, dry])                              # doctest: +SKIP
    >>> trajectory(cube, fc, field=12, scenarios=[None, dry])          # doctest: +SKIP
    """
    import holoviews as hv
    import hvplot.xarray  # noqa: F401  (loads the bokeh extension)

    var = _series.check_var(var)
    fcs = _as_list(forecasts)
    place = _series.locate(cube, pixel, field)
    points = [_series.forecast_points(f, place, var, cube.res) for f in fcs]
    origins = [_series.forecast_origin(f) for f in fcs]
    obs = _series.observed_series(place, var, min_valid)
    truth = _series.truth_series(place, var)
    lo, hi = _window(cube, origins, points, window)
    names = ["observed"] + [str(s) for p in points for s in p["scenario"]]
    names += [_series.scenario_name(s, i) for i, s in enumerate(scenarios or [])]
    colours = _style.scenario_colours(names)

    time = hv.Dimension("time", label="date")
    label = var.upper() if var in _series.INDICES else f"{var} reflectance"
    value = hv.Dimension(var, label=label)
    layers = []
    if truth is not None:
        t_ = truth[lo:hi]
        layers.append(hv.Curve((t_.index, t_.values), time, value, label="cloud-free truth")
                      .opts(color=_style.TRUTH_COLOUR, line_width=1.5))
    o_ = obs[lo:hi]
    layers.append(hv.Scatter((o_.index, o_.values), time, value, label="observed (cloud-free)")
                  .opts(color=_style.DATA_COLOUR, size=5, tools=["hover"]))
    layers += _forecast_layers(points, origins, obs, truth, time, value, colours)
    layers += [hv.VLine(t).opts(color="grey", line_dash="dashed", line_width=1) for t in origins]
    title = f"{place.label}: {label}"
    main = hv.Overlay(layers).opts(title=title, frame_width=frame_width, frame_height=MAIN_HEIGHT,
                                   legend_position="right", show_grid=True, xlabel="")
    panels = [main]
    if drivers:
        days = slice(lo, hi)
        table = _series.driver_series(place, drivers, scenarios or [], days)
        start = min(origins) if origins else None
        for d in drivers:
            panels.append(_driver_panel(table, d, start, time, colours, frame_width, origins))
    panels[-1] = panels[-1].opts(xlabel="date")
    return hv.Layout(panels).cols(1).opts(shared_axes=True)


def _as_list(forecasts: Any) -> list[xr.Dataset]:
    if forecasts is None:
        return []
    if isinstance(forecasts, xr.Dataset):
        return [forecasts]
    if isinstance(forecasts, (list, tuple)):
        return list(forecasts)
    raise KGVSFError(f"forecasts must be a forecast Dataset or a list of them, got "
                     f"{type(forecasts).__name__}")


def _window(cube: Any, origins: list[pd.Timestamp], points: list[pd.DataFrame],
            window: tuple[int, int] | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The time range shown: around the forecasts, or the whole record."""
    first = min(cube.times.min(), cube.days.min()) if len(cube.days) else cube.times.min()
    last = max(cube.times.max(), cube.days.max()) if len(cube.days) else cube.times.max()
    if window is None or not origins:
        return first, last
    before, after = window
    lo = min(origins) - pd.Timedelta(days=int(before))
    hi = max(p["time"].max() for p in points) + pd.Timedelta(days=int(after))
    return max(lo, first), min(hi, last)


def _value_at(t: pd.Timestamp, obs: pd.Series, truth: pd.Series | None) -> float:
    """The observation at ``t``, else the truth at ``t``, else NaN."""
    for series in (obs, truth):
        if series is not None and t in series.index and np.isfinite(series[t]):
            return float(series[t])
    return float("nan")


def _forecast_layers(points: list[pd.DataFrame], origins: list[pd.Timestamp], obs: pd.Series,
                     truth: pd.Series | None, time: Any, value: Any,
                     colours: dict[str, str]) -> list[Any]:
    """Per scenario: a line from the value at ``t`` through the forecasts, and their points."""
    import holoviews as hv

    if not points:
        return []
    table = pd.concat([p.assign(origin=t) for p, t in zip(points, origins)], ignore_index=True)
    layers = []
    for name, rows in table.groupby("scenario", sort=False):
        xs: list[Any] = []
        ys: list[float] = []
        for t, run in rows.groupby("origin", sort=True):
            run = run.sort_values("time")
            xs += [t, *run["time"], t]
            ys += [_value_at(t, obs, truth), *run["value"], np.nan]  # NaN breaks the line
        colour = colours[str(name)]
        layers.append(hv.Curve((xs, ys), time, value, label=f"forecast, {name}")
                      .opts(color=colour, line_width=2))
        layers.append(hv.Scatter((rows["time"], rows["value"]), time, value,
                                 label=f"forecast, {name}")
                      .opts(color=colour, size=8, marker="diamond", tools=["hover"]))
    return layers


def _driver_panel(table: pd.DataFrame, driver: str, start: pd.Timestamp | None, time: Any,
                  colours: dict[str, str], frame_width: int,
                  origins: list[pd.Timestamp]) -> Any:
    """The observed series of ``driver`` and, from ``start``, its series under each scenario."""
    import holoviews as hv

    unit = schema.DRIVER_UNITS.get(driver)
    value = hv.Dimension(driver, unit=unit)
    step = {"interpolation": "steps-mid"} if driver in ("prcp", "swe") else {}
    layers = []
    for name, rows in table.groupby("scenario", sort=False):
        if name != _series.OBSERVED and start is not None:
            rows = rows[rows["time"] >= start]
        label = "observed weather" if name == _series.OBSERVED else f"weather, {name}"
        layers.append(hv.Curve((rows["time"], rows[driver]), time, value, label=label)
                      .opts(color=colours[str(name)], **step))
    layers += [hv.VLine(t).opts(color="grey", line_dash="dashed", line_width=1) for t in origins]
    return hv.Overlay(layers).opts(frame_width=frame_width, frame_height=DRIVER_HEIGHT,
                                   legend_position="right", show_grid=True, xlabel="",
                                   show_legend=len(layers) - len(origins) > 1)
