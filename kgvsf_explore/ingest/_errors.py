"""The error every ingest step raises on bad input: what is wrong and how to fix it."""

from __future__ import annotations

from ..errors import KGVSFError

__all__ = ["IngestError", "IngestWarning"]


class IngestError(KGVSFError, ValueError):
    """User files cannot be turned into a cube; the message says why and what to do."""


class IngestWarning(UserWarning):
    """The ingest estimated, converted or assumed something the user should know about."""
