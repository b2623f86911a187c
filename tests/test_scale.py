"""Scale-out on existing engines: block-wise inference on a dask.distributed LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from kgvsf_explore.cube import Cube
from kgvsf_explore.forecaster import Forecaster
from kgvsf_explore.models import KGVSF, PRESETS
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.world import write_world

distributed = pytest.importorskip("distributed")

START = "2022-07-03"


@pytest.fixture(scope="module")
def cube(tmp_path_factory: pytest.TempPathFactory) -> Cube:
    from kgvsf_explore.cube import open_cube

    path = write_world(tmp_path_factory.mktemp("w") / "world", seed=23, size="tiny")
    return open_cube(path)  # lazy, zarr-backed: workers read their own blocks


@pytest.fixture(scope="module")
def fc() -> Forecaster:
    torch.manual_seed(0)
    return Forecaster(KGVSF(PRESETS["tiny"].model, "kgvsf").eval(), weights_id="t" * 64)


def test_local_cluster_gives_the_in_memory_numbers(cube: Cube, fc: Forecaster, tmp_path) -> None:
    dry = Scenario.dry_spell("2022-07-01", "2022-08-01", name="dry")
    eager = fc.forecast(cube, None, START, (5, 20), [None, dry], progress=False)
    emb_eager = fc.embed(cube, None, START, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        lazy = fc.forecast(cube, None, START, (5, 20), [None, dry], chunks=16)
        lazy.to_zarr(tmp_path / "f.zarr", mode="w", consolidated=False)
        emb = fc.embed(cube, None, START, chunks=16).compute()
    back = xr.open_zarr(tmp_path / "f.zarr", consolidated=False).load()
    np.testing.assert_allclose(back.reflectance.values, eager.reflectance.values, atol=1e-5)
    np.testing.assert_allclose(emb.values, emb_eager.values, atol=1e-5)
