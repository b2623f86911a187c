"""Forecast maps: one map per horizon (and scenario), and scenario-minus-baseline differences.

Both functions turn a ``([scenario,] horizon, y, x)`` array into hvplot images grouped by
``scenario`` and ``horizon``: a HoloMap (or DynamicMap) with a slider over the horizons and a
selector over the scenarios, or maps laid out side by side with linked zoom (``layout=``).
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from .. import schema
from ..errors import KGVSFError
from . import _style

__all__ = ["difference_map", "forecast_maps"]

#: Dimensions a map can be grouped by, in widget order.
GROUP_DIMS: tuple[str, ...] = ("scenario", "horizon")


def forecast_maps(
    forecast: xr.Dataset,
    var: str = "ndvi",
    *,
    band: str = "B08",
    scenario: str | None = None,
    layout: str | None = None,
    cols: int = 3,
    dynamic: bool = False,
    tiles: Any = None,
    crs: Any = None,
    **opts: Any,
) -> Any:
    """Maps of a forecast, one per horizon, with a horizon slider and a scenario selector.

    Parameters
    ----------
    forecast
        A forecast of :func:`kgvsf_explore.inference.forecast_region`: ``reflectance``
        ``([scenario,] horizon, band, y, x)`` and ``ndvi`` ``([scenario,] horizon, y, x)``.
    var
        ``"ndvi"`` (RdYlGn, fixed limits -1..1), ``"reflectance"`` (viridis, limits 0 to the
        99th percentile of the shown band, the same for every frame) or a band name, which
        stands for ``"reflectance"`` of that band.
    band
        The band shown when ``var="reflectance"``.
    scenario
        Show only this scenario (no scenario selector).
    layout
        ``"horizon"`` or ``"scenario"``: lay the maps out side by side along that dimension
        (zoom and pan linked) instead of giving it a widget.
    cols
        Number of columns of the layout.
    dynamic
        Return a DynamicMap (renders each frame on demand, needs a live kernel) instead of a
        HoloMap (every frame in the notebook, also in exported HTML); ignored with ``layout``.
    tiles
        Basemap tiles (``True``, ``"OSM"``, ``"EsriImagery"``...; needs geoviews). Off by default.
    crs
        The CRS of the data when the forecast carries none (``spatial_ref``).
    **opts
        Passed to ``hvplot.image`` (``cmap``, ``clim``, ``frame_width``, ``title``...). A given
        ``clim`` also spares reading a lazy (dask) forecast whole for the reflectance limits.

    Returns
    -------
    holoviews.HoloMap, holoviews.DynamicMap, holoviews.NdLayout or holoviews.Image
        Keyed by ``scenario`` and ``horizon`` (those present and not fixed).

    Examples
    --------
    >>> from kgvsf_explore.plots import forecast_maps
    >>> maps = forecast_maps(forecast)                      # doctest: +SKIP
    >>> maps.kdims                                          # doctest: +SKIP
    [Dimension('scenario'), Dimension('horizon')]
    >>> forecast_maps(forecast, "B04", scenario="dry", layout="horizon")  # doctest: +SKIP
    """
    if not isinstance(forecast, xr.Dataset):
        raise KGVSFError(f"forecast_maps expects a forecast Dataset, got {type(forecast).__name__}")
    if var in schema.BANDS and var not in forecast.data_vars:
        var, band = "reflectance", var
    if var not in forecast.data_vars:
        raise KGVSFError(f"the forecast has no variable {var!r}; it holds "
                         f"{sorted(str(v) for v in forecast.data_vars)} (or pick a band of "
                         "'reflectance' by name)")
    da = forecast[var]
    label = var.upper() if var == "ndvi" else var
    if "band" in da.dims:
        bands = [str(b) for b in da["band"].values]
        if band not in bands:
            raise KGVSFError(f"the forecast has no band {band!r}; its bands are {bands}")
        da = da.sel(band=band, drop=True)
        label = f"{band} reflectance"
    if scenario is not None:
        da = _select_scenario(da, scenario)
    cmap, clim = _style.CMAPS.get(var, _style.CMAPS["reflectance"])
    if clim is None and "clim" not in opts:  # computing the limits reads every frame
        top = _style.robust_max(da.values)
        clim = (0.0, top if top > 0 else 1.0)
    title = f"{label} forecast" + start_text(forecast.attrs)
    defaults = {"cmap": cmap, "clim": clim, "clabel": label}
    return _grouped_maps(da.rename(var), title, defaults, forecast, layout=layout, cols=cols,
                         dynamic=dynamic, tiles=tiles, crs=crs, opts=opts)


def start_text(attrs: dict) -> str:
    """`` from <t>`` for a title, saying when ``t`` is not the start that was asked for."""
    t, asked = attrs.get("t"), attrs.get("requested_start")
    if not t:
        return ""
    if asked and str(asked)[:10] != str(t):
        return f" from {t} (the last image on or before {asked})"
    return f" from {t}"


def difference_map(
    diff: xr.DataArray,
    *,
    vmax: float | None = None,
    band: str = "B08",
    layout: str | None = None,
    cols: int = 3,
    dynamic: bool = False,
    tiles: Any = None,
    crs: Any = None,
    **opts: Any,
) -> Any:
    """Scenario-minus-baseline maps on a diverging colour map centred on zero.

    Parameters
    ----------
    diff
        Differences ``([scenario,] horizon, [band,] y, x)``, e.g.
        :meth:`kgvsf_explore.Forecaster.compare` of a forecast with scenarios.
    vmax
        Colour limits ``(-vmax, vmax)``; default the 99th percentile of ``|diff|`` over every
        frame, so that the frames share one colour scale.
    band
        The band shown when ``diff`` has a ``band`` dimension (reflectance differences).
    layout, cols, dynamic, tiles, crs, **opts
        As in :func:`forecast_maps`.

    Returns
    -------
    holoviews.HoloMap, holoviews.DynamicMap, holoviews.NdLayout or holoviews.Image
        Keyed by ``scenario`` and ``horizon`` (those present).

    Examples
    --------
    >>> from kgvsf_explore import Forecaster
    >>> from kgvsf_explore.plots import difference_map
    >>> diff = Forecaster.compare(forecast)                 # doctest: +SKIP
    >>> difference_map(diff, vmax=0.2)                      # doctest: +SKIP
    """
    if isinstance(diff, xr.Dataset):
        raise KGVSFError("difference_map expects the DataArray of differences; for a forecast "
                         "with scenarios use difference_map(Forecaster.compare(forecast))")
    if not isinstance(diff, xr.DataArray):
        raise KGVSFError(f"difference_map expects a DataArray, got {type(diff).__name__}")
    da = diff
    name = str(da.name or "difference")
    if "band" in da.dims:
        bands = [str(b) for b in da["band"].values]
        if band not in bands:
            raise KGVSFError(f"the differences have no band {band!r}; their bands are {bands}")
        da = da.sel(band=band, drop=True)
        name = f"{band}_difference"
    if vmax is None and "clim" not in opts:  # computing the limits reads every frame
        vmax = _style.robust_max(abs(da.values))
    if vmax is None or not vmax > 0:  # also NaN: no difference anywhere
        vmax = 1e-3
    vmax = float(vmax)
    label = name.replace("_", " ")
    subtracted = diff.attrs.get("subtracted")
    title = label + (f" (minus {subtracted})" if subtracted else "") + start_text(diff.attrs)
    defaults = {"cmap": _style.CMAPS["difference"][0], "clim": (-vmax, vmax), "clabel": label}
    return _grouped_maps(da.rename(name), title, defaults, diff, layout=layout, cols=cols,
                         dynamic=dynamic, tiles=tiles, crs=crs, opts=opts)


def _select_scenario(da: xr.DataArray, scenario: str) -> xr.DataArray:
    if "scenario" not in da.dims:
        raise KGVSFError(f"scenario={scenario!r} was given but the forecast has no scenarios")
    names = [str(s) for s in da["scenario"].values]
    if scenario not in names:
        raise KGVSFError(f"the forecast has no scenario {scenario!r}; its scenarios are {names}")
    return da.sel(scenario=scenario, drop=True)


def _grouped_maps(da: xr.DataArray, title: str, defaults: dict[str, Any], source: Any, *,
                  layout: str | None, cols: int, dynamic: bool, tiles: Any, crs: Any,
                  opts: dict[str, Any]) -> Any:
    """hvplot images of ``da`` grouped by its scenario/horizon dims, optionally laid out."""
    import hvplot.xarray  # noqa: F401

    extra = [d for d in da.dims if d not in (*GROUP_DIMS, schema.Y_DIM, schema.X_DIM)]
    if extra or schema.Y_DIM not in da.dims or schema.X_DIM not in da.dims:
        raise KGVSFError(f"cannot map an array on {da.dims}: expected ([scenario,] horizon, y, x)"
                         + (f"; select {extra} first" if extra else ""))
    groupby = [d for d in GROUP_DIMS if d in da.dims]
    if layout is not None and layout not in groupby:
        raise KGVSFError(f"layout={layout!r} must be one of the dimensions {groupby}")
    da = da.drop_vars([c for c in da.coords if c not in (*groupby, schema.Y_DIM, schema.X_DIM)])
    width = _style.LAYOUT_FRAME_WIDTH if layout else _style.FRAME_WIDTH
    kw = {**_style.map_opts(source, crs=crs, tiles=tiles, frame_width=width), **defaults,
          "title": f"{title}: {{dimensions}}" if groupby else title, **opts}
    if groupby:
        kw.update(groupby=groupby, dynamic=dynamic and layout is None)
    hmap = da.hvplot.image(**kw)
    if not groupby:
        return hmap
    redim = {d: _style.ordered(d, da[d].values.tolist()) for d in groupby if d != "horizon"}
    if "horizon" in groupby:
        redim["horizon"] = _style.horizon_dimension(_dated(da, source))
    hmap = hmap.redim(**redim)
    if layout is None:
        return hmap
    return hmap.layout(layout).cols(cols)


def _dated(da: xr.DataArray, source: Any) -> xr.DataArray:
    """``da`` with the forecast's ``time`` (date of each horizon) if ``source`` has it."""
    coords = getattr(source, "coords", {})
    if schema.TIME_DIM in coords and coords[schema.TIME_DIM].dims == ("horizon",):
        return da.assign_coords({schema.TIME_DIM: coords[schema.TIME_DIM]})
    return da
