"""Dates given by users: parsed once, time zones converted to UTC, clear errors."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import pandas as pd

from .errors import KGVSFError


def to_timestamp(value: Any, what: str = "start") -> pd.Timestamp:
    """``value`` (text, datetime, numpy datetime64, pandas Timestamp) as a naive UTC Timestamp.

    A time zone (``2022-07-01T12:00+05:00``) is converted to UTC and dropped, as cube times are
    naive UTC.

    Raises
    ------
    KGVSFError
        ``value`` is not a date, or lies outside the years 1678..2261 that nanosecond
        timestamps (the cube's time axis) can hold.
    """
    if isinstance(value, (pd.Timestamp, _dt.date, np.datetime64, str)):
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError) as err:  # OutOfBoundsDatetime too
            raise KGVSFError(f"{what} {value!r} is not a date ({err}); give YYYY-MM-DD, e.g. "
                             "2022-07-01, optionally with a time") from err
    else:
        raise KGVSFError(f"{what} must be a date such as '2022-07-01', got "
                         f"{type(value).__name__} {value!r}")
    if ts is pd.NaT or pd.isna(ts):
        raise KGVSFError(f"{what} {value!r} is not a date; give YYYY-MM-DD, e.g. 2022-07-01")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if not pd.Timestamp.min <= ts <= pd.Timestamp.max:
        raise KGVSFError(f"{what} {value!r} lies outside the years 1678..2261 that cube time "
                         "axes can hold; give a date within the cube's time range")
    return ts.as_unit("ns")
