"""Argument types of the ``kgvsf`` command line: each names its option and how to fix a value.

They raise :class:`argparse.ArgumentTypeError`, which argparse reports as a usage error
(``kgvsf forecast: error: argument --horizons: ...``, exit status 2) before any work starts.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence

from ._dates import to_timestamp
from .errors import KGVSFError

#: Options whose value may start with a minus sign (``--bbox -93.6,41.2,-93.5,41.3``).
NEGATIVE_VALUE_OPTIONS = ("--bbox",)
_NUMBER_LIST = re.compile(r"^-[\d.]")


def start_arg(text: str) -> str:
    """A date (``YYYY-MM-DD``, optionally with a time and a time zone) as naive UTC text."""
    try:
        ts = to_timestamp(text, "date")
    except KGVSFError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return str(ts.date()) if ts == ts.normalize() else ts.isoformat()


def horizons_arg(text: str) -> list[int]:
    """Comma-separated whole numbers of days ahead, each once: ``5,15,30``."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not re.fullmatch(r"[+]?\d{1,6}", part):
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a whole number of days; give days ahead as integers, "
                "e.g. 5,15,30")
        value = int(part)
        if value < 1:
            raise argparse.ArgumentTypeError(f"horizon {value} must be at least 1 day")
        if value in out:
            raise argparse.ArgumentTypeError(
                f"horizon {value} is given twice; give each horizon once, e.g. 5,15,30")
        out.append(value)
    if not out:
        raise argparse.ArgumentTypeError("give at least one horizon, e.g. 5,15,30")
    return out


def chunks_arg(text: str) -> int | str:
    """``auto`` or a block edge in pixels (a positive integer)."""
    if text.strip().lower() == "auto":
        return "auto"
    if not re.fullmatch(r"\s*[+]?\d{1,6}\s*", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a block edge; give a whole number of pixels (e.g. 256) or 'auto'")
    return int(text)


def bbox_arg(text: str) -> tuple[float, float, float, float]:
    """``XMIN,YMIN,XMAX,YMAX``: four finite numbers with XMIN < XMAX and YMIN < YMAX."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not four numbers; give XMIN,YMIN,XMAX,YMAX in the cube's CRS, e.g. "
            "--bbox=446000,4649000,447000,4650000") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(
            f"{text!r} has {len(values)} number(s); give four: XMIN,YMIN,XMAX,YMAX")
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every coordinate must be a finite number")
    xmin, ymin, xmax, ymax = values
    if xmin >= xmax or ymin >= ymax:
        raise argparse.ArgumentTypeError(
            f"{text!r}: need XMIN < XMAX and YMIN < YMAX (the order is XMIN,YMIN,XMAX,YMAX)")
    return xmin, ymin, xmax, ymax


def port_arg(text: str) -> int:
    """A TCP port, 0..65535 (0 picks a free one)."""
    if not re.fullmatch(r"\s*\d{1,5}\s*", text) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port; give 0..65535")
    return int(text)


def nonneg_float_arg(text: str) -> float:
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give e.g. 1.0") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: need a finite number >= 0")
    return value


def positive_int_arg(text: str) -> int:
    """A whole number >= 1."""
    return _whole_number(text, 1, "6000")


def nonneg_int_arg(text: str) -> int:
    """A whole number >= 0."""
    return _whole_number(text, 0, "5")


def _whole_number(text: str, least: int, example: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text) or int(text) < least:
        raise argparse.ArgumentTypeError(
            f"{text!r}: need a whole number >= {least}, e.g. {example}")
    return int(text)


def ints(text: str | None, option: str) -> list[int]:
    """Comma-separated integers of ``option`` (e.g. ``--worlds 1,2,3``)."""
    if not text:
        return []
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise KGVSFError(f"{option}: {part.strip()!r} is not a whole number; give "
                             f"comma-separated integers, e.g. {option} 1,2,3") from None
    return out


def join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--bbox -93.6,41.2,...`` as ``--bbox=-93.6,41.2,...`` (argparse reads a leading minus
    as an option)."""
    args = list(argv)
    out: list[str] = []
    i = 0
    while i < len(args):
        if (args[i] in NEGATIVE_VALUE_OPTIONS and i + 1 < len(args)
                and _NUMBER_LIST.match(args[i + 1])):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out
