"""Fast reads of small windows: numpy indexing for in-memory variables, xarray for lazy ones.

Training draws thousands of small windows (a tile, a few dates); through ``xarray.isel`` each
read costs about a millisecond of bookkeeping, more than the copy itself. :class:`WindowReader`
indexes the numpy array of an in-memory variable directly and falls back to xarray (and dask)
for lazy ones, so the results are the same either way and a cube that fits in memory
(``cube.load()``) samples many times faster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from .reading import reading


class WindowReader:
    """Read windows of a dataset's variables as numpy arrays.

    Parameters
    ----------
    ds
        The dataset; variables already in memory are indexed as numpy arrays.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"a": (("time", "y", "x"), np.arange(24.0).reshape(2, 3, 4))})
    >>> WindowReader(ds).take("a", {"time": [1], "y": slice(0, 2), "x": slice(1, 3)})
    array([[[13., 14.],
            [17., 18.]]])
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self.ds = ds
        self._arrays: dict[str, np.ndarray] = {}
        self._dims: dict[str, tuple[str, ...]] = {}
        for name, var in ds.variables.items():
            if var._in_memory:  # numpy-backed: no copy, no dask
                self._arrays[str(name)] = np.asarray(var.values)
                self._dims[str(name)] = tuple(str(d) for d in var.dims)

    def in_memory(self, name: str) -> bool:
        """Whether ``name`` is read by numpy indexing."""
        return name in self._arrays

    def take(self, name: str, index: Mapping[str, Any]) -> np.ndarray:
        """``ds[name].isel(index)`` as a numpy array (dims in the variable's order).

        At most one indexer may be an integer array (numpy's advanced indexing rule for one
        array keeps the dims in place).
        """
        if name in self._arrays:  # no xarray bookkeeping on the hot path
            key = tuple(index.get(d, slice(None)) for d in self._dims[name])
            return self._arrays[name][key]
        var = self.ds[name]
        with reading(f"{name} at {dict(index)}", self.ds):
            return np.asarray(var.isel(dict(index)).values)
