"""The peers: what a researcher would use instead of a foundation model, one per module.

- :mod:`.persistence`: each pixel's last clear observation, whatever its age;
- :mod:`.climatology`: each pixel's mean near the same day of year in the other years;
- :mod:`.interpolation`: linear interpolation in time between clear observations (gap filling);
- :mod:`.trees`: gradient-boosted trees forecasting every band and NDVI per pixel from its
  history and the weather (:mod:`.features`);
- :mod:`.forest`: random forests for crop type and soil moisture on each pixel's season.

They read a cube through :class:`~.history.PixelHistory` (clear observations, vectorised) and
:class:`~.drivers.DriverSums` (window means of the drivers, scenario applied); none reads soil
moisture, the simulator's ``*_true`` bands or labels as an input.
"""

from .climatology import climatology
from .drivers import DriverSums
from .forest import CropForest, SoilMoistureForest
from .history import PixelHistory
from .interpolation import linear_fill
from .persistence import persistence
from .trees import TreeForecaster, forecast_rows

__all__ = ["CropForest", "DriverSums", "PixelHistory", "SoilMoistureForest", "TreeForecaster",
           "climatology", "forecast_rows", "linear_fill", "persistence"]
