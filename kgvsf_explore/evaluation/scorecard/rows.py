"""The rows of a scorecard: one number, what it measures, and how many cases it rests on."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BINS", "GROWING_SEASON", "Row", "bin_of"]

#: Horizon bins of the forecast scores, days: (0, 10], (10, 20], (20, 30], (30, 45], (45, 60].
BINS: tuple[tuple[int, int], ...] = ((0, 10), (10, 20), (20, 30), (30, 45), (45, 60))

#: Months of the growing-season scores (targets April to October: no snow).
GROWING_SEASON: tuple[int, ...] = tuple(range(4, 11))


def bin_of(k: int) -> str | None:
    """Label ``"a-b"`` of the horizon bin holding ``k`` days (None beyond the last bin)."""
    for a, b in BINS:
        if a < k <= b:
            return f"{a}-{b}"
    return None


@dataclass(frozen=True)
class Row:
    """One score of ``results.json``.

    Attributes
    ----------
    task
        ``forecast``, ``gapfill``, ``crop_type``, ``soil_moisture`` or ``whatif``.
    metric
        What is measured, e.g. ``ndvi_mae_mean_growing_season``.
    bin
        Horizon bin ``"0-10"`` ..., a date, a scenario, a class, or ``"all"``.
    method
        The weights' objective (e.g. ``kgvsf``) or a peer.
    value
        The number (NaN when it cannot be computed, written as null).
    n_cases, n_dates
        How many cases (forecast tiles, pixels, held-out dates) and distinct dates it rests on.
    """

    task: str
    metric: str
    bin: str
    method: str
    value: float
    n_cases: int
    n_dates: int

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN as None)."""
        d = asdict(self)
        v = float(self.value)
        d["value"] = v if np.isfinite(v) else None
        d["n_cases"], d["n_dates"] = int(self.n_cases), int(self.n_dates)
        return d
