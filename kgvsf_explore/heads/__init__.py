"""Heads fitted on a user's labels over a season of frozen KG-VSF embeddings.

* :func:`season_embeddings` (also :meth:`Forecaster.season_embeddings`): ``(time, feature, y,
  x)`` embeddings at every image date of a season;
* :class:`CropMapHead`: a crop map and per-class probabilities from the whole season, fitted on
  polygons or a label raster;
* :class:`SoilMoistureHead`: soil moisture at an image date (estimation) or a number of days
  later (forecast), fitted on a raster or a table of point observations;
* :class:`FillHead` (also :meth:`Forecaster.fill`): the image at a cloud-hidden or missing date,
  learnt from the cube itself (no labels).

The crop-map and soil-moisture heads are saved as ``head.safetensors`` + ``head.json``
(never pickled).
"""

from __future__ import annotations

from ._errors import HeadError, LabelGridError, TooFewLabelsError, UnknownClassError
from .crop_map import CropMapHead
from .fill import FillHead, cloudy_dates, hide_dates
from .season import season_dates, season_embeddings
from .soil_moisture import SoilMoistureHead

__all__ = ["CropMapHead", "FillHead", "HeadError", "LabelGridError", "SoilMoistureHead",
           "TooFewLabelsError", "UnknownClassError", "cloudy_dates", "hide_dates", "season_dates",
           "season_embeddings"]
