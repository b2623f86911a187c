"""Small helpers shared by the cube modules: CRS lookup, cheap sampling, grid geometry."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from .. import schema

#: Arrays with at most this many elements are checked in full (cheap enough even when lazy).
SMALL_ARRAY = 500_000
#: ... and, when dask-backed, in at most this many chunks.
SMALL_CHUNK_COUNT = 16

SPATIAL_DIMS = (schema.Y_DIM, schema.X_DIM, schema.Y_MET_DIM, schema.X_MET_DIM)


def crs_candidates(ds: xr.Dataset) -> list[str]:
    """Names of the variables that may carry the CRS (``spatial_ref`` + ``grid_mapping`` attrs)."""
    names = [schema.GRID_MAPPING]
    for var in ds.variables.values():
        gm = var.attrs.get("grid_mapping") or var.encoding.get("grid_mapping")
        if isinstance(gm, str) and gm not in names:
            names.append(gm)
    return names


def crs_text(ds: xr.Dataset) -> tuple[str | None, str | None]:
    """Return ``(text, where)`` of the CRS definition found in ``ds``, or ``(None, None)``.

    Looks at ``crs_wkt``/``spatial_ref`` attributes of the grid-mapping variable(s), then at
    ``ds.attrs['crs']``.
    """
    for name in crs_candidates(ds):
        if name in ds.variables:
            attrs = ds[name].attrs
            for key in ("crs_wkt", "spatial_ref"):
                text = attrs.get(key)
                if isinstance(text, str) and text.strip():
                    return text, f"{name}.attrs[{key!r}]"
    text = ds.attrs.get("crs")
    if text is not None and str(text).strip():
        return str(text), "ds.attrs['crs']"
    return None, None


def get_crs(ds: xr.Dataset):
    """The :class:`pyproj.CRS` of ``ds``, or ``None`` when it has none (raises if unparsable)."""
    from pyproj import CRS

    text, _ = crs_text(ds)
    if text is None:
        return None
    return CRS.from_user_input(text)


def even_indices(n: int, k: int) -> np.ndarray:
    """Up to ``k`` distinct, evenly spaced indices into a length-``n`` axis (ends kept)."""
    if n <= 0:
        return np.zeros(0, dtype=int)
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def is_small(da: xr.DataArray) -> bool:
    """Whether reading ``da`` whole is cheap: few elements and (if lazy) few chunks."""
    if da.size > SMALL_ARRAY:
        return False
    chunks = da.chunks
    return chunks is None or int(np.prod([len(c) for c in chunks])) <= SMALL_CHUNK_COUNT


def sample_parts(
    da: xr.DataArray,
    caps: Mapping[str, int],
    *,
    window: int = 32,
    n_windows: int = 3,
    default_cap: int = 3,
) -> list:
    """Lazy pieces of a small sample of ``da`` (see :func:`sample_values`)."""
    if is_small(da):
        return [da.data]
    spatial = [d for d in da.dims if d in SPATIAL_DIMS]
    index: dict = {
        d: even_indices(da.sizes[d], caps.get(d, default_cap)) for d in da.dims if d not in spatial
    }
    if not spatial:
        return [da.isel(index).data]
    chunks = da.chunksizes if da.chunks is not None else {}
    parts, seen = [], set()
    for i in range(n_windows):
        frac = (i + 1) / (n_windows + 1)
        win = dict(index)
        for d in spatial:
            n = da.sizes[d]
            w = min(window, n)
            start = int(np.clip(round(frac * n - w / 2), 0, n - w))
            if d in chunks:  # stay inside one chunk: read one block per window
                edges = np.cumsum((0, *chunks[d]))
                c = int(np.searchsorted(edges, frac * n, side="right") - 1)
                start, w = int(edges[c]), min(w, int(edges[c + 1] - edges[c]))
            win[d] = slice(start, start + w)
        key = tuple((d, win[d].start) for d in spatial)
        if key not in seen:  # two windows in the same chunk: read it once
            seen.add(key)
            parts.append(da.isel(win).data)
    return parts


def load_samples(requests: Mapping[str, list]) -> dict[str, np.ndarray]:
    """Compute the pieces of several :func:`sample_parts` requests in one dask pass."""
    import dask

    from .reading import reading

    names = list(requests)
    flat = [p for n in names for p in requests[n]]
    with reading("samples of " + ", ".join(names) + " for validation"):
        values = iter(dask.compute(*flat))
    out = {}
    for n in names:
        out[n] = np.concatenate([np.asarray(next(values)).ravel() for _ in requests[n]])
    return out


def sample_values(
    da: xr.DataArray,
    caps: Mapping[str, int],
    *,
    window: int = 32,
    n_windows: int = 3,
    default_cap: int = 3,
) -> np.ndarray:
    """Load a small sample of ``da`` as a flat numpy array (the whole array when small).

    Small arrays (see :func:`is_small`) are loaded whole. Otherwise non-spatial
    dimensions are subsampled to ``caps.get(dim, default_cap)`` evenly spaced positions, and the
    spatial plane (``y``/``x`` or ``y_met``/``x_met``) to ``n_windows`` contiguous
    ``window`` x ``window`` blocks along the diagonal (aligned to dask chunks), so only a few
    chunks are read.
    """
    parts = sample_parts(da, caps, window=window, n_windows=n_windows, default_cap=default_cap)
    return load_samples({"v": parts})["v"]


def spacing(coord: np.ndarray) -> float | None:
    """Signed step of a regular 1-D coordinate, or ``None`` with fewer than 2 values."""
    coord = np.asarray(coord, dtype="float64")
    if coord.size < 2:
        return None
    return float((coord[-1] - coord[0]) / (coord.size - 1))


def geotransform_res(ds: xr.Dataset) -> tuple[float, float] | None:
    """Pixel size ``(xres, yres)`` from a GDAL ``GeoTransform`` attribute, when present."""
    for name in crs_candidates(ds):
        if name in ds.variables:
            gt = ds[name].attrs.get("GeoTransform")
            if gt:
                parts = [float(p) for p in str(gt).split()] if isinstance(gt, str) else list(gt)
                if len(parts) == 6:
                    return abs(parts[1]), abs(parts[5])
    return None


def index_range(mask: np.ndarray) -> slice | None:
    """The smallest slice covering the True entries of a 1-D boolean array (None if none)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    return slice(int(idx[0]), int(idx[-1]) + 1)


def crop_met_grid(ds: xr.Dataset, bounds: tuple[float, float, float, float]) -> xr.Dataset:
    """Crop ``y_met``/``x_met`` to ``bounds`` plus one native cell of margin on every side.

    Keeps every native cell needed to interpolate (bilinearly) to pixels inside ``bounds``.
    """
    xmin, ymin, xmax, ymax = bounds
    sel = {}
    for dim, lo, hi in ((schema.X_MET_DIM, xmin, xmax), (schema.Y_MET_DIM, ymin, ymax)):
        if dim not in ds.dims or ds.sizes[dim] < 2:
            continue
        c = np.asarray(ds[dim].values, dtype="float64")
        step = abs(spacing(c) or 0.0)
        keep = index_range((c >= lo - 1.01 * step) & (c <= hi + 1.01 * step))
        if keep is not None:
            sel[dim] = keep
    return ds.isel(sel) if sel else ds
