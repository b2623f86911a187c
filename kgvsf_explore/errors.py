"""Exceptions raised by kgvsf_explore, each naming what is wrong and how to fix it."""

from __future__ import annotations


class KGVSFError(Exception):
    """Base class of every error kgvsf_explore raises on purpose."""


class CubeValidationError(KGVSFError, ValueError):
    """A dataset does not follow the cube schema (see :mod:`kgvsf_explore.schema`)."""


class RegionError(KGVSFError, ValueError):
    """A region is empty, outside the cube, or holds no valid observation."""


class ScenarioError(KGVSFError, ValueError):
    """A scenario is malformed or cannot be applied to the given drivers."""


class CubeReadError(KGVSFError, OSError):
    """Stored cube data could not be read (a corrupted or truncated chunk, a vanished file)."""


class DriverGapError(KGVSFError, ValueError):
    """Drivers needed for a forecast or a sample are missing (NaN) or infinite on some days."""


class OutputPathError(KGVSFError, ValueError):
    """An output path cannot be written safely (a file, an input, a folder kgvsf did not write)."""


class StartDateWarning(UserWarning):
    """A forecast start far from the image it snaps to (the forecast starts from that image)."""


class MissingDependencyError(KGVSFError, ImportError):
    """An optional dependency is needed for what was asked (the message says what to install)."""


class ScenarioClipWarning(UserWarning):
    """A scenario produced physically impossible driver values that were clipped."""
