"""Errors of the heads fitted on a user's labels: what is wrong and how to fix it."""

from __future__ import annotations

from ..errors import KGVSFError

__all__ = ["HeadError", "LabelGridError", "TooFewLabelsError", "UnknownClassError"]


class HeadError(KGVSFError, ValueError):
    """A head cannot be fitted, applied, saved or loaded; the message says why."""


class LabelGridError(HeadError):
    """The labels are not on the embeddings' grid (other coordinates, CRS or dimensions)."""


class UnknownClassError(HeadError):
    """A class the head does not know (not in its fitted classes, or missing from a column)."""


class TooFewLabelsError(HeadError):
    """Too few labelled pixels (overall or of one class) to fit a head."""
