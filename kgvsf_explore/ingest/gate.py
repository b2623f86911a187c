"""The plausibility gate: refuse reflectance that cannot be surface reflectance, before writing.

A wrong scaling rule (a Landsat Collection 1 file read with the Collection 2 rule, a
Sentinel-2 file of baseline 04.00 without its -1000 offset) gives values that pass the cube's
unit checks but are wrong everywhere. Surface reflectance lies in about 0-1; atmospheric
correction leaves a few slightly negative values over dark water and shadow, and snow or
specular glint can exceed 1. So, per band and scaling rule, on a sample of the image chunks:

* more than :data:`MAX_OUTSIDE` (1 %) of the valid pixels outside :data:`RANGE`
  (-0.05..1.2), or
* a negative mean

is an :class:`~kgvsf_explore.ingest.IngestError` naming the files, the values seen and the
likely fix: the known product rules (:data:`~kgvsf_explore.ingest.scaling.PRODUCTS`) are tried
on the same digital numbers and the one that makes them plausible is proposed.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from ._errors import IngestError
from .scaling import PRODUCTS

__all__ = ["RANGE", "MAX_OUTSIDE", "band_stats", "band_summary", "check_reflectance",
           "suggest_rule"]

#: Plausible surface reflectance.
RANGE: tuple[float, float] = (-0.05, 1.2)

#: Largest share of valid pixels allowed outside :data:`RANGE`.
MAX_OUTSIDE = 0.01

#: A band mean below ``-MEAN_TOLERANCE`` is negative (rounding of 0 is not).
MEAN_TOLERANCE = 1e-3

#: Dates and spatial tiles per band and rule that the gate reads (evenly spread).
SAMPLE_DATES = 12
SAMPLE_TILES = 4


def band_stats(values: np.ndarray, lo: float = RANGE[0], hi: float = RANGE[1]
               ) -> dict[str, float] | None:
    """``n``, ``share_valid``, ``min``, ``max``, ``mean``, ``p1``, ``p99`` and
    ``share_outside`` (of the valid values, outside ``lo..hi``); None without a valid value."""
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(v)
    if not ok.any():
        return None
    good = v[ok]
    p1, p99 = np.percentile(good, [1, 99])
    return {"n": int(ok.sum()), "share_valid": float(ok.mean()), "min": float(good.min()),
            "max": float(good.max()), "mean": float(good.mean()), "p1": float(p1),
            "p99": float(p99), "share_outside": float(((good < lo) | (good > hi)).mean())}


def _spread(n: int, k: int) -> list[int]:
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(n, k))})


def _sample(da: xr.DataArray, dates: list[int]) -> list[Any]:
    """Blocks of ``da`` (one date by one tile) at ``dates``, a few tiles each (dask or numpy)."""
    data = da.data
    if not hasattr(data, "blocks"):
        return [np.asarray(data[t]) for t in dates]
    ny, nx = data.numblocks[1], data.numblocks[2]
    tiles = [(iy, ix) for iy in range(ny) for ix in range(nx)]
    picks = [tiles[i] for i in _spread(len(tiles), SAMPLE_TILES)]
    return [data.blocks[t, iy, ix] for t in dates for iy, ix in picks]


def suggest_rule(values: np.ndarray, scale: float, offset: float, sensor: str | None = None
                 ) -> tuple[str, float, float] | None:
    """The known product rule under which the digital numbers behind ``values`` (read with
    ``scale``/``offset``) are plausible: ``(product, scale, offset)``, or None.

    With ``sensor`` (``'landsat_tm'``, ``'sentinel2'``...) only that family's products are
    tried.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size or scale == 0:
        return None
    dn = (v - offset) / scale
    family = {"landsat": "Landsat", "sentinel2": "Sentinel-2"}.get(
        (sensor or "").split("_")[0], "")
    products = [p for p in PRODUCTS.values() if p.name.startswith(family)]
    best = None
    for p in products:
        if np.isclose(p.scale, scale) and np.isclose(p.offset, offset):
            continue
        st = band_stats(dn * p.scale + p.offset)
        if st and st["share_outside"] <= MAX_OUTSIDE and st["mean"] > MEAN_TOLERANCE:
            # the rule that keeps the mean closest to a typical land reflectance wins
            score = abs(st["mean"] - 0.2)
            if best is None or score < best[0]:
                best = (score, p.name, p.scale, p.offset)
    return None if best is None else best[1:]


def check_reflectance(ds: xr.Dataset) -> dict[str, dict[str, float]]:
    """Run the gate on the bands of an ingested dataset; return each band's sampled stats.

    The rules and files per band come from ``attrs['kgvsf_band_rules']`` (written by
    :func:`~kgvsf_explore.ingest.images.read_images`); without it each band is one group.

    Raises
    ------
    IngestError
        A band fails (see the module docstring); the message names the files, the values seen
        and the likely fix.
    """
    import dask

    rules = json.loads(ds.attrs.get("kgvsf_band_rules", "{}"))
    nt = ds.sizes[schema.TIME_DIM]
    groups: list[tuple[str, dict[str, Any]]] = []
    for b in schema.BANDS:
        if b not in ds or "kgvsf_missing" in ds[b].attrs:
            continue
        for r in rules.get(b) or [{"dates": list(range(nt)), "scale": None, "offset": None,
                                   "why": "", "files": [], "n_files": 0}]:
            groups.append((b, r))
    blocks = [_sample(ds[b], [r["dates"][i] for i in _spread(len(r["dates"]),
                                                               SAMPLE_DATES)])
              for b, r in groups]
    computed = dask.compute(*blocks)
    stats: dict[str, dict[str, float]] = {}
    problems = []
    for (b, r), arrays in zip(groups, computed, strict=True):
        values = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.array([])
        st = band_stats(values)
        if st is None:
            continue
        stats.setdefault(b, st)
        if st["share_outside"] <= MAX_OUTSIDE and st["mean"] >= -MEAN_TOLERANCE:
            continue
        problems.append(_problem(b, r, st, values))
    if problems:
        raise IngestError(
            "implausible surface reflectance, nothing was written:\n" + "\n".join(problems)
            + f"\n(surface reflectance lies in about {RANGE[0]}..{RANGE[1]}; at most "
            f"{MAX_OUTSIDE:.0%} of valid pixels may fall outside, and no band mean may be "
            "negative. See docs/ingest.md, 'Scaling'.)"
        )
    return stats


def _problem(band: str, rule: dict[str, Any], st: dict[str, float], values: np.ndarray) -> str:
    files = rule.get("files") or []
    n = rule.get("n_files", len(files))
    named = ", ".join(files) + (f" and {n - len(files)} more" if n > len(files) else "")
    head = (f"- {band}" + (f" ({named})" if named else "") + ": "
            f"{st['share_outside']:.1%} of {st['n']} valid sampled pixels outside "
            f"{RANGE[0]}..{RANGE[1]}, values {st['min']:.3g}..{st['max']:.3g}, "
            f"mean {st['mean']:.3g}")
    sc, off = rule.get("scale"), rule.get("offset")
    if sc is None:
        return head + "; check the files' scale and offset"
    head += f", read as x{sc:g} {off:+g} ({rule.get('why', '')})"
    fix = suggest_rule(values, sc, off, rule.get("sensor"))
    if fix is not None:
        name, fsc, foff = fix
        return (head + f". As {name} (x{fsc:g} {foff:+g}) they are plausible: pass "
                f"scale={fsc:g}, offset={foff:g} (kgvsf ingest --scale {fsc:g} --offset "
                f"{foff:g}; per band: --scale {band}={fsc:g})")
    return (head + ". No known product rule makes them plausible: check the files (a band "
            "of another sensor, a thermal band, top-of-atmosphere data) and pass the right "
            "scale= and offset= (kgvsf ingest --scale/--offset)")


def band_summary(ds: xr.Dataset, *, max_dates: int = 24, max_pixels: int = 1024
                 ) -> tuple[list[dict[str, Any]], str]:
    """Per band: valid share, range and mean on a sample of the cube (``kgvsf info``).

    Up to ``max_dates`` dates spread over the period, and of each at most a central window of
    ``max_pixels`` x ``max_pixels`` pixels, are read. Returns the rows (``band``,
    ``valid``, ``min``, ``p1``, ``mean``, ``p99``, ``max``, ``outside``) and a sentence saying
    what was read.
    """
    import dask

    nt = ds.sizes[schema.TIME_DIM]
    idx = _spread(nt, max_dates)
    ny, nx = ds.sizes[schema.Y_DIM], ds.sizes[schema.X_DIM]
    ys = slice(max(0, ny // 2 - max_pixels // 2), max(0, ny // 2 - max_pixels // 2) + max_pixels)
    xs = slice(max(0, nx // 2 - max_pixels // 2), max(0, nx // 2 - max_pixels // 2) + max_pixels)
    bands = [b for b in schema.BANDS if b in ds]
    sub = ds[bands].isel({schema.TIME_DIM: idx, schema.Y_DIM: ys, schema.X_DIM: xs})
    arrays = dask.compute(*[sub[b].data for b in bands])
    rows = []
    for b, arr in zip(bands, arrays, strict=True):
        st = band_stats(arr)
        row: dict[str, Any] = {"band": b, "valid": 0.0 if st is None else st["share_valid"]}
        if st is not None:
            row.update({k: st[k] for k in ("min", "p1", "mean", "p99", "max")})
            row["outside"] = st["share_outside"]
        if "kgvsf_missing" in ds[b].attrs:
            row["note"] = "missing (not observed)"
        rows.append(row)
    dates = "all dates" if len(idx) == nt else f"{len(idx)} of {nt} dates"
    pixels = "all pixels" if ys.stop >= ny and xs.stop >= nx else (
        f"the central {min(ny, max_pixels)} x {min(nx, max_pixels)} px")
    what = f"{dates}, {pixels}"
    return rows, what
