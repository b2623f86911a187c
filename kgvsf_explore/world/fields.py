"""Field layout of the sample world: rectangular fields with a crop and a soil, as polygons."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from ..schema import CROP_CLASSES, SOIL_CLASSES
from .params import CROPS, SOILS, WORLD_CROP_CLASSES
from .random_fields import gaussian_field_2d

#: Share of fields per crop code (after one field of each class is guaranteed).
CROP_SHARES: dict[int, float] = {0: 0.08, 1: 0.36, 2: 0.30, 3: 0.12, 4: 0.14}


def split_rectangles(
    rng: np.random.Generator, ny: int, nx: int, max_size: int, min_size: int
) -> list[tuple[int, int, int, int]]:
    """Binary space partition of ``ny x nx`` pixels into rectangles ``(row0, row1, col0, col1)``."""
    out: list[tuple[int, int, int, int]] = []
    stack = [(0, ny, 0, nx)]
    while stack:
        r0, r1, c0, c1 = stack.pop()
        h, w = r1 - r0, c1 - c0
        if max(h, w) <= max_size and (max(h, w) < 2 * min_size or rng.random() < 0.5):
            out.append((r0, r1, c0, c1))
            continue
        if h >= w:
            cut = r0 + int(round(h * rng.uniform(0.35, 0.65)))
            stack += [(r0, cut, c0, c1), (cut, r1, c0, c1)]
        else:
            cut = c0 + int(round(w * rng.uniform(0.35, 0.65)))
            stack += [(r0, r1, c0, cut), (r0, r1, cut, c1)]
    return sorted(out)


def make_fields(
    rng: np.random.Generator,
    ny: int,
    nx: int,
    x_edges: np.ndarray,
    y_edges: np.ndarray,
    crs: str,
    max_size: int = 40,
    min_size: int = 10,
    crop_shares: dict[int, float] | None = None,
) -> tuple[gpd.GeoDataFrame, dict[str, np.ndarray]]:
    """Fields as a GeoDataFrame and the matching rasters.

    Parameters
    ----------
    x_edges, y_edges
        Pixel edge coordinates (``nx + 1`` and ``ny + 1``; ``y_edges`` decreasing).
    crop_shares
        Share of fields per crop code (of :data:`~kgvsf_explore.world.params.CROPS`); default
        :data:`CROP_SHARES`, the corn belt's.

    Returns
    -------
    fields, rasters
        ``fields`` has one row per field (``field_id``, ``crop_code``, ``crop_type``,
        ``soil_code``, ``soil_type``, ``theta_fc``, ``theta_wp``, ``whc_mm``, geometry);
        ``rasters`` holds ``field_id``, ``crop_type``, ``soil_type`` (int arrays ``(ny, nx)``),
        ``root_factor`` (smooth within-field variation of rooting depth) and the per-pixel
        management draws ``sow_frac`` and ``harvest_frac`` in [0, 1).
    """
    rects = split_rectangles(rng, ny, nx, max_size, min_size)
    n = len(rects)
    table = CROP_SHARES if crop_shares is None else crop_shares
    codes = sorted(CROP_CLASSES) if crop_shares is None else sorted(crop_shares)
    shares = np.array([table[c] for c in codes])
    crop = rng.choice(codes, size=n, p=shares / shares.sum())
    order = rng.permutation(n)
    k = min(n, len(codes))
    crop[order[:k]] = codes[:k]  # every class appears at least once (if there are enough fields)
    soil_field = gaussian_field_2d(rng, 1, (ny, nx), length_px=max(ny, nx) / 4)[0]
    root_field = gaussian_field_2d(rng, 1, (ny, nx), length_px=6.0)[0]
    sow_frac = rng.random(n)
    harvest_frac = rng.random(n)

    field_id = np.zeros((ny, nx), dtype=np.int32)
    rows = []
    for i, (r0, r1, c0, c1) in enumerate(rects):
        fid = i + 1
        field_id[r0:r1, c0:c1] = fid
        z = soil_field[(r0 + r1) // 2, (c0 + c1) // 2]
        soil = 0 if z < -0.6 else (2 if z > 0.7 else 1)
        sp, cp = SOILS[soil], CROPS[int(crop[i])]
        rows.append(
            {
                "field_id": fid,
                "crop_code": int(crop[i]),
                "crop_type": WORLD_CROP_CLASSES[int(crop[i])],
                "soil_code": soil,
                "soil_type": SOIL_CLASSES[soil],
                "theta_fc": sp.theta_fc,
                "theta_wp": sp.theta_wp,
                "whc_mm": round(1000 * (sp.theta_fc - sp.theta_wp) * cp.root_depth, 1),
                "geometry": shapely.box(x_edges[c0], y_edges[r1], x_edges[c1], y_edges[r0]),
            }
        )
    fields = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    idx = field_id - 1
    rasters = {
        "field_id": field_id,
        "crop_type": fields["crop_code"].to_numpy()[idx].astype(np.int8),
        "soil_type": fields["soil_code"].to_numpy()[idx].astype(np.int8),
        "root_factor": 1.0 + 0.12 * root_field,
        "sow_frac": sow_frac[idx],
        "harvest_frac": harvest_frac[idx],
    }
    return fields, rasters
