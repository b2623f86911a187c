"""The what-if scorecard on a world with irrigation: irrigated and rain-fed halves of each crop
type, and the ratio of their changes, for the truth and the weights."""

from __future__ import annotations

import numpy as np
import pytest

from kgvsf_explore import schema
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.evaluation.peers.history import PixelHistory
from kgvsf_explore.evaluation.scorecard import Scorecard
from kgvsf_explore.evaluation.scorecard.report import markdown
from kgvsf_explore.evaluation.scorecard.whatif import irrigated_map, whatif_rows
from kgvsf_explore.weights import default_weights, load_model
from kgvsf_explore.world import make_world
from kgvsf_explore.world.sample import WorldOptions


@pytest.fixture(scope="module")
def irrigated_world() -> Cube:
    ds, fields = make_world(seed=5, size="tiny", options=WorldOptions(irrigation=True))
    return Cube(ds.load(), fields=fields)


def test_irrigated_map_follows_the_fields_table(irrigated_world: Cube) -> None:
    cube = irrigated_world
    whole = slice(0, cube.ds.sizes["y"]), slice(0, cube.ds.sizes["x"])
    irr = irrigated_map(cube, *whole)
    assert irr is not None and irr.dtype == bool and irr.shape == cube.ds[schema.FIELD_ID].shape
    fid = cube.ds[schema.FIELD_ID].values
    wet = set(cube.fields.loc[cube.fields["irrigated"], "field_id"].astype(int))
    assert np.array_equal(irr, np.isin(fid, list(wet)))
    assert 0 < irr.mean() < 1
    plain = Cube(make_world(seed=5, size="tiny")[0])
    assert irrigated_map(plain, *whole) is None  # no fields table: nothing to split


def test_whatif_rows_split_irrigated_fields(irrigated_world: Cube) -> None:
    cube = irrigated_world
    model, _ = load_model(default_weights())
    hist = PixelHistory.from_cube(cube)
    rows, per_crop = whatif_rows(model, cube, hist, None, year=2022,
                                 rows=slice(0, cube.ds.sizes["y"]),
                                 cols=slice(0, cube.ds.sizes["x"]))
    halves = per_crop[per_crop["crop_type"].str.endswith(("_irrigated", "_rainfed"))]
    assert len(halves) and set(halves["crop_type"].str.rsplit("_", n=1).str[0]) <= set(
        per_crop["crop_type"])
    df = Scorecard(rows).to_frame()
    ratio = df[df["metric"] == "irrigated_ratio"]
    assert set(ratio["method"]) == {"truth", model.objective}
    drought = ratio[(ratio["bin"] == "rain-50%-30d") & (ratio["method"] == "truth")]
    # the simulator's irrigated fields barely feel half the rain
    assert len(drought) == 1 and float(drought["value"].iloc[0]) < 1
    text = markdown(Scorecard(rows, {}, {"weights": "w", "objective": model.objective},
                                     {"whatif_per_crop": per_crop}))
    assert "Irrigated over rain-fed" in text
