"""Reading stored cube data with errors that say what broke: one context, one chunk checker.

A damaged zarr chunk (an interrupted copy, a truncated file) surfaces deep inside dask and the
codec as a bare ``RuntimeError: error during blosc decompression``. :func:`reading` turns such
failures into a :class:`~kgvsf_explore.errors.CubeReadError` naming what was being read and how
to find the broken chunks; :func:`check_chunks` reads every chunk of every variable and lists
those that fail (``kgvsf info --check``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dask
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..errors import CubeReadError, KGVSFError

#: Exceptions that mean "the stored bytes could not be decoded or found".
READ_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError, OSError, KeyError,
                                                EOFError)


def _source(ds: xr.Dataset | None) -> str:
    if ds is None:
        return "the cube"
    for v in ds.variables.values():
        src = v.encoding.get("source")
        if src:
            return str(src)
    return "the cube"


@contextlib.contextmanager
def reading(what: str, ds: xr.Dataset | None = None) -> Iterator[None]:
    """Re-raise a failure to read ``what`` as a :class:`CubeReadError` with a way out.

    Errors of kgvsf_explore itself pass through unchanged.

    Examples
    --------
    >>> with reading("context images of rows 0..32"):   # doctest: +SKIP
    ...     block = ds[["B04"]].isel(time=slice(0, 6)).compute()
    """
    try:
        yield
    except KGVSFError:
        raise
    except READ_ERRORS as err:
        raise CubeReadError(
            f"could not read {what} from {_source(ds)}: {type(err).__name__}: {err}. The store "
            "may be corrupted or truncated (an interrupted copy?); `kgvsf info --check CUBE` "
            "reads every chunk and names the broken ones: copy or regenerate those files"
        ) from err


def check_chunks(ds: xr.Dataset, *, progress: bool = True) -> list[str]:
    """Read every dask chunk of every variable; describe each one that fails to read.

    Returns
    -------
    list of str
        ``"VAR chunk (i, j, k): ERROR"`` for every unreadable chunk; empty when all read.
    """
    problems: list[str] = []
    names = [n for n in ds.variables if dask.is_dask_collection(ds[n].variable.data)]
    total = sum(int(np.prod(ds[n].data.numblocks)) for n in names)
    with tqdm(total=total, desc="checking chunks", unit="chunk", disable=not progress) as bar:
        for name in names:
            arr = ds[name].data
            for index in np.ndindex(*arr.numblocks):
                try:
                    arr.blocks[index].compute(scheduler="synchronous")
                except READ_ERRORS as err:
                    problems.append(f"{name} chunk {index}: {type(err).__name__}: {err}")
                bar.update()
    return problems
