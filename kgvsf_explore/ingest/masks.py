"""Cloud and no-data masks from Sentinel-2 SCL and Landsat Collection 2 QA_PIXEL layers."""

from __future__ import annotations

import numpy as np

__all__ = ["SCL_CLOUD", "SCL_NODATA", "QA_BITS", "QA_CLOUD_BITS", "scl_masks", "qa_pixel_masks",
           "masks_from"]

#: Sentinel-2 L2A scene classes that hide the surface: 3 cloud shadow, 8 cloud medium
#: probability, 9 cloud high probability, 10 thin cirrus.
SCL_CLOUD: tuple[int, ...] = (3, 8, 9, 10)

#: Scene classes with no usable observation that are not clouds: 0 no data, 1 saturated or
#: defective. Their pixels become NaN but are not flagged in ``cloud_mask``.
SCL_NODATA: tuple[int, ...] = (0, 1)

#: Landsat Collection 2 QA_PIXEL bits (USGS LSDS-1619 / LSDS-1328).
QA_BITS: dict[str, int] = {"fill": 0, "dilated_cloud": 1, "cirrus": 2, "cloud": 3,
                           "cloud_shadow": 4}

#: QA_PIXEL bits that make a pixel cloudy in ``cloud_mask``.
QA_CLOUD_BITS: tuple[str, ...] = ("dilated_cloud", "cirrus", "cloud", "cloud_shadow")


def scl_masks(scl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cloud, nodata)`` boolean masks from a Sentinel-2 scene classification layer."""
    scl = np.asarray(scl)
    return np.isin(scl, SCL_CLOUD), np.isin(scl, SCL_NODATA)


def qa_pixel_masks(qa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cloud, nodata)`` boolean masks from a Landsat Collection 2 QA_PIXEL layer."""
    qa = np.asarray(qa).astype(np.int64)
    bits = sum(1 << QA_BITS[b] for b in QA_CLOUD_BITS)
    fill = (qa >> QA_BITS["fill"]) & 1
    return ((qa & bits) != 0) & (fill == 0), fill == 1


def masks_from(kind: str, layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on ``kind`` (``'scl'`` or ``'qa_pixel'``)."""
    return scl_masks(layer) if kind == "scl" else qa_pixel_masks(layer)
