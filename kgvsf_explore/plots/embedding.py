"""Maps of per-pixel embeddings: PCA false colour and k-means clusters."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from ..embeddings import FEATURE_DIM, pca_rgb
from ..errors import KGVSFError
from . import _style
from ._categorical import categorical_map

__all__ = ["cluster_map", "embedding_map"]


def embedding_map(emb_or_rgb: xr.DataArray, *, tiles: Any = None, crs: Any = None,
                  **opts: Any) -> Any:
    """An RGB map of embeddings: their first three principal components as red, green, blue.

    Parameters
    ----------
    emb_or_rgb
        Raw embeddings ``(feature, y, x)`` (from :meth:`kgvsf_explore.Forecaster.embed`),
        which go through :func:`kgvsf_explore.embeddings.pca_rgb`, or its result
        ``(band, y, x)`` with three bands in ``[0, 1]``. NaN pixels are transparent.
    tiles, crs
        Basemap tiles (needs geoviews; off by default) and the CRS when the data carry none.
    **opts
        Passed to ``hvplot.rgb`` (``frame_width``, ``title``...).

    Returns
    -------
    holoviews.RGB

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from kgvsf_explore.plots import embedding_map
    >>> emb = xr.DataArray(np.random.default_rng(0).normal(size=(8, 4, 5)),
    ...                    dims=("feature", "y", "x"),
    ...                    coords={"y": [30.0, 20.0, 10.0, 0.0], "x": np.arange(5) * 10.0})
    >>> type(embedding_map(emb)).__name__
    'RGB'
    """
    import hvplot.xarray  # noqa: F401

    da = _one_date(emb_or_rgb)
    if FEATURE_DIM in da.dims:
        rgb = pca_rgb(da)
    elif "band" in da.dims and da.sizes["band"] == 3:
        rgb = da
    else:
        raise KGVSFError(f"embedding_map expects embeddings ({FEATURE_DIM}, y, x) or an RGB "
                         f"(band, y, x) with 3 bands, got dims {da.dims}")
    rgb = rgb.transpose("band", schema.Y_DIM, schema.X_DIM).astype("float32")
    rgb = rgb.drop_vars([c for c in rgb.coords
                         if c not in ("band", schema.Y_DIM, schema.X_DIM)]).rename("rgb")
    date = emb_or_rgb.attrs.get("t", "")
    kw = {
        **_style.map_opts(emb_or_rgb, crs=crs, tiles=tiles),
        "bands": "band",
        "title": "embedding, PCA false colour" + (f" ({date})" if date else ""),
        **opts,
    }
    return rgb.hvplot.rgb(**kw)


def cluster_map(labels: xr.DataArray, *, tiles: Any = None, crs: Any = None,
                **opts: Any) -> Any:
    """A categorical map of cluster labels (e.g. :func:`kgvsf_explore.embeddings.kmeans`).

    Parameters
    ----------
    labels
        Integer labels ``(y, x)``; negative labels (no finite embedding) are transparent.
    tiles, crs, **opts
        As in :func:`embedding_map` (``opts`` go to ``hvplot.image``).

    Returns
    -------
    holoviews.Image
        One colour per cluster, named ``"cluster <i>"`` in the colour bar and the hover.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from kgvsf_explore.plots import cluster_map
    >>> labels = xr.DataArray(np.array([[0, 1], [2, -1]]), dims=("y", "x"),
    ...                       coords={"y": [10.0, 0.0], "x": [0.0, 10.0]})
    >>> type(cluster_map(labels)).__name__
    'Image'
    """
    if not isinstance(labels, xr.DataArray) or set(labels.dims) != {schema.Y_DIM, schema.X_DIM}:
        dims = getattr(labels, "dims", type(labels).__name__)
        raise KGVSFError(f"cluster_map expects (y, x) labels, got {dims}")
    values = np.asarray(labels.values, dtype="float64")
    codes = labels.copy(data=np.where(values >= 0, values, np.nan))
    present = np.unique(values[np.isfinite(values) & (values >= 0)]).astype(int)
    legend = {int(c): f"cluster {c}" for c in present}
    k = labels.attrs.get("long_name", "clusters")
    return categorical_map(codes.transpose(schema.Y_DIM, schema.X_DIM), legend, title=k,
                           label="cluster", tiles=tiles, crs=crs, source=labels, **opts)


def _one_date(da: Any) -> xr.DataArray:
    if not isinstance(da, xr.DataArray):
        raise KGVSFError(f"embedding_map expects a DataArray, got {type(da).__name__}")
    if schema.TIME_DIM in da.dims:
        if da.sizes[schema.TIME_DIM] != 1:
            raise KGVSFError(f"the embeddings hold {da.sizes[schema.TIME_DIM]} dates; pick one "
                             "with emb.sel(time=...) (each date gets its own PCA)")
        da = da.isel({schema.TIME_DIM: 0})
    return da
