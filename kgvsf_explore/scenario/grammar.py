"""The text grammar of scenario changes, e.g. ``"tmax +3 from 2022-07-01 to 2022-07-31"``.

::

    change  := variable op number [window] [region]
             | variables "from year" YEAR [window] [region]
    op      := "+" | "-" | "x" | "*" | "="
    variables := "all" | variable ("," variable)*
    window  := "from" DATE ["to" DATE] | "to" DATE | "[" [DATE] ".." [DATE] "]"
    region  := "in bbox(" xmin "," ymin "," xmax "," ymax ")" ["crs" CRS]

The window and the region may come in either order. ``all`` means every driver but ``dayl``.
A series replacement has no text form (its values live in the JSON form).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import ScenarioError
from ._normalise import short
from .change import Change
from .replace import YearReplacement
from .vocabulary import CHANGEABLE_DRIVERS

GRAMMAR = (
    "write '<variable> +N', '-N', 'xN' or '=N', or '<variable>[, <variable>] from year YYYY' "
    "('all' for every driver but dayl), optionally followed by "
    "'from YYYY-MM-DD to YYYY-MM-DD' (or '[YYYY-MM-DD..YYYY-MM-DD]') and "
    "'in bbox(xmin, ymin, xmax, ymax) [crs EPSG:XXXX]', "
    "e.g. 'tmax +3 from 2022-07-01 to 2022-07-31' or "
    "'all from year 2021 from 2022-07-01 to 2022-08-31'"
)

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_HEAD_RE = re.compile(
    rf"\s*(?P<var>[A-Za-z]+)\s*(?P<op>[-+xX*\u00d7=])\s*(?P<num>{_NUM})(?P<rest>.*)"
)
_YEAR_RE = re.compile(
    r"\s*(?P<vars>[A-Za-z]+(?:\s*,\s*[A-Za-z]+)*)\s+from\s+year\s+(?P<year>[^\s\[\]]+)"
    r"(?P<rest>.*)",
    re.I,
)
_SERIES_RE = re.compile(r"\s*[A-Za-z]+\s+from\s+series\b", re.I)
_CLAUSES = {
    "from": re.compile(r"from\s+(?P<a>[^\s\[\]]+)", re.I),
    "to": re.compile(r"to\s+(?P<a>[^\s\[\]]+)", re.I),
    "window": re.compile(r"\[\s*(?P<a>[^\]]*?)\s*\.\.\s*(?P<b>[^\]]*?)\s*\]"),
    "bbox": re.compile(r"in\s+bbox\s*\(\s*(?P<a>[^)]*)\)", re.I),
    "crs": re.compile(r"crs\s+(?P<a>\S+)", re.I),
}


def parse_changes(text: str) -> tuple[Change | YearReplacement, ...]:
    """All changes one text stands for: one :class:`Change`, or one :class:`YearReplacement`
    per variable of a ``from year`` form (``all``: every driver but ``dayl``).

    Examples
    --------
    >>> [str(c) for c in parse_changes("tmax, tmin from year 2021 [2022-07-01..2022-07-31]")]
    ['tmax from year 2021 [2022-07-01..2022-07-31]', 'tmin from year 2021 [2022-07-01..2022-07-31]']
    """  # noqa: E501
    fail = _failer(text)
    year_form = _YEAR_RE.fullmatch(text)
    if year_form is None:
        return (parse_change(text),)
    names = [v.strip().lower() for v in year_form["vars"].split(",")]
    if "all" in names:
        if len(names) > 1:
            raise fail("'all' already means every driver but dayl; list no other variable")
        names = list(CHANGEABLE_DRIVERS)
    if len(set(names)) != len(names):
        raise fail("a variable is listed twice")
    if not re.fullmatch(r"\d{1,4}", year_form["year"]):
        raise fail(f"'from year' needs a whole year such as 2021, got {year_form['year']!r}")
    scope = _parse_scope(year_form["rest"], fail)
    return tuple(YearReplacement(v, int(year_form["year"]), **scope) for v in names)


def parse_change(text: str) -> Change:
    """One :class:`Change` (offset, scale or set) from its text form."""
    if not isinstance(text, str):
        raise ScenarioError(f"Scenario.parse: expected strings, got {text!r}; {GRAMMAR}.")
    fail = _failer(text)
    if _YEAR_RE.fullmatch(text):
        raise fail("this is a replacement by another year; read it with Scenario.parse")
    head = _HEAD_RE.fullmatch(text)
    if head is None:
        raise fail("expected '<variable> <op><number>' first")
    sym, num = head["op"], head["num"]
    if sym in "+-" and num[0] in "+-":
        raise fail(f"double sign '{sym}{num}'")
    value = float(num)
    op = {"+": "offset", "-": "offset", "=": "set"}.get(sym, "scale")
    if sym == "-":
        value = -value
    scope = _parse_scope(head["rest"], fail)
    return Change(variable=head["var"].lower(), op=op, value=value, **scope)


def _failer(text: Any) -> Callable[[str], ScenarioError]:
    if not isinstance(text, str):
        raise ScenarioError(f"Scenario.parse: expected strings, got {text!r}; {GRAMMAR}.")

    def fail(why: str) -> ScenarioError:
        if _SERIES_RE.match(text):
            why = (
                "a driver series has no text form; build it with Scenario.from_series(...) or "
                "read it from its JSON file"
            )
        return ScenarioError(f"cannot parse scenario change {text!r}: {why}; {GRAMMAR}.")

    return fail


def _parse_scope(rest: str, fail: Callable[[str], ScenarioError]) -> dict[str, Any]:
    """The window and region clauses after the head, as keyword arguments of a change."""
    found: dict[str, re.Match[str]] = {}
    rest = rest.strip()
    while rest:
        for key, pattern in _CLAUSES.items():
            m = pattern.match(rest)
            if m:
                if key in found or (key == "window" and {"from", "to"} & set(found)):
                    raise fail(f"the {key!r} part is given twice")
                if key in ("from", "to") and "window" in found:
                    raise fail("the window is given twice")
                found[key] = m
                rest = rest[m.end() :].strip()
                break
        else:
            raise fail(f"unexpected {short(rest, 30)!r}")
    start = end = None
    if "window" in found:
        start, end = found["window"]["a"] or None, found["window"]["b"] or None
    if "from" in found:
        start = found["from"]["a"]
    if "to" in found:
        end = found["to"]["a"]
    region = None
    if "bbox" in found:
        parts = [p.strip() for p in found["bbox"]["a"].split(",")]
        if len(parts) != 4 or not all(re.fullmatch(_NUM, p) for p in parts):
            raise fail("bbox(...) needs 4 comma-separated numbers xmin, ymin, xmax, ymax")
        region = tuple(float(p) for p in parts)
    if "crs" in found and region is None:
        raise fail("'crs' needs a region ('in bbox(...)') before it")
    return {
        "start": start,
        "end": end,
        "region": region,
        "region_crs": found["crs"]["a"] if "crs" in found else None,
    }
