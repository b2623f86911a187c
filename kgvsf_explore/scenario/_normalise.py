"""Normalising user input (dates, numbers) and formatting it back, with the fix in each error."""

from __future__ import annotations

import math
import numbers
from typing import Any

import pandas as pd

from ..errors import ScenarioError


def as_date(value: Any, label: str) -> str | None:
    """Normalise anything :class:`pandas.Timestamp` parses to an ISO date string.

    ``label`` names the field in error messages, e.g. ``"Change.start"``.
    """
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise ScenarioError(
            f"{label}: cannot read {value!r} as a date ({err}); give an ISO date such as "
            f"'2022-07-01'."
        ) from None
    if ts is pd.NaT or pd.isna(ts):
        raise ScenarioError(
            f"{label}: {value!r} is not a date; give an ISO date such as '2022-07-01' or "
            f"None for an open window."
        )
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.date().isoformat()


def as_number(value: Any, label: str) -> float:
    """A finite Python float (``-0.0`` becomes ``0.0``); ``label`` names the field in errors."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ScenarioError(f"{label}: expected a number, got {value!r}; e.g. value=3.0.")
    out = float(value)
    if not math.isfinite(out):
        raise ScenarioError(f"{label}: must be a finite number, got {out!r}.")
    return out + 0.0  # -0.0 -> 0.0


def fmt_num(value: float) -> str:
    """A float as the text grammar writes it (``3.0``, ``0.5``, ``-2.5``)."""
    return repr(float(value))


def short(text: str, n: int = 48) -> str:
    """``text`` cut to ``n`` characters with an ellipsis."""
    return text if len(text) <= n else text[: n - 3] + "..."
