"""Shared look of the plots: colour maps, sizes, CRS axis labels and the optional basemap tiles.

The vocabulary is data at the top of the file (:data:`CMAPS`, :data:`CLASS_COLOURS`, ...), so
what a plot looks like can be read, and changed, in one place.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from ..errors import KGVSFError, MissingDependencyError

#: Default width in pixels of a map frame (the plotting area, without axes and colour bar).
FRAME_WIDTH = 400
#: Default width of the maps laid out side by side (``layout=``).
LAYOUT_FRAME_WIDTH = 280
#: Default width of the time-series panels of :func:`trajectory`.
SERIES_FRAME_WIDTH = 650

#: Colour map and colour limits per variable; ``None`` limits are computed from the data.
CMAPS: dict[str, tuple[str, tuple[float, float] | None]] = {
    "ndvi": ("RdYlGn", (-1.0, 1.0)),
    "reflectance": ("viridis", None),
    "difference": ("BrBG", None),
    "soil_moisture": ("YlGnBu", None),
}

#: Colours of the crop classes of the sample world (names of :data:`schema.CROP_CLASSES`).
CLASS_COLOURS: dict[str, str] = {
    "non_crop": "#c8c8c8",
    "corn": "#e6b800",
    "soybean": "#2e8b57",
    "winter_wheat": "#b5651d",
    "grassland": "#9acd32",
}

#: Name of the observed weather among the scenarios (its colour is the first of :func:`palette`).
OBSERVED = "observed"
#: Colour of the satellite observations and of the cloud-free truth in :func:`trajectory`.
DATA_COLOUR = "#222222"
TRUTH_COLOUR = "#8c8c8c"


def palette(n: int) -> list[str]:
    """``n`` distinct colours: Category10 first, then glasbey (colorcet ships with hvplot).

    Examples
    --------
    >>> palette(2)
    ['#1f77b3', '#ff7e0e']
    """
    import colorcet

    return list(colorcet.b_glasbey_category10[:n])


def scenario_colours(names: Iterable[str]) -> dict[str, str]:
    """One colour per scenario name (in order); ``"observed"`` always gets the first colour.

    Examples
    --------
    >>> scenario_colours(["dry", "observed"])
    {'dry': '#ff7e0e', 'observed': '#1f77b3'}
    """
    names = list(dict.fromkeys(names))
    others = [n for n in names if n != OBSERVED]
    colours = palette(len(others) + 1)
    out = dict(zip(others, colours[1:]))
    return {n: colours[0] if n == OBSERVED else out[n] for n in names}


def crs_of(obj: Any, crs: Any = None) -> Any:
    """The :class:`pyproj.CRS` of a cube, dataset or data array (or of ``crs`` if given).

    Looks at a ``spatial_ref`` variable or coordinate and at ``attrs["crs"]``; returns None
    when there is none.
    """
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    from ..cube._util import get_crs

    if crs is not None:
        return CRS.from_user_input(crs)
    ds = getattr(obj, "ds", obj)
    if isinstance(ds, xr.DataArray):
        ds = ds.coords.to_dataset().assign_attrs(ds.attrs)
    if not isinstance(ds, xr.Dataset):
        return None
    try:
        return get_crs(ds)
    except CRSError:  # an unparsable CRS only costs the axis labels their CRS
        return None


def axis_labels(crs: Any) -> dict[str, str]:
    """``xlabel``/``ylabel`` naming the CRS and its unit, e.g. ``"x (EPSG:32615, m)"``.

    Examples
    --------
    >>> axis_labels(None)
    {'xlabel': 'x', 'ylabel': 'y'}
    """
    if crs is None:
        return {"xlabel": "x", "ylabel": "y"}
    name = crs.to_string()
    units = {a.unit_name for a in crs.axis_info}
    unit = units.pop() if len(units) == 1 else ""
    unit = {"metre": "m", "meter": "m", "degree": "deg"}.get(unit, unit)
    suffix = f"{name}, {unit}" if unit else name
    return {"xlabel": f"x ({suffix})", "ylabel": f"y ({suffix})"}


def map_opts(obj: Any, *, crs: Any = None, tiles: Any = None,
             frame_width: int = FRAME_WIDTH) -> dict[str, Any]:
    """hvplot keywords every map shares: x/y coordinates, equal aspect, CRS labels, tiles.

    Parameters
    ----------
    obj
        What the map shows (a cube, dataset or data array), to find its CRS.
    crs
        The CRS of the data, overriding what ``obj`` carries.
    tiles
        None (no basemap) or an hvplot ``tiles`` value (``True``, ``"OSM"``,
        ``"EsriImagery"``...); needs geoviews, which reprojects the map to web mercator.
    frame_width
        Width of the plotting area in pixels.

    Raises
    ------
    MissingDependencyError
        When ``tiles`` is given and geoviews is not installed.
    """
    the_crs = crs_of(obj, crs)
    opts: dict[str, Any] = {
        "x": schema.X_DIM,
        "y": schema.Y_DIM,
        "data_aspect": 1,
        "frame_width": frame_width,
    }
    if tiles is None:
        return {**opts, **axis_labels(the_crs)}
    if not has_module("geoviews"):
        raise MissingDependencyError(
            f"tiles={tiles!r} needs geoviews (and cartopy) to put the map on a basemap: "
            "`pip install geoviews`, or leave tiles=None for a map in the data's coordinates"
        )
    if the_crs is None:
        raise KGVSFError(f"tiles={tiles!r} needs the data's CRS: pass crs='EPSG:...'")
    epsg = the_crs.to_epsg()
    opts.pop("data_aspect")
    return {**opts, "tiles": tiles, "geo": True, "crs": epsg if epsg else the_crs.to_wkt()}


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported (without importing it)."""
    return importlib.util.find_spec(name) is not None


def robust_max(values: Any, q: float = 99.0) -> float:
    """The ``q``-th percentile of the finite values of ``values`` (NaN when there are none).

    Examples
    --------
    >>> robust_max(np.arange(101.0))
    99.0
    """
    arr = np.asarray(values, dtype="float64").ravel()
    arr = arr[np.isfinite(arr)]
    return float(np.percentile(arr, q)) if arr.size else float("nan")


def ordered(dim: str, values: Iterable[Hashable], **kwargs: Any) -> Any:
    """A holoviews Dimension keeping ``values`` in the given order (widgets follow it)."""
    import holoviews as hv

    return hv.Dimension(dim, values=list(values), **kwargs)


def horizon_dimension(da: xr.DataArray) -> Any:
    """The ``horizon`` Dimension, its values shown as ``"15 d (2022-07-16)"`` when dated."""
    horizons = [int(h) for h in da["horizon"].values]
    dates: Mapping[int, str] = {}
    if schema.TIME_DIM in da.coords and da[schema.TIME_DIM].dims == ("horizon",):
        stamps = np.asarray(da[schema.TIME_DIM].values, dtype="datetime64[D]")
        dates = {h: str(d) for h, d in zip(horizons, stamps)}

    def fmt(h: Any) -> str:
        date = dates.get(int(h))
        return f"{int(h)} d ({date})" if date else f"{int(h)} d"

    return ordered("horizon", horizons, value_format=fmt)
