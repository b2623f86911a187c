"""Many arithmetic changes of one driver in one pass: time linear in their number.

Each :class:`~kgvsf_explore.scenario.Change` (``offset``, ``scale``, ``set``) touches only the
days of its window and the cells of its region, so a run of them is applied in place, one after
the other, on those slices of one copy of the data: the same float operations in the same order
as one ``xr.where`` per change, at the cost of the slices instead of the whole array per change,
and one dask layer for the whole run instead of several per change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .. import schema


@dataclass(frozen=True)
class Step:
    """One arithmetic change ready to apply: ``op``, ``value``, the days and the cells."""

    op: str
    value: float
    days: slice | np.ndarray  # positions along the day axis
    cells: np.ndarray | None  # boolean, broadcastable to the array without the day axis


def day_positions(sel: np.ndarray | None, n: int) -> slice | np.ndarray:
    """A boolean day selection as a slice when it is one run of days (else positions)."""
    if sel is None:
        return slice(0, n)
    pos = np.flatnonzero(sel)
    if len(pos) and pos[-1] - pos[0] + 1 == len(pos):
        return slice(int(pos[0]), int(pos[-1]) + 1)
    return pos


def cell_mask(mask: xr.DataArray | None, da: xr.DataArray) -> np.ndarray | None:
    """A region mask as a boolean array with ``da``'s dims (size 1 along the others)."""
    if mask is None:
        return None
    order = [d for d in da.dims if d in mask.dims]
    values = np.asarray(mask.transpose(*order).values, dtype=bool)
    shape = [da.sizes[d] if d in mask.dims else 1 for d in da.dims]
    return values.reshape(shape)


def can_fuse(da: xr.DataArray) -> bool:
    """True for a floating-point driver with a ``day`` axis (else the per-change path)."""
    return schema.DAY_DIM in da.dims and np.issubdtype(da.dtype, np.floating)


def apply_steps(da: xr.DataArray, steps: list[Step]) -> xr.DataArray:
    """``da`` with every step applied in order (a new array; dask input stays lazy)."""
    if not steps:
        return da
    axis = da.dims.index(schema.DAY_DIM)
    data = da.data
    if hasattr(data, "map_blocks") and hasattr(data, "chunks") and not isinstance(data,
                                                                               np.ndarray):
        new = data.map_blocks(_run_block, steps, axis, da.shape, dtype=da.dtype,
                              meta=np.empty((0,) * da.ndim, dtype=da.dtype))
    else:
        new = _run(np.array(data, copy=True), steps, axis, [(0, n) for n in da.shape])
    return da.copy(data=new)


def _run_block(block: np.ndarray, steps: list[Step], axis: int, shape: tuple[int, ...],
               block_info: dict | None = None) -> np.ndarray:
    loc = block_info[0]["array-location"] if block_info else [(0, n) for n in block.shape]
    return _run(np.array(block, copy=True), steps, axis, loc)


def _block_days(days: slice | np.ndarray, lo: int, hi: int) -> slice | np.ndarray:
    if isinstance(days, slice):
        start, stop = max(days.start, lo), min(days.stop, hi)
        return slice(start - lo, max(stop, start) - lo)
    inside = days[(days >= lo) & (days < hi)]
    return inside - lo


def _run(out: np.ndarray, steps: list[Step], axis: int,
         loc: list[tuple[int, int]]) -> np.ndarray:
    """Apply the steps in place on ``out``, the block of the array at ``loc``."""
    lo, hi = loc[axis]
    cell_index = tuple(slice(a, b) if i != axis else slice(None)
                       for i, (a, b) in enumerate(loc))
    for step in steps:
        days = _block_days(step.days, lo, hi)
        if (isinstance(days, slice) and days.stop <= days.start) or (
                not isinstance(days, slice) and len(days) == 0):
            continue
        index = tuple(days if i == axis else slice(None) for i in range(out.ndim))
        view = out[index]  # a view for a slice of days, a copy for positions
        where = None
        if step.cells is not None:
            cells = step.cells[tuple(
                s if step.cells.shape[i] > 1 else slice(None) for i, s in enumerate(cell_index))]
            where = np.broadcast_to(cells, view.shape)
        if step.op == "offset":
            np.add(view, step.value, out=view, where=True if where is None else where)
        elif step.op == "scale":
            np.multiply(view, step.value, out=view, where=True if where is None else where)
        else:  # set: missing values stay missing
            keep = ~np.isnan(view)
            np.copyto(view, np.asarray(step.value, dtype=view.dtype),
                      where=keep if where is None else keep & where)
        if not isinstance(days, slice):
            out[index] = view
    return out
