"""Evaluation of trained weights: forecast skill and the what-if (causality) check."""

from .skill import HORIZON_EDGES, forecast_skill
from .whatif import (
    drought_scenario,
    forecast_vs_truth,
    image_horizons,
    scenario_response,
    true_forecast,
)

__all__ = [
    "HORIZON_EDGES",
    "drought_scenario",
    "forecast_skill",
    "forecast_vs_truth",
    "image_horizons",
    "scenario_response",
    "true_forecast",
]
