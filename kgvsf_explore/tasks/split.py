"""The field-and-year split of the downstream tasks: no test pixel's field or year is trained on.

Fields are split in two groups, stratified by crop type (each crop's fields, in a seeded random
order, alternate between the groups), and years in two: every image year but the last
(``finetune``) and the last (``test``). Finetuning reads labels only on group-A fields in the
finetune years; every metric is computed on group-B fields in the test year. Inputs (the
imagery of a tile) may show other fields, but never a label of a test field and never the test
year.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import schema
from ..cube.cube import Cube

__all__ = ["FieldYearSplit", "make_split"]

#: Seed of the field split (fixed: the finetuning seeds vary the training, not the test set).
SPLIT_SEED = 6


@dataclass(frozen=True)
class FieldYearSplit:
    """Which fields and years finetuning and testing use.

    Attributes
    ----------
    finetune_years, test_years
        Calendar years of each part.
    group
        ``(y, x)`` int8 raster: 0 for finetune (group A) fields, 1 for test (group B) fields.
    """

    finetune_years: tuple[int, ...]
    test_years: tuple[int, ...]
    group: np.ndarray

    def years(self, part: str) -> tuple[int, ...]:
        """Years of ``part`` (``"finetune"`` or ``"test"``)."""
        return self.finetune_years if part == "finetune" else self.test_years

    def pixels(self, part: str) -> np.ndarray:
        """Boolean ``(y, x)`` raster of the pixels whose labels ``part`` may use."""
        return self.group == (0 if part == "finetune" else 1)

    def describe(self) -> str:
        """One line for reports."""
        a = float((self.group == 0).mean())
        return (f"finetune: group-A fields ({a:.0%} of pixels) in {list(self.finetune_years)}; "
                f"test: group-B fields ({1 - a:.0%}) in {list(self.test_years)}")


def make_split(cube: Cube, seed: int = SPLIT_SEED) -> FieldYearSplit:
    """Split a cube's fields (stratified by crop type) and years.

    Parameters
    ----------
    cube
        A cube with ``field_id`` and ``crop_type`` and at least two image years.
    seed
        Seed of the field order.

    Raises
    ------
    ValueError
        If the cube has one image year only or lacks ``field_id``/``crop_type``.
    """
    ds = cube.ds
    for name in (schema.FIELD_ID, schema.CROP_TYPE):
        if name not in ds:
            raise ValueError(f"the downstream tasks need {name!r} in the cube")
    years = sorted({int(y) for y in cube.times.year})
    if len(years) < 2:
        raise ValueError(f"the split by year needs two image years; the cube has {years}")
    fid = np.asarray(ds[schema.FIELD_ID].values)
    crop = np.asarray(schema.crop_map(ds, years[-1]).values)  # the test year's map
    rng = np.random.default_rng(seed)
    group = np.zeros(fid.shape, dtype=np.int8)
    ids = np.unique(fid)
    majority = {int(i): int(np.bincount(crop[fid == i].astype(int)).argmax()) for i in ids}
    for c in sorted(set(majority.values())):
        members = np.array([i for i, m in majority.items() if m == c])
        members = members[rng.permutation(len(members))]
        start = int(rng.integers(2))
        for j, i in enumerate(members):
            group[fid == i] = (j + start) % 2
    return FieldYearSplit(tuple(years[:-1]), (years[-1],), group)
