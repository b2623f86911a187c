"""The sample world: a simulated landscape whose weather -> soil water -> crop -> reflectance
causality is known, written as a datacube that follows :mod:`kgvsf_explore.schema`."""

from .sample import SHIPPED_SEED, SHIPPED_SIZE, SIZES, WorldSpec, make_world, write_world

__all__ = ["SHIPPED_SEED", "SHIPPED_SIZE", "SIZES", "WorldSpec", "make_world", "write_world"]
