"""Running a trained KG-VSF over cubes: region forecasts and embeddings, in memory or lazily.

:func:`forecast_region` forecasts a region under observed or changed weather, :func:`embed_region`
gives per-pixel embeddings; both cut the region into model tiles (:mod:`.tiles`) and, for large
regions, go block by block through dask (:mod:`.chunked`). A cube may lack any of the model's
bands but not all: the missing ones reach the model masked and their forecasts are marked
(``attrs["kgvsf_not_observed"]``). :mod:`.intervals` calibrates forecast intervals
(split-conformal) and adds them to a forecast.
"""

from .chunked import AUTO_CHUNK_PIXELS, DEFAULT_CHUNK
from .embed import embed_region
from .intervals import Calibration, add_intervals, beyond_interval
from .region import forecast_region, scenario_drivers
from .tiles import (
    NOT_OBSERVED_ATTR,
    Stitcher,
    TilePlan,
    context_batches,
    not_observed_note,
    plan_tiles,
    region_slices,
    resolve_region,
)

__all__ = [
    "AUTO_CHUNK_PIXELS",
    "Calibration",
    "DEFAULT_CHUNK",
    "NOT_OBSERVED_ATTR",
    "Stitcher",
    "TilePlan",
    "add_intervals",
    "beyond_interval",
    "context_batches",
    "embed_region",
    "forecast_region",
    "not_observed_note",
    "plan_tiles",
    "region_slices",
    "resolve_region",
    "scenario_drivers",
]
