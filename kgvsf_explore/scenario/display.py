"""How changes show: one-line text of a scenario and the HTML table of notebooks.

Works on any kind of change through its ``op`` and public attributes, so it imports none of
the change classes.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from .. import schema
from ._normalise import fmt_num
from .vocabulary import CHANGEABLE_DRIVERS


def changes_text(changes: Sequence[Any]) -> list[str]:
    """The text form of each change, with runs of year replacements that share year, window and
    region merged into one ``"tmax, tmin from year 2021 [...]"`` (``"all from year ..."`` for
    every driver but ``dayl`` in schema order), as :meth:`Scenario.parse` reads them back."""
    out: list[str] = []
    run: list[Any] = []

    def flush() -> None:
        if run:
            names = tuple(c.variable for c in run)
            which = "all" if names == CHANGEABLE_DRIVERS else ", ".join(names)
            out.append(f"{which} from year {run[0].year}{run[0].scope_text()}")
            run.clear()

    for c in changes:
        if run and not _joins(run, c):
            flush()
        if c.op == "from_year":
            run.append(c)
        else:
            out.append(str(c))
    flush()
    return out


def _joins(run: list[Any], c: Any) -> bool:
    """True when year replacement ``c`` can share the text of ``run``."""
    keys = ("year", "start", "end", "region", "region_crs")
    return (
        c.op == "from_year"
        and all(getattr(run[0], k) == getattr(c, k) for k in keys)
        and c.variable not in {r.variable for r in run}
    )


def _how_html(c: Any) -> str:
    esc = html.escape
    units = schema.DRIVER_UNITS[c.variable]
    if c.op == "scale":
        return f"&times;{fmt_num(c.value)}"
    if c.op == "offset":
        return esc(f"{'-' if c.value < 0 else '+'}{fmt_num(abs(c.value))} {units}")
    if c.op == "set":
        return esc(f"= {fmt_num(c.value)} {units}")
    if c.op == "from_year":
        return esc(f"weather of {c.year} (same calendar day)")
    return esc(f"series {c.series_text()}, {units}")


def changes_html(changes: Sequence[Any], title: str, count: bool = True) -> str:
    """An HTML table of ``changes`` under ``title`` (already HTML), one row per change."""
    esc = html.escape
    if not changes:
        return f"<div>{title}: no changes (identity)</div>"
    rows = []
    for i, c in enumerate(changes, 1):
        region = esc(c.region_text()) or "everywhere"
        if c.region_crs:
            region += f" <small>({esc(str(c).rsplit(' crs ', 1)[-1])})</small>"
        rows.append(
            f"<tr><td>{i}</td><td><code>{esc(c.variable)}</code></td><td>{_how_html(c)}</td>"
            f"<td>{esc(c.window_text()) or 'whole period'}</td><td>{region}</td></tr>"
        )
    head = f"{title}: {len(changes)} change(s), applied in order" if count else title
    return (
        f"<div>{head}"
        "<table><thead><tr><th>#</th><th>driver</th><th>change</th><th>window</th>"
        f"<th>region</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
