"""Readers of a world whose crop map changes by year (rotations, other climates)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgvsf_explore import schema
from kgvsf_explore.app.truth import region_truth
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.world import make_world
from kgvsf_explore.world.sample import WorldOptions


@pytest.fixture(scope="module")
def plains():
    ds, _ = make_world(seed=31, size="tiny", options=WorldOptions(climate="great-plains",
                                                                  rotation=True))
    return ds


def test_region_truth_follows_the_worlds_climate_and_rotation(plains) -> None:
    assert schema.YEAR_DIM in plains[schema.CROP_TYPE].dims
    days = pd.DatetimeIndex(plains.time.values).to_series()["2022-05-01":"2022-06-15"].index
    got = region_truth(plains, None, slice(4, 12), slice(10, 20), days)
    ref = np.stack([plains[schema.truth_name(b)].sel(time=days).values[:, 4:12, 10:20]
                    for b in schema.BANDS], axis=1)
    np.testing.assert_array_equal(got.reflectance.values, ref)


def test_task_labels_are_the_samples_years_crops(plains) -> None:
    from kgvsf_explore.models.config import ModelConfig
    from kgvsf_explore.tasks import make_split
    from kgvsf_explore.tasks.data import draw

    cube = Cube(plains)
    split = make_split(cube)
    data = draw(cube, split, "finetune", ModelConfig(tile=16), 4, seed=0)
    for n, year in enumerate(data.info["year_of_sample"]):
        r, c = int(data.batch["row"][n]), int(data.batch["col"][n])
        want = schema.crop_map(plains, year).values[r:r + 16, c:c + 16]
        np.testing.assert_array_equal(data.crop[n].numpy(), want)
