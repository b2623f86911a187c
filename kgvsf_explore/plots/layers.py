"""Maps of a cube's layers: the crop-type classes and the soil moisture of one day."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import KGVSFError
from . import _style
from ._categorical import categorical_map

__all__ = ["crop_map", "soil_moisture_map"]


def crop_map(cube: Any, *, tiles: Any = None, crs: Any = None, **opts: Any) -> Any:
    """The crop-type map of a cube: one colour per class, class names in the legend and hover.

    Parameters
    ----------
    cube
        A :class:`kgvsf_explore.Cube` with a ``crop_type`` layer (legend from its
        ``flag_values``/``flag_meanings``, see :meth:`kgvsf_explore.Cube.legend`).
    tiles
        Basemap tiles (needs geoviews); off by default.
    crs
        The CRS, when the cube carries none.
    **opts
        Passed to ``hvplot.image`` (``frame_width``, ``title``...).

    Returns
    -------
    holoviews.Image

    Examples
    --------
    >>> import kgvsf_explore as kx
    >>> from kgvsf_explore.plots import crop_map
    >>> crop_map(kx.open_cube(kx.sample_path()))            # doctest: +SKIP
    """
    ds = cube.ds
    if schema.CROP_TYPE not in ds:
        raise KGVSFError(f"the cube has no '{schema.CROP_TYPE}' layer; variables: "
                         f"{sorted(str(v) for v in ds.data_vars)}")
    legend = cube.legend(schema.CROP_TYPE) or schema.CROP_CLASSES
    return categorical_map(schema.crop_map(ds), legend, title="crop type", label="crop type",
                           tiles=tiles, crs=crs, source=cube, **opts)


def soil_moisture_map(cube: Any, date: Any, *, tiles: Any = None, crs: Any = None,
                      **opts: Any) -> Any:
    """Root-zone soil moisture of the day nearest ``date``, on a sequential colour map.

    Parameters
    ----------
    cube
        A :class:`kgvsf_explore.Cube` with a ``soil_moisture`` ``(day, y, x)`` variable.
    date
        Anything :class:`pandas.Timestamp` reads; the nearest day is shown (named in the title).
    tiles, crs, **opts
        As in :func:`crop_map`; ``clim`` defaults to the 1st..99th percentiles of the day.

    Returns
    -------
    holoviews.Image

    Examples
    --------
    >>> from kgvsf_explore.plots import soil_moisture_map
    >>> soil_moisture_map(cube, "2022-07-15", cmap="Blues")  # doctest: +SKIP
    """
    import hvplot.xarray  # noqa: F401

    ds = cube.ds
    if schema.SOIL_MOISTURE not in ds:
        raise KGVSFError(f"the cube has no '{schema.SOIL_MOISTURE}' variable; variables: "
                         f"{sorted(str(v) for v in ds.data_vars)}")
    try:
        when = np.datetime64(pd.Timestamp(date), "ns")
    except (ValueError, TypeError) as err:
        raise KGVSFError(f"cannot read {date!r} as a date ({err})") from None
    da = ds[schema.SOIL_MOISTURE].sel({schema.DAY_DIM: when}, method="nearest").compute()
    day = pd.Timestamp(da[schema.DAY_DIM].values).date()
    units = da.attrs.get("units", schema.SOIL_MOISTURE_UNITS)
    values = np.asarray(da.values, dtype="float64")
    finite = values[np.isfinite(values)]
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    kw = {
        **_style.map_opts(cube, crs=crs, tiles=tiles),
        "cmap": _style.CMAPS["soil_moisture"][0],
        "clim": (float(lo), float(hi) if hi > lo else float(lo) + 1e-3),
        "clabel": f"soil moisture ({units})",
        "title": f"root-zone soil moisture, {day}",
        **opts,
    }
    da = da.drop_vars([c for c in da.coords if c not in (schema.Y_DIM, schema.X_DIM)])
    return da.rename(schema.SOIL_MOISTURE).hvplot.image(**kw)
