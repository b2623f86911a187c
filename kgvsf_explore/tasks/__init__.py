"""The downstream tasks of the evaluation table (the paper's five, soil moisture forecasting scored
twice), their split, protocols and label budget.

>>> from kgvsf_explore.tasks import TASKS, make_split, run_cell          # doctest: +SKIP
>>> split = make_split(cube)                                             # doctest: +SKIP
>>> task = TASKS["sm_forecast"]                                          # doctest: +SKIP
>>> train = task.draw(cube, split, "finetune", model.cfg, 96, seed=0)    # doctest: +SKIP
>>> test = task.draw(cube, split, "test", model.cfg, 48, seed=1)         # doctest: +SKIP
>>> run_cell(task, model, train, test, protocol="frozen", budget=0.1, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from .base import HORIZON_BINS, Task
from .crop_type import CropType, confusion, f1_scores
from .data import TaskData, draw, driver_features
from .evaluate import PROTOCOLS, FrozenInputs, frozen_inputs, run_cell
from .future_image import FutureImage, sharpness_ratio
from .missing_image import MissingImage
from .protocol import ProtocolConfig, budget_mask
from .soil_moisture import SoilMoisture, r2_rmse
from .soil_moisture_forecast import SoilMoistureForecast, SoilMoistureForecastFromState
from .split import FieldYearSplit, make_split

#: The tasks by name, in table order.
TASKS: dict[str, Task] = {t.name: t for t in (CropType(), SoilMoisture(), SoilMoistureForecast(),
                                                SoilMoistureForecastFromState(),
                                                MissingImage(), FutureImage())}

__all__ = [
    "HORIZON_BINS", "PROTOCOLS", "TASKS", "CropType", "FieldYearSplit", "FrozenInputs",
    "FutureImage", "MissingImage", "ProtocolConfig", "SoilMoisture", "SoilMoistureForecast",
    "SoilMoistureForecastFromState",
    "Task", "TaskData", "budget_mask", "confusion", "draw", "driver_features", "f1_scores",
    "frozen_inputs", "make_split", "r2_rmse", "run_cell", "sharpness_ratio",
]
