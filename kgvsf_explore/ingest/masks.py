"""Cloud, shadow, snow, water and no-data classes from the quality layers of real products.

Every layer is decoded into one set of **surface classes**, the codes of Fmask (Zhu & Woodcock
2012; the ``_fmask`` files of Landsat Collection 1 processing chains), which the cube stores in
``surface_flag`` (:data:`kgvsf_explore.schema.SURFACE_CLASSES`):

====  ===============  =========================================================  ============
code  class            in the bands                                               cloud_mask
====  ===============  =========================================================  ============
0     clear            kept                                                       False
1     water            kept                                                       False
2     cloud_shadow     NaN                                                        True
3     snow             NaN (snow hides the crop canopy the model forecasts)       False
4     cloud            NaN                                                        True
254   unclassified     kept: the date has no quality layer                        False
255   no_data          NaN (fill, outside the footprint, saturated or defective)  False
====  ===============  =========================================================  ============

Decoding per kind (``mask_kind``; detected from the file name, see
:data:`kgvsf_explore.ingest.names.MASK_NAMES`):

``fmask``
    class codes as they are (0 clear, 1 water, 2 shadow, 3 snow, 4 cloud, 255 fill).
``qa_pixel``
    Landsat Collection 2 ``QA_PIXEL`` bits (USGS LSDS-1619): 0 fill, 1 dilated cloud, 2 cirrus,
    3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water.
``pixel_qa``
    Landsat Collection 1 ``pixel_qa`` bits (USGS LSDS-1368): 0 fill, 1 clear, 2 water, 3 cloud
    shadow, 4 snow, 5 cloud.
``scl``
    Sentinel-2 L2A scene classification: 0 no data, 1 saturated or defective, 2 dark area /
    topographic shadow, 3 cloud shadow, 4 vegetation, 5 bare soil, 6 water, 7 unclassified,
    8 cloud medium probability, 9 cloud high probability, 10 thin cirrus, 11 snow or ice.
``cloud_prob``
    Sentinel-2 L2A cloud probability (``MSK_CLDPRB``, 0-100 %): cloud at
    :data:`CLOUD_PROB_THRESHOLD` % or more.
"""

from __future__ import annotations

import numpy as np

from ._errors import IngestError

__all__ = ["CLEAR", "WATER", "SHADOW", "SNOW", "CLOUD", "UNCLASSIFIED", "NO_DATA",
           "MASK_KINDS", "MASK_FILL", "SCL_CLOUD", "SCL_NODATA", "QA_BITS", "QA_CLOUD_BITS",
           "C1_QA_BITS", "SCL_CLASSES", "CLOUD_PROB_THRESHOLD", "classes_from", "scl_masks",
           "qa_pixel_masks", "masks_from", "merge_classes", "HIDDEN", "CLOUDY"]

CLEAR, WATER, SHADOW, SNOW, CLOUD = 0, 1, 2, 3, 4
UNCLASSIFIED, NO_DATA = 254, 255

#: Classes whose pixels become NaN in the bands.
HIDDEN: tuple[int, ...] = (SHADOW, SNOW, CLOUD, NO_DATA)
#: Classes that set ``cloud_mask``.
CLOUDY: tuple[int, ...] = (SHADOW, CLOUD)

#: The quality-layer kinds understood.
MASK_KINDS: tuple[str, ...] = ("fmask", "qa_pixel", "pixel_qa", "scl", "cloud_prob")

#: Value of each kind where the layer has no data (outside its footprint once warped).
MASK_FILL: dict[str, int] = {"fmask": 255, "qa_pixel": 1, "pixel_qa": 1, "scl": 0,
                             "cloud_prob": 255}

#: Sentinel-2 L2A scene classes that hide the surface as clouds: 3 cloud shadow, 8 cloud
#: medium probability, 9 cloud high probability, 10 thin cirrus.
SCL_CLOUD: tuple[int, ...] = (3, 8, 9, 10)

#: Scene classes with no usable observation that are not clouds: 0 no data, 1 saturated or
#: defective.
SCL_NODATA: tuple[int, ...] = (0, 1)

#: Sentinel-2 SCL code -> surface class.
SCL_CLASSES: dict[int, int] = {0: NO_DATA, 1: NO_DATA, 2: CLEAR, 3: SHADOW, 4: CLEAR, 5: CLEAR,
                               6: WATER, 7: CLEAR, 8: CLOUD, 9: CLOUD, 10: CLOUD, 11: SNOW}

#: Landsat Collection 2 QA_PIXEL bits (USGS LSDS-1619 / LSDS-1328).
QA_BITS: dict[str, int] = {"fill": 0, "dilated_cloud": 1, "cirrus": 2, "cloud": 3,
                           "cloud_shadow": 4, "snow": 5, "clear": 6, "water": 7}

#: QA_PIXEL bits that make a pixel cloudy in ``cloud_mask``.
QA_CLOUD_BITS: tuple[str, ...] = ("dilated_cloud", "cirrus", "cloud", "cloud_shadow")

#: Landsat Collection 1 pixel_qa bits (USGS LSDS-1368 / LSDS-1370).
C1_QA_BITS: dict[str, int] = {"fill": 0, "clear": 1, "water": 2, "cloud_shadow": 3, "snow": 4,
                              "cloud": 5}

#: Sentinel-2 cloud probability (percent) from which a pixel is cloud; 40 % is the threshold
#: recommended for s2cloudless probabilities, which MSK_CLDPRB resembles.
CLOUD_PROB_THRESHOLD = 40

#: Priority when several layers classify a pixel: the cloudier class wins.
_PRIORITY = {CLEAR: 0, WATER: 1, SNOW: 2, NO_DATA: 3, SHADOW: 4, CLOUD: 5}

def _bit(qa: np.ndarray, b: int) -> np.ndarray:
    return ((qa >> b) & 1).astype(bool)


def _from_bits(qa: np.ndarray, bits: dict[str, int], cloud: tuple[str, ...]) -> np.ndarray:
    out = np.full(qa.shape, CLEAR, np.uint8)
    out[_bit(qa, bits["water"])] = WATER
    out[_bit(qa, bits["snow"])] = SNOW
    out[_bit(qa, bits["cloud_shadow"])] = SHADOW
    for name in cloud:
        out[_bit(qa, bits[name])] = CLOUD
    out[_bit(qa, bits["fill"])] = NO_DATA
    return out


def classes_from(kind: str, layer: np.ndarray) -> np.ndarray:
    """Surface classes (uint8, the codes of the module docstring) of a quality layer.

    Raises
    ------
    IngestError
        ``kind`` is not one of :data:`MASK_KINDS`, or an Fmask layer holds other codes.
    """
    layer = np.asarray(layer)
    if kind == "fmask":
        codes = layer.astype(np.int64)
        bad = ~np.isin(codes, (CLEAR, WATER, SHADOW, SNOW, CLOUD, NO_DATA))
        if bad.any():
            seen = sorted({int(v) for v in np.unique(codes[bad])[:8]})
            raise IngestError(
                f"the Fmask layer holds codes {seen}, which are not Fmask classes (0 clear, "
                "1 water, 2 shadow, 3 snow, 4 cloud, 255 fill); if it is a bit-packed QA band, "
                "pass mask_kind='qa_pixel' (Collection 2) or 'pixel_qa' (Collection 1) "
                "(kgvsf ingest --mask-kind ...)"
            )
        return codes.astype(np.uint8)
    if kind == "qa_pixel":
        return _from_bits(layer.astype(np.int64), QA_BITS, ("dilated_cloud", "cirrus", "cloud"))
    if kind == "pixel_qa":
        return _from_bits(layer.astype(np.int64), C1_QA_BITS, ("cloud",))
    if kind == "scl":
        lut = np.full(256, NO_DATA, np.uint8)
        for code, cls in SCL_CLASSES.items():
            lut[code] = cls
        return lut[np.clip(layer.astype(np.int64), 0, 255)]
    if kind == "cloud_prob":
        p = layer.astype(np.float64)
        out = np.where(p >= CLOUD_PROB_THRESHOLD, CLOUD, CLEAR).astype(np.uint8)
        out[(p > 100) | np.isnan(p)] = NO_DATA
        return out
    raise IngestError(f"unknown mask kind {kind!r}; use one of {', '.join(MASK_KINDS)}")


def merge_classes(current: np.ndarray, new: np.ndarray, here: np.ndarray) -> np.ndarray:
    """Combine a layer's classes ``new`` (valid where ``here``) into ``current``.

    Where ``current`` is unclassified (:data:`UNCLASSIFIED`) the layer's class is taken; where
    both have one, the cloudier wins (cloud > shadow > no data > snow > water > clear).
    """
    prio = np.zeros(256, np.int8)
    prio[UNCLASSIFIED] = -1
    for cls, p in _PRIORITY.items():
        prio[cls] = p
    take = here & (prio[new] > prio[current])
    return np.where(take, new, current).astype(np.uint8)


def scl_masks(scl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cloud, nodata)`` boolean masks from a Sentinel-2 scene classification layer."""
    return masks_from("scl", scl)


def qa_pixel_masks(qa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cloud, nodata)`` boolean masks from a Landsat Collection 2 QA_PIXEL layer."""
    return masks_from("qa_pixel", qa)


def masks_from(kind: str, layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cloud or shadow, no data)`` boolean masks of a quality layer of ``kind``."""
    cls = classes_from(kind, layer)
    return np.isin(cls, CLOUDY), cls == NO_DATA
