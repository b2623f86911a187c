"""Running a trained KG-VSF over cubes: region forecasts under observed or changed weather."""

from .region import forecast_region, scenario_drivers, weights_digest

__all__ = ["forecast_region", "scenario_drivers", "weights_digest"]
