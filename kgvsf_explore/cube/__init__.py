"""Datacubes: open, validate, select regions, compute indices and draw training samples.

>>> from kgvsf_explore.cube import open_cube
>>> cube = open_cube("sample_world/")          # doctest: +SKIP
>>> cube.sel_bbox(-93.6, 41.9, -93.5, 42.0, crs="EPSG:4326").ndvi()  # doctest: +SKIP
"""

from __future__ import annotations

from .cube import Cube, CubeStats
from .io import open_cube
from .regrid import drivers_on_pixels
from .sampler import Sample, Sampler
from .validate import validate_dataset

__all__ = [
    "Cube",
    "CubeStats",
    "Sample",
    "Sampler",
    "drivers_on_pixels",
    "open_cube",
    "validate_dataset",
]
