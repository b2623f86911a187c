"""Data of the overview map's layers: true colour, NDVI, crop map, soil moisture, embedding.

Each function returns a dict that :mod:`kgvsf_explore.app._layout` draws: ``kind`` (``"rgb"``,
``"image"`` or ``"classes"``), ``x``, ``y``, ``values`` and a ``title`` (plus ``cmap``/``clim``
or a ``legend``). Large cubes are decimated to :data:`MAX_MAP_SIDE` pixels per side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..cube.cube import Cube
from ..errors import KGVSFError
from ._plots import true_colour
from .session import SessionCache

#: Layers of the overview map.
LAYERS: tuple[str, ...] = ("true colour", "NDVI", "crop map", "soil moisture", "embedding RGB")

#: The overview map is decimated to at most this many pixels per side.
MAX_MAP_SIDE = 512

#: The embedding layer covers cubes up to this many pixels (it encodes the whole cube).
MAX_EMBEDDING_PIXELS = 256 * 256


def latest_clear(stack: np.ndarray) -> np.ndarray:
    """The last finite value along the first axis (``(time, y, x)`` -> ``(y, x)``)."""
    out = np.full(stack.shape[1:], np.nan, dtype="float32")
    for frame in stack:
        ok = np.isfinite(frame)
        out[ok] = frame[ok]
    return out


def layer_data(cube: Cube, layer: str, start: pd.Timestamp,
               sessions: SessionCache | None = None) -> dict[str, Any]:
    """The overview map of ``layer`` on the last image date on or before ``start``.

    Parameters
    ----------
    cube
        The cube.
    layer
        One of :data:`LAYERS`.
    start
        The date; true colour and NDVI show the latest clear pixel of the last six images up
        to it.
    sessions
        Needed for ``"embedding RGB"`` (it encodes the whole cube as one region).

    Raises
    ------
    KGVSFError
        When the cube lacks the layer's variable, or the embedding cannot be made.
    """
    ds = cube.ds
    x_all, y_all = np.asarray(ds[schema.X_DIM].values), np.asarray(ds[schema.Y_DIM].values)
    s = max(1, int(np.ceil(max(len(x_all), len(y_all)) / MAX_MAP_SIDE)))
    sub = {schema.Y_DIM: slice(None, None, s), schema.X_DIM: slice(None, None, s)}
    x, y = x_all[::s], y_all[::s]
    times = pd.DatetimeIndex(ds[schema.TIME_DIM].values)
    n = max(1, int((times <= start).sum()))
    t = times[n - 1]
    if layer in ("true colour", "NDVI"):
        names = ["B04", "B03", "B02"] if layer == "true colour" else ["B04", "B08"]
        block = ds[names].isel({schema.TIME_DIM: slice(max(0, n - 6), n), **sub}).compute()
        arrs = {b: latest_clear(block[b].values) for b in names}
        if layer == "true colour":
            return {"kind": "rgb", "x": x, "y": y,
                    "title": f"true colour, latest clear pixel up to {t.date()}",
                    "values": true_colour(arrs["B04"], arrs["B03"], arrs["B02"])}
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (arrs["B08"] - arrs["B04"]) / (arrs["B08"] + arrs["B04"])
        return {"kind": "image", "x": x, "y": y, "values": v, "cmap": "RdYlGn",
                "clim": (-0.2, 1.0), "title": f"NDVI, latest clear up to {t.date()}",
                "label": "NDVI"}
    if layer == "crop map":
        if schema.CROP_TYPE not in ds:
            raise KGVSFError("this cube has no crop_type layer")
        return {"kind": "classes", "x": x, "y": y, "title": "crop map",
                "values": np.asarray(schema.crop_map(ds).isel(sub).values),
                "legend": cube.legend(schema.CROP_TYPE)}
    if layer == "soil moisture":
        if schema.SOIL_MOISTURE not in ds:
            raise KGVSFError("this cube has no soil_moisture layer")
        v = ds[schema.SOIL_MOISTURE].sel({schema.DAY_DIM: t}).isel(sub).values
        return {"kind": "image", "x": x, "y": y, "values": v, "cmap": "YlGnBu",
                "title": f"soil moisture {t.date()} (m3/m3)", "label": "m3/m3"}
    if layer == "embedding RGB":
        if sessions is None:
            raise KGVSFError("the embedding layer needs the model's weights")
        if len(x_all) * len(y_all) > MAX_EMBEDDING_PIXELS:
            raise KGVSFError(f"the embedding layer covers cubes up to {MAX_EMBEDDING_PIXELS} "
                             "pixels; the region's embedding is in its own pane")
        session = sessions.get(start, slice(0, len(y_all)), slice(0, len(x_all)))
        return {"kind": "rgb", "x": x_all, "y": y_all, "values": session.embedding_rgb(),
                "title": f"embedding (PCA RGB) at {session.t.date()}"}
    raise KGVSFError(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")
