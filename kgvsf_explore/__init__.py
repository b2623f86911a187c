"""kgvsf-explore: the KG-VSF geospatial foundation model for researchers in JupyterLab.

Open a datacube, pick a region, change its weather and cut training samples from it::

    import kgvsf_explore as kx

    cube = kx.open_cube(kx.sample_path())
    box = cube.sel_bbox(446_300, 4_649_000, 446_900, 4_649_600)
    dry = kx.Scenario.parse("prcp x0", "tmax +3", name="hot-dry")
    drivers = dry.apply(box)

Imports are lazy, so ``import kgvsf_explore`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Cube": "kgvsf_explore.cube",
    "open_cube": "kgvsf_explore.cube",
    "validate_dataset": "kgvsf_explore.cube",
    "Sampler": "kgvsf_explore.cube",
    "Sample": "kgvsf_explore.cube",
    "drivers_on_pixels": "kgvsf_explore.cube",
    "Forecaster": "kgvsf_explore.forecaster",
    "make_ensemble": "kgvsf_explore.weights",
    "CropMapHead": "kgvsf_explore.heads",
    "FillHead": "kgvsf_explore.heads",
    "SoilMoistureHead": "kgvsf_explore.heads",
    "season_embeddings": "kgvsf_explore.heads",
    "HeadError": "kgvsf_explore.heads",
    "Explorer": "kgvsf_explore.app",
    "Scenario": "kgvsf_explore.scenario",
    "Change": "kgvsf_explore.scenario",
    "evaluate_weights": "kgvsf_explore.evaluation.scorecard",
    "Scorecard": "kgvsf_explore.evaluation.scorecard",
    "make_world": "kgvsf_explore.world",
    "write_world": "kgvsf_explore.world",
    "WorldSpec": "kgvsf_explore.world",
    "sample_path": "kgvsf_explore.data",
    "data_dir": "kgvsf_explore.data",
    "schema": "kgvsf_explore.schema",
    "plots": "kgvsf_explore.plots",
    "KGVSFError": "kgvsf_explore.errors",
    "MissingDependencyError": "kgvsf_explore.errors",
    "CubeValidationError": "kgvsf_explore.errors",
    "RegionError": "kgvsf_explore.errors",
    "ScenarioError": "kgvsf_explore.errors",
    "ScenarioClipWarning": "kgvsf_explore.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from . import plots, schema
    from .app import Explorer
    from .cube import Cube, Sample, Sampler, drivers_on_pixels, open_cube, validate_dataset
    from .data import data_dir, sample_path
    from .errors import (
        CubeValidationError,
        KGVSFError,
        MissingDependencyError,
        RegionError,
        ScenarioClipWarning,
        ScenarioError,
    )
    from .evaluation.scorecard import Scorecard, evaluate_weights
    from .forecaster import Forecaster
    from .heads import CropMapHead, FillHead, HeadError, SoilMoistureHead, season_embeddings
    from .scenario import Change, Scenario
    from .weights import make_ensemble
    from .world import WorldSpec, make_world, write_world


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kgvsf_explore' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module == f"kgvsf_explore.{name}" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
