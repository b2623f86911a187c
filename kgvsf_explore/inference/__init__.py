"""Running a trained KG-VSF over cubes: region forecasts and embeddings, in memory or lazily.

:func:`forecast_region` forecasts a region under observed or changed weather, :func:`embed_region`
gives per-pixel embeddings; both cut the region into model tiles (:mod:`.tiles`) and, for large
regions, go block by block through dask (:mod:`.chunked`).
"""

from .chunked import AUTO_CHUNK_PIXELS, DEFAULT_CHUNK
from .embed import embed_region
from .region import forecast_region, scenario_drivers
from .tiles import (
    Stitcher,
    TilePlan,
    context_batches,
    plan_tiles,
    region_slices,
    resolve_region,
)

__all__ = [
    "AUTO_CHUNK_PIXELS",
    "DEFAULT_CHUNK",
    "Stitcher",
    "TilePlan",
    "context_batches",
    "embed_region",
    "forecast_region",
    "plan_tiles",
    "region_slices",
    "resolve_region",
    "scenario_drivers",
]
