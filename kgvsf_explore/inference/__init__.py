"""Running a trained KG-VSF over cubes: region forecasts under observed or changed weather."""

from .region import forecast_region, scenario_drivers
from .tiles import Stitcher, TilePlan, context_batches, plan_tiles, region_slices

__all__ = [
    "Stitcher",
    "TilePlan",
    "context_batches",
    "forecast_region",
    "plan_tiles",
    "region_slices",
    "scenario_drivers",
]
