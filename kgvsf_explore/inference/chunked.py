"""Region results block by block through dask: lazy, bounded memory, same numbers.

A region larger than memory is cut into ``chunks x chunks`` pixel blocks; each block is computed
from the model tiles of the whole-region plan that overlap it
(:meth:`~kgvsf_explore.inference.tiles.TilePlan.windows_over`), so stitching is identical to the
in-memory path. The blocks are the chunks of a :func:`dask.array.map_blocks` graph: nothing runs
until the result is computed or written (e.g. ``.to_zarr``), any dask scheduler (threads,
``dask.distributed``) can run it, and a block holds only its own tiles' context.
"""

from __future__ import annotations

from collections.abc import Callable

import dask
import dask.array as da
import numpy as np

from .tiles import TilePlan

#: Regions with more pixels than this go through dask when ``chunks`` is not given.
AUTO_CHUNK_PIXELS = 1024 * 1024
#: Default block edge (pixels) of the lazy path.
DEFAULT_CHUNK = 512


def block_edge(plan: TilePlan, chunks: int | str | None) -> int | None:
    """The block edge to use: None for the in-memory path.

    ``chunks`` None picks the lazy path only for regions above :data:`AUTO_CHUNK_PIXELS`;
    ``"auto"`` always picks it with :data:`DEFAULT_CHUNK`; an int is the block edge, rounded
    up to a multiple of the model tile so that most tiles fall in one block.
    """
    n = (plan.rows.stop - plan.rows.start) * (plan.cols.stop - plan.cols.start)
    if chunks is None:
        if n <= AUTO_CHUNK_PIXELS:
            return None
        chunks = DEFAULT_CHUNK
    if chunks == "auto":
        chunks = DEFAULT_CHUNK
    edge = int(chunks)
    if edge <= 0:
        raise ValueError(f"chunks must be a positive number of pixels, got {chunks!r}")
    tile = plan.cfg.tile
    return -(-edge // tile) * tile


def _splits(length: int, edge: int) -> tuple[int, ...]:
    full, rest = divmod(length, edge)
    return (edge,) * full + ((rest,) if rest else ())


def lazy_region(plan: TilePlan, lead_shape: tuple[int, ...], edge: int,
                compute: Callable[[slice, slice], np.ndarray]) -> da.Array:
    """A dask array ``(*lead_shape, rows, cols)`` whose blocks are ``compute(rows, cols)``.

    ``rows`` and ``cols`` are absolute pixel slices of the cube, inside ``plan.rows`` x
    ``plan.cols``. Inside a block the cube is read with dask's synchronous scheduler, so
    blocks run in parallel without nesting thread pools.
    """
    ny = plan.rows.stop - plan.rows.start
    nx = plan.cols.stop - plan.cols.start
    chunks = tuple((n,) for n in lead_shape) + (_splits(ny, edge), _splits(nx, edge))

    def block(block_info: dict | None = None) -> np.ndarray:
        loc = block_info[None]["array-location"]
        (y0, y1), (x0, x1) = loc[-2], loc[-1]
        rows = slice(plan.rows.start + y0, plan.rows.start + y1)
        cols = slice(plan.cols.start + x0, plan.cols.start + x1)
        with dask.config.set(scheduler="synchronous"):
            return compute(rows, cols)

    return da.map_blocks(block, chunks=chunks, dtype="float32",
                         meta=np.empty((0,) * len(chunks), dtype="float32"))
