"""Interactive plots of cubes, forecasts and embeddings (holoviews/hvplot, bokeh backend).

Every map is drawn in the data's own ``x``/``y`` coordinates with equal aspect and the CRS in
the axis labels; basemap tiles are optional (``tiles=``, needs geoviews). Each function returns
a holoviews object that displays in JupyterLab and takes further ``.opts(...)``.

* :func:`forecast_maps` -- a forecast's maps, horizon slider and scenario selector;
* :func:`difference_map` -- scenario-minus-baseline maps, diverging colours centred on zero;
* :func:`trajectory` -- a pixel's or field's series: observations, truth, forecasts, drivers;
* :func:`embedding_map` -- embeddings in PCA false colour; :func:`cluster_map` -- clusters;
* :func:`crop_map` -- crop classes with their names; :func:`soil_moisture_map` -- one day's
  soil moisture.

Examples
--------
>>> import kgvsf_explore as kx
>>> from kgvsf_explore import plots
>>> cube = kx.open_cube(kx.sample_path())                   # doctest: +SKIP
>>> plots.crop_map(cube) + plots.soil_moisture_map(cube, "2022-07-01")   # doctest: +SKIP
"""

from __future__ import annotations

from ..errors import MissingDependencyError
from .embedding import cluster_map, embedding_map
from .layers import crop_map, soil_moisture_map
from .maps import difference_map, forecast_maps
from .trajectory import trajectory

__all__ = [
    "MissingDependencyError",
    "cluster_map",
    "crop_map",
    "difference_map",
    "embedding_map",
    "forecast_maps",
    "soil_moisture_map",
    "trajectory",
]
