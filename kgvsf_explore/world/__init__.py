"""The sample world: a simulated landscape whose weather -> soil water -> crop -> reflectance
causality is known, written as a datacube that follows :mod:`kgvsf_explore.schema`.

Worlds differ by climate (:mod:`.climates`), sensor (:mod:`.sensors`) and management
(:mod:`.management`), chosen with :class:`WorldOptions`; :mod:`.corpus` writes many of them, each
also under weather interventions, for pretraining.
"""

from .climates import CLIMATES
from .sample import (
    SHIPPED_SEED,
    SHIPPED_SIZE,
    SIZES,
    WorldOptions,
    WorldSpec,
    make_world,
    write_world,
)
from .sensors import SENSORS

__all__ = ["CLIMATES", "SENSORS", "SHIPPED_SEED", "SHIPPED_SIZE", "SIZES", "WorldOptions",
           "WorldSpec", "make_world", "write_world"]
