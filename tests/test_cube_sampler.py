"""Sampler: correct, reproducible, lazy training samples; the torch adapter."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import make_fake_dataset

from kgvsf_explore import schema
from kgvsf_explore.cube import Cube, Sample, Sampler, open_cube

TILE, CONTEXT, K_MIN, K_MAX = 8, 4, 5, 30


@pytest.fixture
def cube(fake_ds) -> Cube:
    return open_cube(fake_ds)


def make_sampler(cube: Cube, **kw) -> Sampler:
    opts = dict(tile=TILE, context=CONTEXT, k_min=K_MIN, k_max=K_MAX, seed=3, n_samples=12)
    opts.update(kw)
    return Sampler(cube, **opts)


def assert_same(a: Sample, b: Sample) -> None:
    for name, x, y in zip(Sample._fields, a, b, strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x == y, name


def test_shapes_and_invariants(cube):
    samples = make_sampler(cube).sample()
    assert len(samples) == 12
    n_bands, n_drivers = len(schema.BANDS), len(schema.DRIVERS)
    for s in samples:
        L = len(s.image_offsets)
        assert 1 <= L <= CONTEXT
        assert s.images.shape == (L, n_bands, TILE, TILE) and s.images.dtype == np.float32
        assert s.mask.shape == (L, TILE, TILE) and s.mask.dtype == bool
        assert s.doy.shape == (L,)
        assert s.target.shape == (n_bands, TILE, TILE) and s.target.dtype == np.float32
        assert s.target_mask.shape == (TILE, TILE)
        assert s.target_true.shape == (n_bands, TILE, TILE)
        assert s.soil_moisture_target.shape == (TILE, TILE)
        assert s.drivers.shape == (s.t_index + s.k + 1, n_drivers)
        assert s.drivers.dtype == np.float32 and np.isfinite(s.drivers).all()
        # never a target before the source; horizon within bounds; context up to t
        assert K_MIN <= s.k <= K_MAX
        assert (s.image_offsets <= 0).all() and s.image_offsets[-1] == 0
        assert s.t_index == -s.image_offsets[0]
        # NaN exactly where the mask says invalid
        assert np.isnan(s.images).any(axis=1).__eq__(~s.mask).all()
        assert np.isnan(s.target).any(axis=0).__eq__(~s.target_mask).all()
        assert s.mask[-1].mean() >= 0.2 and s.target_mask.mean() >= 0.2


def test_sample_matches_the_cube(cube):
    """Context, target, doy, soil moisture and drivers are read from the right dates."""
    assert_matches_cube(cube, make_sampler(cube, n_samples=6).sample())


def assert_matches_cube(cube: Cube, samples: list[Sample]) -> None:
    drivers = cube.drivers
    times = cube.times
    for s in samples:
        t = pd.Timestamp(s.t)
        win = dict(y=slice(s.row, s.row + TILE), x=slice(s.col, s.col + TILE))
        ctx_dates = t + pd.to_timedelta(s.image_offsets, unit="D")
        assert set(ctx_dates) <= set(times) and (ctx_dates <= t).all()
        assert list(ctx_dates.day_of_year) == list(s.doy)
        # the context holds the latest images up to t, no gap
        i_t = times.get_loc(t)
        assert list(ctx_dates) == list(times[i_t - len(ctx_dates) + 1 : i_t + 1])
        target_date = t + pd.Timedelta(days=s.k)
        assert target_date > t and target_date in times
        ref = cube.ds["B08"].sel(time=target_date).isel(win).values
        np.testing.assert_array_equal(s.target[schema.BANDS.index("B08")], ref)
        truth = cube.ds["B08_true"].sel(time=target_date).isel(win).values
        np.testing.assert_array_equal(s.target_true[schema.BANDS.index("B08")], truth)
        sm = cube.ds[schema.SOIL_MOISTURE].sel(day=target_date).isel(win).values
        np.testing.assert_array_equal(s.soil_moisture_target, sm)
        first = ctx_dates[0]
        expect = drivers["tmax"].sel(day=slice(first, target_date)).isel(win).mean(("y", "x"))
        np.testing.assert_allclose(s.drivers[:, 1], expect.values, rtol=1e-5)
        assert (
            pd.Timestamp(drivers["day"].values[0])
            + pd.Timedelta(days=int((first - drivers.indexes["day"][0]).days) + s.t_index)
            == t
        )


def test_short_context_at_the_start(cube):
    # k_max small and early dates: some samples have fewer than `context` images
    samples = make_sampler(cube, context=20, n_samples=30).sample()
    lengths = {len(s.image_offsets) for s in samples}
    assert min(lengths) >= 1 and max(lengths) <= 20 and len(lengths) > 1


def test_deterministic_with_seed(cube):
    a = make_sampler(cube, seed=7).sample(5)
    b = make_sampler(cube, seed=7).sample(5)
    for x, y in zip(a, b, strict=True):
        assert_same(x, y)
    it = list(make_sampler(cube, seed=7, n_samples=5))  # iteration == sample()
    for x, y in zip(a, it, strict=True):
        assert_same(x, y)
    c = make_sampler(cube, seed=8).sample(5)
    assert [(s.row, s.col, s.t, s.k) for s in a] != [(s.row, s.col, s.t, s.k) for s in c]


def test_works_on_dask_chunked_zarr_cube(fake_ds, cube, tmp_path):
    chunked = fake_ds.chunk({"time": 6, "y": 8, "x": 10, "day": 30})
    path = open_cube(chunked).to_zarr(tmp_path / "c.zarr")
    lazy = open_cube(path, chunks={})
    assert lazy.ds["B04"].chunks is not None
    for x, y in zip(make_sampler(lazy).sample(4), make_sampler(cube).sample(4), strict=True):
        assert_same(x, y)
    assert lazy.ds["B04"].chunks is not None  # still lazy afterwards


@pytest.mark.parametrize("drivers_on", ["pixel", "series"])
def test_other_driver_layouts(drivers_on):
    ds = make_fake_dataset(drivers_on=drivers_on)
    s = make_sampler(open_cube(ds)).sample(2)[1]
    if drivers_on == "series":
        first = pd.Timestamp(s.t) + pd.Timedelta(days=int(s.image_offsets[0]))
        expect = ds["tmax"].sel(day=slice(first, None)).values[: len(s.drivers)]
        np.testing.assert_allclose(s.drivers[:, 1], expect, rtol=1e-6)


def test_clipped_cube_masks_outside_region(cube):
    import shapely

    x0, y1 = 440_000.0, 4_650_000.0
    clipped = cube.clip(shapely.Polygon([(x0, y1), (x0 + 200, y1), (x0, y1 - 160)]))
    for s in make_sampler(clipped, min_valid=0.05).sample(4):
        region = clipped.ds["region_mask"].values[s.row : s.row + TILE, s.col : s.col + TILE]
        assert not s.mask[:, ~region].any() and not s.target_mask[~region].any()


def test_bad_configurations(cube):
    with pytest.raises(ValueError, match="larger than the cube"):
        Sampler(cube, tile=64)
    with pytest.raises(ValueError, match="k_min <= k_max"):
        Sampler(cube, k_min=10, k_max=5)
    with pytest.raises(ValueError, match="no pair of image dates"):
        Sampler(cube, tile=8, k_min=200, k_max=300)
    with pytest.raises(ValueError, match="no pair of image dates"):
        Sampler(cube, tile=8, k_min=1, k_max=4)  # images are 5 days apart
    with pytest.raises(RuntimeError, match="lower min_valid"):
        make_sampler(cube, min_valid=1.0, max_tries=5).sample(1)


def test_torch_dataset_fixed_shapes_no_nan(cube, monkeypatch):
    import torch
    import torch.utils.data as tud

    from kgvsf_explore.cube.sampler import SamplerDataset

    sampler = make_sampler(cube, n_samples=6)
    dataset = SamplerDataset(sampler)
    batches = list(tud.DataLoader(dataset, batch_size=3))
    assert len(batches) == 2
    b = batches[0]
    assert b["images"].shape == (3, CONTEXT, len(schema.BANDS), TILE, TILE)
    assert b["drivers"].shape == (3, sampler.max_drivers_len, len(schema.DRIVERS))
    for key, value in b.items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), key
    # zeros only come with the mask; the real images match the sampler's
    first = sampler.sample(1)[0]
    L = len(first.image_offsets)
    np.testing.assert_array_equal(b["mask"][0, -L:].numpy(), first.mask)
    assert not b["mask"][0, : CONTEXT - L].any() and not b["context_mask"][0, : CONTEXT - L].any()
    imgs = b["images"][0, -L:].numpy()
    np.testing.assert_array_equal(
        imgs[np.broadcast_to(first.mask[:, None], imgs.shape)],
        first.images[np.broadcast_to(first.mask[:, None], imgs.shape)],
    )
    assert (imgs[np.broadcast_to(~first.mask[:, None], imgs.shape)] == 0).all()
    t_idx = int(b["t_index"][0])
    assert b["drivers_mask"][0, : t_idx + int(b["k"][0]) + 1].all()

    # worker sharding: each worker gets its share, with different samples
    got = {}
    for wid in (0, 1):
        info = SimpleNamespace(id=wid, num_workers=2)
        monkeypatch.setattr(tud, "get_worker_info", lambda info=info: info)
        got[wid] = list(SamplerDataset(make_sampler(cube, n_samples=5)))
    assert len(got[0]) == 3 and len(got[1]) == 2
    keys0 = {(int(s["row"]), int(s["col"]), int(s["t"])) for s in got[0]}
    keys1 = {(int(s["row"]), int(s["col"]), int(s["t"])) for s in got[1]}
    assert keys0 != keys1


def test_importing_cube_does_not_import_torch_or_hvplot():
    code = (
        "import sys, kgvsf_explore.cube, kgvsf_explore.cube.sampler; "
        "assert 'torch' not in sys.modules, 'torch'; assert 'hvplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tile_weights_are_bilinear_means():
    from kgvsf_explore.cube.regrid import tile_weights as _tile_weights

    sl, w = _tile_weights(np.array([0.0, 10.0, 20.0, 30.0]), np.array([5.0, 15.0]))
    assert sl == slice(0, 3)
    np.testing.assert_allclose(w, [0.25, 0.5, 0.25])
    sl, w = _tile_weights(np.array([30.0, 20.0, 10.0, 0.0]), np.array([5.0, 15.0]))
    assert sl == slice(1, 4)
    np.testing.assert_allclose(w, [0.25, 0.5, 0.25])
    assert _tile_weights(np.array([0.0, 10.0]), np.array([5.0, 11.0])) is None


def test_drivers_fall_back_to_regrid_outside_met_grid(fake_ds):
    ds = fake_ds.isel(x_met=slice(2, None))  # the west column of pixels is outside the grid
    sampler = Sampler(open_cube(ds, validate=False), tile=8, context=2, k_min=5, k_max=10)
    drv = sampler._drivers(0, 0, 0, 3)
    assert drv.shape == (4, len(schema.DRIVERS)) and np.isnan(drv).any()  # NaN, as regrid gives
    inside = sampler._drivers(0, 10, 0, 3)
    np.testing.assert_allclose(inside, sampler._drivers_regrid(0, 10, 0, 3), rtol=1e-5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method")
def test_torch_dataloader_forked_workers_on_zarr(fake_ds, tmp_path):
    """Forked workers reading a lazy zarr cube must not deadlock (dask pool vs fork)."""
    import torch.utils.data as tud

    from kgvsf_explore.cube.sampler import SamplerDataset

    path = open_cube(fake_ds.chunk({"time": 12, "y": 8, "x": 10})).to_zarr(tmp_path / "c.zarr")
    sampler = make_sampler(open_cube(path), n_samples=4)
    sampler.sample(1)  # use dask in the parent first: the case that used to hang
    loader = tud.DataLoader(
        SamplerDataset(sampler),
        batch_size=2,
        num_workers=2,
        timeout=60,
        multiprocessing_context="fork",
    )
    rows = sorted(int(r) for batch in loader for r in batch["row"])
    assert len(rows) == 4


def test_in_memory_driver_table_keeps_gap_errors(fake_ds):
    """The whole-cube driver table of an in-memory cube reports gaps only where a sample
    needs them, with the day named, like the per-sample path of a lazy cube."""
    from kgvsf_explore.errors import DriverGapError

    ds = fake_ds.copy(deep=True)
    ds["prcp"][40] = np.nan
    sampler = Sampler(open_cube(ds, validate=False), tile=8, context=2, k_min=5, k_max=10)
    assert sampler._in_memory
    np.testing.assert_array_equal(sampler._drivers(0, 10, 0, 30),
                                  Sampler(open_cube(ds.chunk(), validate=False), tile=8,
                                          context=2, k_min=5, k_max=10)._drivers(0, 10, 0, 30))
    day = str(ds["day"].values[40])[:10]
    with pytest.raises(DriverGapError, match=day):
        sampler._drivers(0, 10, 35, 45)


def lazy_chunked(fake_ds, tmp_path, chunk: int = 8) -> Cube:
    chunked = fake_ds.chunk({"time": 6, "y": chunk, "x": chunk, "day": 30})
    return open_cube(open_cube(chunked).to_zarr(tmp_path / "c.zarr"), chunks={})


def test_block_reads_give_true_samples(fake_ds, tmp_path, monkeypatch):
    """Samples drawn from blocks of a lazy cube are read from the right places of the whole
    cube; blocks lie on the chunk grid and reach every edge; one read per block."""
    lazy = lazy_chunked(fake_ds, tmp_path)  # 16 x 20 pixels in 8 x 8 chunks
    sampler = make_sampler(lazy, block=8, n_samples=8)
    assert not sampler._in_memory and sampler._block_shape() == (8, 8)
    reads = []
    real = Sampler._block_sampler
    monkeypatch.setattr(Sampler, "_block_sampler",
                        lambda self, *a: reads.append(a[:2]) or real(self, *a))
    samples = sampler.sample(8, seed=1)
    assert len(reads) >= 1
    assert_matches_cube(open_cube(fake_ds), samples)  # drivers, truth, soil moisture too
    for s in samples:  # every tile inside a block that was read
        assert any(r <= s.row and s.row + TILE <= r + 8 and c <= s.col and s.col + TILE <= c + 8
                   for r, c in reads)
    rng = np.random.default_rng(0)
    origins = {sampler._block_origin(rng, 16 - 8, 20 - 8) for _ in range(200)}
    assert origins == {(r, c) for r in (0, 8) for c in (0, 8, 12)}  # 12: the east edge
    again = make_sampler(lazy, block=8, n_samples=8).sample(8, seed=1)
    for x, y in zip(samples, again, strict=True):
        assert_same(x, y)


def test_block_reuse_reads_once_per_group_of_batches(fake_ds, tmp_path, monkeypatch):
    from kgvsf_explore.cube.sampler import SamplerDataset

    lazy = lazy_chunked(fake_ds, tmp_path)
    sampler = make_sampler(lazy, block=8, n_samples=4, truth=False)
    reads = []
    real = Sampler._block_sampler
    monkeypatch.setattr(Sampler, "_block_sampler",
                        lambda self, *a: reads.append(a[:2]) or real(self, *a))
    ds = SamplerDataset(sampler, block_reuse=3)
    blocks = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        items = list(ds)
        assert len(items) == 4 and all("target_true" not in it for it in items)
        blocks.append({(int(it["row"]) // 8, int(it["col"]) // 8) for it in items})
    assert len(blocks[0] | blocks[1] | blocks[2]) == 1  # epochs 0-2 share one block
    assert len(reads) <= 2 + 2  # one read per group (a retry if a block had no valid tile)
    with pytest.raises(ValueError, match="block_reuse"):
        SamplerDataset(sampler, block_reuse=0)
    with pytest.raises(ValueError, match="block"):
        make_sampler(lazy, block=TILE - 1)
