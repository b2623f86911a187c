"""Which cube bands a dataset really observed: the guard the forecaster can call.

A band is missing when it is absent from the dataset or listed in
``attrs["kgvsf_missing_bands"]`` (the ingest's ``missing_bands='nan'`` keeps it all-NaN and
lists it). The model accepts any subset of the bands: a missing band enters it as "not
observed" (:mod:`kgvsf_explore.inference`, :class:`kgvsf_explore.cube.Sampler`), so only a cube
without any band is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from .. import schema
from ..cube.cube import missing_bands as _missing_bands
from ..cube.cube import observed_bands
from ._errors import IngestError

__all__ = ["missing_bands", "require_bands"]


def missing_bands(ds: xr.Dataset, *, check_values: bool = False) -> list[str]:
    """Cube bands absent from ``ds`` or listed as missing by the ingest (all NaN).

    See :func:`kgvsf_explore.cube.cube.missing_bands`; ``check_values`` also counts bands
    without any finite value (reads them).
    """
    return _missing_bands(ds, schema.BANDS, check_values=check_values)


def require_bands(ds: xr.Dataset, bands: Sequence[str] = schema.BANDS) -> list[str]:
    """The ``bands`` ``ds`` observed; raise a clear error when it observed none of them.

    Missing bands are fine (the model takes any subset of its bands, masked); a cube without
    any band has nothing to forecast from.

    Returns
    -------
    list of str
        The observed bands, in the order of ``bands``.

    Raises
    ------
    IngestError
        When no band is observed, naming what the dataset holds and what to do.
    """
    return observed_bands(ds, tuple(bands), error=IngestError)
