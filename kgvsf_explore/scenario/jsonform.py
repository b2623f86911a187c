"""The JSON form of a scenario: reading every format version, and the version a scenario needs.

Version 1 holds ``offset``, ``scale`` and ``set`` changes; version 2 adds ``from_year`` and
``replace``. A scenario is written with the lowest version that holds all its changes, so
files without replacements stay readable by older kgvsf_explore releases.

Scenario files are bounded, so a hostile or broken file fails fast with a clear error
(see ``docs/scenarios.md``): :data:`MAX_FILE_BYTES`, :data:`MAX_CHANGES`,
:data:`MAX_NAME_CHARS` and :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import ScenarioError
from .change import Change
from .replace import SeriesReplacement, YearReplacement
from .vocabulary import OP_FORMAT_VERSION, SCENARIO_FORMAT_VERSION, VERSION_KEY

#: A change of any kind.
AnyChange = Change | YearReplacement | SeriesReplacement

#: The change class of each JSON ``op``.
CHANGE_CLASSES: dict[str, type] = {
    "offset": Change, "scale": Change, "set": Change,
    "from_year": YearReplacement, "replace": SeriesReplacement,
}

_SCENARIO_KEYS = (VERSION_KEY, "name", "changes")

#: Largest scenario file (or JSON text) read, in bytes: room for ten years of daily series.
MAX_FILE_BYTES = 5_000_000
#: Most changes in one scenario.
MAX_CHANGES = 10_000
#: Longest scenario name, in characters.
MAX_NAME_CHARS = 200
#: Deepest nesting of JSON arrays and objects (a scenario file needs 4).
MAX_DEPTH = 32

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def check_json_text(text: str, where: str) -> None:
    """Refuse JSON text over :data:`MAX_FILE_BYTES` or nested deeper than :data:`MAX_DEPTH`
    before it is parsed (deep nesting would exhaust the parser's recursion)."""
    size = len(text.encode("utf-8", "surrogatepass")) if len(text) * 4 > MAX_FILE_BYTES else 0
    if size > MAX_FILE_BYTES:
        raise ScenarioError(
            f"scenario {where} has {size:,} bytes, more than the {MAX_FILE_BYTES:,} a scenario "
            "may have; split it, or give long daily series as CSV (Scenario.from_series).")
    bare = np.frombuffer(_STRING.sub('""', text).encode("utf-8", "surrogatepass"), np.uint8)
    steps = (np.isin(bare, (ord("["), ord("{"))).astype(np.int32)
             - np.isin(bare, (ord("]"), ord("}"))).astype(np.int32))
    depth = int(np.cumsum(steps).max()) if len(steps) else 0
    if depth > MAX_DEPTH:
        raise ScenarioError(
            f"scenario {where} nests arrays/objects {depth} deep; a scenario needs at most "
            f"{MAX_DEPTH} (4 in practice). Is this a scenario file?")


def format_version(changes: Iterable[AnyChange]) -> int:
    """The lowest format version that holds every change (1 for none)."""
    return max((OP_FORMAT_VERSION[c.op] for c in changes), default=1)


def change_from_dict(data: Any, where: str, version: int) -> AnyChange:
    """The change of a JSON object of a file of format ``version``."""
    op = data.get("op") if isinstance(data, Mapping) else None
    if isinstance(op, str) and op not in CHANGE_CLASSES:
        raise ScenarioError(
            f"{where}: unknown op {op!r}; use one of offset, scale, set (version 1), "
            f"from_year or replace (version 2)."
        )
    if isinstance(op, str) and OP_FORMAT_VERSION[op] > version:
        raise ScenarioError(
            f"{where}: op {op!r} needs {VERSION_KEY} {OP_FORMAT_VERSION[op]}, but the file says "
            f"{version}; set \"{VERSION_KEY}\": {OP_FORMAT_VERSION[op]}."
        )
    cls = CHANGE_CLASSES.get(op, Change) if isinstance(op, str) else Change
    return cls.from_dict(data, where=where)


def scenario_from_dict(data: Any) -> tuple[tuple[AnyChange, ...], str]:
    """``(changes, name)`` of a scenario's JSON object, of any version up to the newest."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"scenario: expected a JSON object, got {type(data).__name__}.")
    unknown = sorted(set(data) - set(_SCENARIO_KEYS))
    if unknown:
        raise ScenarioError(
            f"scenario: unknown key(s) {unknown}; allowed keys are {', '.join(_SCENARIO_KEYS)}."
        )
    if VERSION_KEY not in data:
        raise ScenarioError(
            f'scenario: missing {VERSION_KEY!r}; add "{VERSION_KEY}": '
            f"{SCENARIO_FORMAT_VERSION} to the object."
        )
    version = data[VERSION_KEY]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ScenarioError(
            f"scenario: {VERSION_KEY} must be a positive integer, got {version!r}."
        )
    if version > SCENARIO_FORMAT_VERSION:
        raise ScenarioError(
            f"scenario: {VERSION_KEY} {version} was written by a newer kgvsf_explore; this "
            f"one reads up to version {SCENARIO_FORMAT_VERSION}. Upgrade kgvsf_explore."
        )
    changes = data.get("changes", [])
    if not isinstance(changes, (list, tuple)):
        raise ScenarioError(f"scenario.changes: expected a list, got {_short(changes)}.")
    if len(changes) > MAX_CHANGES:
        raise ScenarioError(
            f"scenario.changes: {len(changes):,} changes, more than the {MAX_CHANGES:,} a "
            "scenario may hold; merge changes of the same driver and window.")
    name = data.get("name") or ""
    if not isinstance(name, str):
        raise ScenarioError(f"scenario.name: expected a string, got {_short(name)}.")
    if len(name) > MAX_NAME_CHARS:
        raise ScenarioError(
            f"scenario.name: {len(name):,} characters, more than the {MAX_NAME_CHARS} a name "
            f"may have; shorten it (it starts {name[:40]!r}).")
    parsed = tuple(
        change_from_dict(c, f"changes[{i}]", version) for i, c in enumerate(changes)
    )
    return parsed, name


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (hostile values can be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"
