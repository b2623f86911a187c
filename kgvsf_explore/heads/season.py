"""Season embeddings: the frozen model's per-pixel embeddings at every image date of a season.

Each date's embedding is :func:`~kgvsf_explore.inference.embed.embed_region` at that image date
(the context of the images up to it, with the observed drivers): nothing after a date is read
for its embedding. In memory the dates go one at a time under a progress bar (memory: the
result plus one date's tiles); with ``chunks`` the result is a lazy dask array computed block by
block over tiles, so a large region never has to fit in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from ..cube.cube import Cube
from ..inference.embed import embed_region
from ..models.kgvsf import KGVSF
from ._errors import HeadError

__all__ = ["CLEAR_COORD", "season_dates", "season_embeddings"]

#: Name of the ``(time, y, x)`` coordinate saying whether a pixel was clear at each date.
CLEAR_COORD = "clear"


def season_dates(cube: Cube, season: Any) -> pd.DatetimeIndex:
    """The cube's image dates in ``season``: a year (int) or a ``(start, end)`` pair.

    Raises
    ------
    HeadError
        When the season is malformed or holds no image date.
    """
    times = cube.times
    if isinstance(season, (int, np.integer)) and not isinstance(season, bool):
        sel = times[times.year == int(season)]
        what = f"year {int(season)}"
    elif isinstance(season, (tuple, list)) and len(season) == 2:
        try:
            start, end = pd.Timestamp(season[0]), pd.Timestamp(season[1])
        except (TypeError, ValueError) as err:
            raise HeadError(f"season {season!r}: could not read the dates ({err})") from None
        if end < start:
            raise HeadError(f"season {season!r} ends before it starts")
        sel = times[(times >= start) & (times <= end)]
        what = f"{start.date()} to {end.date()}"
    else:
        raise HeadError(f"season must be a year (e.g. 2022) or a (start, end) pair of dates, "
                        f"got {season!r}")
    if len(sel) == 0:
        raise HeadError(f"the cube has no image date in {what}; its images run "
                        f"{times[0].date()} to {times[-1].date()}")
    return sel


def season_embeddings(
    model: KGVSF,
    cube: Cube,
    season: Any,
    *,
    region: Any = None,
    chunks: int | str | None = None,
    batch_size: int = 16,
    progress: bool = True,
    weights_id: str = "",
    every: int = 1,
) -> xr.DataArray:
    """Per-pixel embeddings ``(time, feature, y, x)`` at every image date of a season.

    Parameters
    ----------
    model
        A :class:`~kgvsf_explore.models.kgvsf.KGVSF` in eval mode (frozen).
    cube
        The cube.
    season
        A year (``2022``) or a ``(start, end)`` pair of dates (inclusive).
    region
        None (the whole cube), a bbox in the cube's CRS, or a geometry (outside: NaN).
    chunks
        None: computed now, in memory, one date at a time under a progress bar; ``"auto"`` or
        a block edge in pixels: a lazy dask array computed block by block (bounded memory).
    batch_size
        Model tiles per forward pass.
    progress
        Show a progress bar over the dates (in-memory path).
    weights_id
        The weights' SHA-256, recorded in ``attrs["weights_sha256"]``.
    every
        Keep every ``every``-th image date only (cheaper; the heads read irregular dates).

    Returns
    -------
    xarray.DataArray
        float32 ``(time, feature, y, x)`` with the cube's coordinates and CRS, a ``doy``
        coordinate along ``time`` and a boolean ``clear`` coordinate ``(time, y, x)`` (not
        cloudy, every observed band finite); attrs ``weights_sha256``, ``model``, ``season``.

    Raises
    ------
    HeadError
        When the season holds no image date of the cube.
    """
    from tqdm.auto import tqdm

    if int(every) < 1:
        raise HeadError(f"every must be >= 1, got {every}")
    dates = season_dates(cube, season)[::int(every)]
    if chunks is None:
        data: Any = None
        first = None
        for i, d in enumerate(tqdm(dates, desc="season embeddings", disable=not progress)):
            e = embed_region(model, cube, d, region=region, batch_size=batch_size,
                             progress=False, weights_id=weights_id)
            if data is None:
                data, first = np.empty((len(dates),) + e.shape, "float32"), e
            data[i] = e.values
        assert first is not None
        out = xr.DataArray(data, dims=(schema.TIME_DIM,) + first.dims,
                           coords={**first.coords, schema.TIME_DIM: dates.values},
                           attrs=dict(first.attrs))
    else:
        out = embed_region(model, cube, list(dates), region=region, chunks=chunks,
                           batch_size=batch_size, progress=False, weights_id=weights_id)
    clear = cube.valid.sel({schema.TIME_DIM: dates.values}).sel(
        {schema.Y_DIM: out[schema.Y_DIM].values, schema.X_DIM: out[schema.X_DIM].values})
    out = out.assign_coords({
        schema.TIME_DIM: dates.values,
        "doy": (schema.TIME_DIM, dates.day_of_year.values.astype("int16")),
        CLEAR_COORD: ((schema.TIME_DIM, schema.Y_DIM, schema.X_DIM), np.asarray(clear.values)),
    })
    out.attrs.update({"long_name": "KG-VSF season embeddings (frozen)",
                      "season": f"{dates[0].date()} to {dates[-1].date()}",
                      "t": ", ".join(str(d.date()) for d in dates)})
    return out.rename("season_embedding")
