"""Evaluation of trained weights: forecast skill, the what-if (causality) check, and the
downstream-task table of ``kgvsf evaluate`` (:mod:`.runner`, :mod:`.table`,
:mod:`.counterfactual_check`, :mod:`.pretrained`)."""

from .skill import HORIZON_EDGES, forecast_skill
from .whatif import (
    drought_scenario,
    forecast_vs_truth,
    image_horizons,
    scenario_response,
    true_forecast,
)


def __getattr__(name: str):
    """The evaluation-table entry points, imported on first use."""
    if name in ("EvalConfig", "run_evaluation"):
        from . import runner

        return getattr(runner, name)
    if name == "write_table":
        from .table import write_table

        return write_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EvalConfig",
    "HORIZON_EDGES",
    "drought_scenario",
    "forecast_skill",
    "forecast_vs_truth",
    "image_horizons",
    "run_evaluation",
    "scenario_response",
    "true_forecast",
    "write_table",
]
