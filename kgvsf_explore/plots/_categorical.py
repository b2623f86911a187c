"""Categorical maps: class codes drawn with one colour each and named in the colour bar and hover.

The codes are mapped to positions ``0..n-1`` of the legend, so that any set of codes (``0, 1, 5``)
gets a discrete colour map with limits ``(-0.5, n - 0.5)``; the colour bar ticks carry the class
names and the hover tool shows the name of the class under the mouse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from . import _style


def categorical_map(
    codes: xr.DataArray,
    legend: Mapping[int, str],
    *,
    title: str,
    label: str,
    colours: Mapping[str, str] | None = None,
    tiles: Any = None,
    crs: Any = None,
    source: Any = None,
    **opts: Any,
) -> Any:
    """An hvplot image of class ``codes`` ``(y, x)`` with a discrete colour map and names.

    Parameters
    ----------
    codes
        Integer class codes on ``(y, x)``; codes missing from ``legend`` are named
        ``"class <code>"``; NaN (or codes mapped to None) stay transparent.
    legend
        ``{code: name}``.
    title, label
        The plot title and the name of the classes (colour bar title, hover label).
    colours
        ``{name: colour}`` overriding the default palette for some classes.
    tiles, crs
        See :func:`kgvsf_explore.plots._style.map_opts`.
    source
        Where to look for the CRS (default ``codes``).
    **opts
        Passed to ``hvplot.image``.

    Returns
    -------
    holoviews.Image

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> codes = xr.DataArray(np.array([[0, 1], [5, 1]]), dims=("y", "x"),
    ...                      coords={"y": [1.0, 0.0], "x": [0.0, 1.0]})
    >>> img = categorical_map(codes, {0: "bare", 1: "corn", 5: "wheat"}, title="t", label="c")
    >>> img.range(img.vdims[0])
    (-0.5, 2.5)
    """
    import hvplot.xarray  # noqa: F401
    from bokeh.models import CustomJSHover, FixedTicker

    values = np.asarray(codes.values, dtype="float64")
    present = np.unique(values[np.isfinite(values)]).astype("int64")
    names = {int(c): str(n) for c, n in legend.items()}
    names.update({int(c): f"class {c}" for c in present if int(c) not in names})
    order = sorted(names)
    position = np.full(values.shape, np.nan)
    for i, code in enumerate(order):
        position[values == code] = i
    labels = [names[c] for c in order]
    fallback = _style.palette(len(labels))
    chosen = {**_style.CLASS_COLOURS, **(colours or {})}
    cmap = [chosen.get(n, fallback[i]) for i, n in enumerate(labels)]
    n = len(labels)
    da = codes.copy(data=position).rename(label.replace(" ", "_"))
    js = (f"const names = {json.dumps(labels)}; const i = Math.round(value); "
          "return (i >= 0 && i < names.length) ? names[i] : '';")
    kw = {
        **_style.map_opts(codes if source is None else source, crs=crs, tiles=tiles),
        "cmap": cmap,
        "clim": (-0.5, n - 0.5),
        "clabel": label,
        "title": title,
        "colorbar": True,
        **opts,
    }
    img = da.hvplot.image(**kw)
    return img.opts(
        colorbar_opts={"ticker": FixedTicker(ticks=list(range(n))),
                       "major_label_overrides": dict(enumerate(labels))},
        hover_tooltips=[("x", "$x{0.0}"), ("y", "$y{0.0}"), (label, "@image{custom}")],
        hover_formatters={"@image": CustomJSHover(code=js)},
        backend="bokeh",
    )
