"""Look at per-pixel embeddings: PCA false colour, k-means clusters, per-field means.

All functions take the ``(feature, y, x)`` array of
:meth:`kgvsf_explore.forecaster.Forecaster.embed`; PCA is numpy's SVD and clustering is scipy's
k-means (seeded, deterministic). :func:`field_means` and :func:`cluster_fields` work per field
polygon; :func:`to_geoparquet` writes the result atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from . import schema
from ._atomic import atomic_write
from .errors import KGVSFError

FEATURE_DIM = "feature"


def _pixels(emb: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """``(n_valid, F)`` float64 pixel matrix and the ``(y*x,)`` finite mask."""
    if emb.dims[0] != FEATURE_DIM or emb.ndim != 3:
        emb = emb.transpose(FEATURE_DIM, schema.Y_DIM, schema.X_DIM)
    flat = np.asarray(emb.values, dtype="float64").reshape(emb.shape[0], -1).T
    ok = np.isfinite(flat).all(axis=1)
    if not ok.any():
        raise KGVSFError("the embedding has no finite pixel")
    return flat[ok], ok


def _spatial_like(emb: xr.DataArray, values: np.ndarray, dims: tuple[str, ...],
                  extra: dict[str, Any] | None = None) -> xr.DataArray:
    coords = {k: v for k, v in emb.coords.items() if FEATURE_DIM not in v.dims}
    coords.update(extra or {})
    return xr.DataArray(values, dims=dims, coords=coords)


def pca_rgb(emb: xr.DataArray) -> xr.DataArray:
    """False-colour image of the first three principal components.

    Each component is scaled to ``[0, 1]`` between its 2nd and 98th percentiles (clipped).
    The sign of each component is fixed so that its largest-magnitude loading is positive.

    Parameters
    ----------
    emb
        ``(feature, y, x)`` embeddings.

    Returns
    -------
    xarray.DataArray
        ``(band, y, x)`` with ``band = ["r", "g", "b"]``, float32 in ``[0, 1]`` (NaN where the
        embedding is not finite).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> emb = xr.DataArray(np.random.default_rng(0).normal(size=(8, 4, 5)),
    ...                    dims=("feature", "y", "x"))
    >>> rgb = pca_rgb(emb)
    >>> rgb.dims, float(rgb.min()) >= 0, float(rgb.max()) <= 1
    (('band', 'y', 'x'), True, True)
    """
    emb = emb.transpose(FEATURE_DIM, schema.Y_DIM, schema.X_DIM)
    x, ok = _pixels(emb)
    x = x - x.mean(axis=0)
    # the principal axes from the (feature x feature) covariance: an order of magnitude
    # quicker than an SVD of the (pixel x feature) matrix, and the same axes
    x64 = x.astype("float64")
    _, vecs = np.linalg.eigh(x64.T @ x64)  # eigenvalues ascending
    comps = vecs[:, ::-1][:, :min(3, *x.shape)].T
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
    scores = x @ comps.T
    if scores.shape[1] < 3:
        scores = np.concatenate([scores, np.zeros((len(scores), 3 - scores.shape[1]))], 1)
    lo, hi = np.percentile(scores, [2, 98], axis=0)
    scaled = np.clip((scores - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
    out = np.full((emb.shape[1] * emb.shape[2], 3), np.nan)
    out[ok] = scaled
    img = out.T.reshape(3, emb.shape[1], emb.shape[2]).astype("float32")
    res = _spatial_like(emb, img, ("band", schema.Y_DIM, schema.X_DIM),
                        {"band": ["r", "g", "b"]})
    return res.rename("pca_rgb").assign_attrs(
        long_name="first three principal components of the embedding", t=emb.attrs.get("t", ""))


def kmeans(emb: xr.DataArray, k: int = 5, seed: int = 0, iters: int = 50) -> xr.DataArray:
    """Cluster the pixels of an embedding (k-means++, then Lloyd: :func:`scipy.cluster.vq.kmeans2`).

    Parameters
    ----------
    emb
        ``(feature, y, x)`` embeddings.
    k
        Number of clusters.
    seed
        Seed of the k-means++ initialisation (same seed, same labels).
    iters
        Maximum Lloyd iterations.

    Returns
    -------
    xarray.DataArray
        ``(y, x)`` int labels in ``0..k-1`` (-1 where the embedding is not finite).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> emb = xr.DataArray(np.random.default_rng(0).normal(size=(4, 6, 6)),
    ...                    dims=("feature", "y", "x"))
    >>> int(kmeans(emb, k=3).max()) <= 2
    True
    """
    emb = emb.transpose(FEATURE_DIM, schema.Y_DIM, schema.X_DIM)
    x, ok = _pixels(emb)
    labels = _kmeans_labels(x, k, seed, iters, "valid pixels")
    out = np.full(ok.shape, -1, dtype="int64")
    out[ok] = labels
    res = _spatial_like(emb, out.reshape(emb.shape[1], emb.shape[2]),
                        (schema.Y_DIM, schema.X_DIM))
    return res.rename("cluster").assign_attrs(long_name=f"k-means cluster (k={k})",
                                              seed=seed, t=emb.attrs.get("t", ""))


def _kmeans_labels(x: np.ndarray, k: int, seed: int, iters: int, what: str) -> np.ndarray:
    """k-means++ then Lloyd (:func:`scipy.cluster.vq.kmeans2`) labels of the rows of ``x``."""
    from scipy.cluster.vq import kmeans2

    if k < 1 or k > len(x):
        raise KGVSFError(f"k={k} must lie in [1, {len(x)}] (the number of {what})")
    _, labels = kmeans2(x, k, iter=iters, minit="++", seed=np.random.default_rng(seed))
    return labels.astype("int64")


def cluster_fields(gdf: Any, k: int = 5, seed: int = 0, iters: int = 50) -> Any:
    """Cluster fields by their mean embedding (the ``emb_*`` columns of :func:`field_means`).

    Returns a copy of ``gdf`` with an int ``cluster`` column in ``0..k-1``.

    Examples
    --------
    >>> means = field_means(emb, cube.fields, cube.field_id)   # doctest: +SKIP
    >>> fields = cluster_fields(means, k=4)                     # doctest: +SKIP
    >>> pd.crosstab(fields.crop_type, fields.cluster)           # doctest: +SKIP
    """
    cols = [c for c in gdf.columns if str(c).startswith("emb_")]
    if not cols:
        raise KGVSFError("no emb_* columns: pass the output of field_means()")
    x = gdf[cols].to_numpy(dtype="float64")
    out = gdf.copy()
    out["cluster"] = _kmeans_labels(x, k, seed, iters, "fields")
    return out


def field_means(emb: xr.DataArray, fields_gdf: Any, field_id: xr.DataArray) -> Any:
    """Mean embedding of every field, joined to the field polygons.

    Parameters
    ----------
    emb
        ``(feature, y, x)`` embeddings.
    fields_gdf
        :class:`geopandas.GeoDataFrame` with a ``field_id`` column (e.g. ``cube.fields``).
    field_id
        ``(y, x)`` field ids of the pixels (e.g. ``cube.field_id``), aligned to ``emb`` by
        coordinates; 0 or negative ids are background.

    Returns
    -------
    geopandas.GeoDataFrame
        The fields with pixels in ``emb``, with columns ``emb_0 .. emb_{F-1}`` and
        ``n_pixels``.

    Examples
    --------
    >>> gdf = field_means(emb, cube.fields, cube.field_id)   # doctest: +SKIP
    >>> to_geoparquet(gdf, "fields.parquet")                   # doctest: +SKIP
    """
    import pandas as pd

    emb = emb.transpose(FEATURE_DIM, schema.Y_DIM, schema.X_DIM)
    fid = field_id.sel({schema.Y_DIM: emb[schema.Y_DIM], schema.X_DIM: emb[schema.X_DIM]})
    ids = np.asarray(fid.transpose(schema.Y_DIM, schema.X_DIM).values).reshape(-1)
    flat = np.asarray(emb.values, dtype="float64").reshape(emb.shape[0], -1).T
    keep = np.isfinite(ids) & (ids > 0) & np.isfinite(flat).all(axis=1)
    cols = [f"emb_{i}" for i in range(emb.shape[0])]
    df = pd.DataFrame(flat[keep], columns=cols)
    df[schema.FIELD_ID] = ids[keep].astype("int64")
    means = df.groupby(schema.FIELD_ID)[cols].mean().astype("float32")
    means["n_pixels"] = df.groupby(schema.FIELD_ID).size()
    gdf = fields_gdf.copy()
    gdf[schema.FIELD_ID] = gdf[schema.FIELD_ID].astype("int64")
    gdf = gdf.drop(columns=[c for c in [*cols, "n_pixels"] if c in gdf.columns])
    out = gdf.merge(means, left_on=schema.FIELD_ID, right_index=True, how="inner")
    return out.reset_index(drop=True)


def to_geoparquet(gdf: Any, path: str | os.PathLike) -> Path:
    """Write a GeoDataFrame to GeoParquet atomically (a temporary file beside, then replace).

    Examples
    --------
    >>> to_geoparquet(gdf, "fields.parquet")   # doctest: +SKIP
    PosixPath('fields.parquet')
    """
    buffer = io.BytesIO()
    gdf.to_parquet(buffer)
    return atomic_write(path, buffer.getvalue())
