"""Cubes that lack bands (a Landsat stack has no red edge B05): masked, never refused or zeroed.

A band is missing when it is absent from the dataset or listed in
``attrs["kgvsf_missing_bands"]``. The sampler keeps the full band list with the missing band
NaN and ``band_mask`` False; the model sees it as "not observed" (zero after normalisation plus
a learned embedding, zero in the shipped weights) and leaves it out of every loss; inference
forecasts it from the other bands and marks it. Only a cube without any band is refused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.torch as st
import torch
import xarray as xr
from conftest import make_fake_dataset

from kgvsf_explore import schema
from kgvsf_explore.cube import Cube, Sampler, open_cube
from kgvsf_explore.cube.cube import missing_bands
from kgvsf_explore.cube.sampler import sample_to_tensors
from kgvsf_explore.data import data_dir, sample_path
from kgvsf_explore.errors import CubeValidationError, KGVSFError
from kgvsf_explore.forecaster import Forecaster
from kgvsf_explore.inference import context_batches, plan_tiles
from kgvsf_explore.models import KGVSF, OBJECTIVES, PRESETS, TrainConfig
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.training import CheckpointError, load_checkpoint, pretrain, save_checkpoint
from kgvsf_explore.world import make_world

B05 = schema.BANDS.index("B05")
OTHERS = [i for i, b in enumerate(schema.BANDS) if b != "B05"]
TINY = PRESETS["tiny"].model
START = "2022-07-01"


def without_b05(ds: xr.Dataset) -> xr.Dataset:
    """The dataset with B05 (and its truth) absent."""
    return ds.drop_vars([v for v in ("B05", schema.truth_name("B05")) if v in ds])


def listed_b05(ds: xr.Dataset, fill: float = np.nan) -> xr.Dataset:
    """The dataset with B05 kept but listed as missing (values ``fill``: ignored anyway)."""
    out = ds.assign(B05=ds["B05"] * 0 + np.float32(fill))
    return out.assign_attrs(kgvsf_missing_bands=json.dumps(["B05"]))


def sampler(cube, **kw) -> Sampler:
    opts = dict(tile=8, context=4, k_min=5, k_max=30, seed=3, n_samples=8)
    opts.update(kw)
    return Sampler(cube, **opts)


# ------------------------------------------------------------------------------------------
# which bands a cube lacks


def test_missing_bands_absent_listed_or_empty(fake_ds):
    assert missing_bands(fake_ds) == []
    assert missing_bands(without_b05(fake_ds)) == ["B05"]
    assert missing_bands(listed_b05(fake_ds, 0.1)) == ["B05"]  # listed: whatever its values
    empty = fake_ds.assign(B11=fake_ds["B11"] * np.nan)
    assert missing_bands(empty) == [] and missing_bands(empty, check_values=True) == ["B11"]
    cube = Cube(listed_b05(fake_ds))
    assert cube.missing_bands() == ("B05",) and "B05" not in cube.observed_bands
    assert "never observed: B05" in repr(cube)
    # validity ignores the missing band: same valid pixels as the full cube
    np.testing.assert_array_equal(cube.valid.values, Cube(fake_ds).valid.values)
    np.testing.assert_array_equal(Cube(without_b05(fake_ds)).valid.values,
                                  Cube(fake_ds).valid.values)
    with pytest.raises(CubeValidationError, match=r"needs band\(s\) \['B05'\]"):
        cube.index("ndre")
    bad = fake_ds.assign_attrs(kgvsf_missing_bands="[B05")
    with pytest.raises(CubeValidationError, match="not a JSON list"):
        missing_bands(bad)


# ------------------------------------------------------------------------------------------
# (a) the sampler


@pytest.mark.parametrize("make", [without_b05, listed_b05], ids=["absent", "listed"])
def test_sampler_masks_the_missing_band(fake_ds, make):
    full = sampler(Cube(fake_ds)).sample()
    part = sampler(Cube(make(fake_ds))).sample()
    for a, b in zip(full, part, strict=True):
        assert (a.row, a.col, a.t, a.k) == (b.row, b.col, b.t, b.k)
        assert a.band_mask.all() and b.band_mask.tolist() == [i != B05 for i in range(7)]
        np.testing.assert_array_equal(a.mask, b.mask)  # B05 does not make a pixel invalid
        np.testing.assert_array_equal(a.target_mask, b.target_mask)
        assert b.mask.any() and b.target_mask.any()
        np.testing.assert_array_equal(a.images[:, OTHERS], b.images[:, OTHERS])
        np.testing.assert_array_equal(a.target[OTHERS], b.target[OTHERS])
        assert np.isnan(b.images[:, B05]).all() and np.isnan(b.target[B05]).all()
        assert np.isfinite(b.images[:, OTHERS].transpose(1, 0, 2, 3)[:, b.mask]).all()
        np.testing.assert_array_equal(a.target_true[OTHERS], b.target_true[OTHERS])
        t = sample_to_tensors(b, context=4)
        assert t["band_mask"].tolist() == b.band_mask.tolist()
        assert torch.isfinite(t["images"]).all() and float(t["images"][:, B05].abs().max()) == 0
    assert sample_to_tensors(full[0])["band_mask"].all()


def test_sampler_on_lazy_cubes_and_blocks(tmp_path):
    ds = without_b05(make_fake_dataset(ny=24, nx=24))
    ds = ds.assign_attrs(kgvsf_missing_bands=json.dumps(["B05"]))
    memory = Cube(ds)
    path = memory.to_zarr(tmp_path / "c.zarr")
    lazy = open_cube(path)
    lazy = Cube(lazy.ds.chunk({"time": -1, "y": 8, "x": 8}))
    a, b = sampler(memory).sample(), sampler(lazy).sample()
    for x, y in zip(a, b, strict=True):  # a lazy cube gives the in-memory samples
        for name, u, v in zip(x._fields, x, y, strict=True):
            if isinstance(u, np.ndarray):
                np.testing.assert_array_equal(u, v, err_msg=name)
    blocks = sampler(lazy, block=16, truth=False).sample()
    assert all(not s.band_mask[B05] and s.mask.any() and s.target_mask.any() for s in blocks)
    assert all(np.isnan(s.images[:, B05]).all() for s in blocks)


# ------------------------------------------------------------------------------------------
# (b) the shipped weights: unchanged on full cubes; checkpoints without the new parameter


@pytest.fixture(scope="module")
def shipped() -> Forecaster:
    return Forecaster.from_pretrained(device="cpu")


@pytest.fixture(scope="module")
def sample_cube() -> Cube:
    """A 64 x 64 pixel corner of the shipped sample cube, in memory."""
    return open_cube(sample_path()).window(0, 0, 64, 64).compute()


def test_weights_older_than_the_parameter_load():
    """``kgvsf-small`` was saved before ``missing_band`` existed: it loads, with the token at 0."""
    old = data_dir() / "weights" / "kgvsf-small"
    keys = st.load_file(str(old / "model.safetensors")).keys()
    assert "image_encoder.missing_band" not in keys
    fc = Forecaster.from_pretrained(old, device="cpu")
    assert float(fc.model.image_encoder.missing_band.detach().abs().max()) == 0.0


def test_band_mask_all_true_is_the_same_as_none(shipped, sample_cube):
    model = shipped.model
    plan = plan_tiles(sample_cube, model.cfg, START)
    assert plan.bands_observed.all() and plan.missing_bands == ()
    fut = torch.randn(1, 30, len(model.cfg.drivers)).abs() * 10 + 5
    for _, batch in context_batches(plan, 4, progress=False):
        assert batch["band_mask"].all()
        none = {k: v for k, v in batch.items() if k != "band_mask"}
        with torch.no_grad():
            a = model.forecast(model.encode_context(none),
                               fut.expand(len(batch["images"]), -1, -1), [5, 30])
            b = model.forecast(model.encode_context(batch),
                               fut.expand(len(batch["images"]), -1, -1), [5, 30])
            assert torch.equal(a, b)
            assert torch.equal(model.embed(none), model.embed(batch))
        break


def test_checkpoint_without_missing_band_loads_other_gaps_refused(tmp_path):
    class Weights:  # anything with a state_dict can be saved
        def __init__(self, sd: dict) -> None:
            self.sd = sd

        def state_dict(self) -> dict:
            return self.sd

    torch.manual_seed(0)
    model = KGVSF(TINY)
    with torch.no_grad():
        model.image_encoder.missing_band.normal_()
    sd = dict(model.state_dict())
    save_checkpoint(tmp_path / "new", model, TINY, None, {})
    loaded, *_ = load_checkpoint(tmp_path / "new")  # a trained embedding round-trips
    assert torch.equal(loaded.image_encoder.missing_band, model.image_encoder.missing_band)
    old = {k: v for k, v in sd.items() if k != "image_encoder.missing_band"}
    save_checkpoint(tmp_path / "old", Weights(old), TINY, None, {})
    loaded, *_ = load_checkpoint(tmp_path / "old")
    assert float(loaded.image_encoder.missing_band.detach().abs().max()) == 0.0
    assert torch.equal(loaded.image_encoder.pos, model.image_encoder.pos)
    gap = {k: v for k, v in old.items() if k != "image_encoder.pos"}
    save_checkpoint(tmp_path / "gap", Weights(gap), TINY, None, {})
    with pytest.raises(CheckpointError, match=r"missing keys.*image_encoder\.pos") as err:
        load_checkpoint(tmp_path / "gap")
    assert "missing_band" not in str(err.value)
    extra = {**sd, "image_encoder.extra": torch.zeros(2)}
    save_checkpoint(tmp_path / "extra", Weights(extra), TINY, None, {})
    with pytest.raises(CheckpointError, match=r"unexpected keys.*image_encoder\.extra"):
        load_checkpoint(tmp_path / "extra")


# ------------------------------------------------------------------------------------------
# (c) forecasts, what-if forecasts and embeddings on a cube without B05


def test_forecast_and_embed_without_b05(shipped, sample_cube):
    full = shipped.forecast(sample_cube, None, START, (5, 30), progress=False)
    lacking = Cube(without_b05(sample_cube.ds))
    part = shipped.forecast(lacking, None, START, (5, 30), progress=False)
    listed = shipped.forecast(Cube(listed_b05(sample_cube.ds, 0.5)), None, START, (5, 30),
                              progress=False)
    xr.testing.assert_identical(part, listed)  # absent or listed: the same question
    refl, ref = part.reflectance, full.reflectance
    assert bool((np.isfinite(refl) | ~np.isfinite(ref)).all())
    assert bool(np.isfinite(refl).all())
    note = refl.attrs["kgvsf_not_observed"]
    assert "B05" in note and "never observed" in note and "predicted from the other" in note
    assert json.loads(part.attrs["kgvsf_not_observed_bands"]) == ["B05"]
    assert "kgvsf_not_observed" not in full.reflectance.attrs
    assert "kgvsf_not_observed" not in part.ndvi.attrs  # NDVI uses B04 and B08 only
    # the model still sees six of seven bands: the observed bands' forecasts move, but only a
    # little (measured on this corner, mean |difference| per observed band: 0.002-0.009 with
    # kgvsf-small, 0.003-0.017 with the default kgvsf-small-pcwv, whose per-pixel path never
    # learnt a cube without B05; NDVI 0.027 and 0.060; B05 itself 0.003 and 0.13)
    observed = [b for b in refl.band.values if b != "B05"]
    diff = np.abs(refl - ref).sel(band=observed).mean(["horizon", "y", "x"])
    assert 0 < float(diff.mean()) < 0.015 and float(diff.max()) < 0.03
    assert float(np.abs(part.ndvi - full.ndvi).mean()) < 0.08

    dry = Scenario.parse("prcp =0", name="dry")
    whatif = shipped.forecast(lacking, None, START, (15,), [None, dry], progress=False)
    assert list(whatif.scenario.values) == ["observed", "dry"]
    assert bool(np.isfinite(whatif.reflectance).all())
    assert "kgvsf_not_observed" in whatif.reflectance.attrs

    emb = shipped.embed(lacking, None, START, progress=False)
    emb_full = shipped.embed(sample_cube, None, START, progress=False)
    assert emb.shape == emb_full.shape and bool(np.isfinite(emb).all())
    assert "B05" in emb.attrs["kgvsf_not_observed"]
    assert "kgvsf_not_observed" not in emb_full.attrs


# ------------------------------------------------------------------------------------------
# (d) losses and a short pretraining on a cube without B05


@pytest.fixture(scope="module")
def world_b05_listed() -> Cube:
    ds, _ = make_world(seed=5, size="tiny")
    return Cube(listed_b05(ds)).compute()


@pytest.fixture(scope="module")
def batch(world_b05_listed) -> dict:
    s = Sampler(world_b05_listed, tile=TINY.tile, context=TINY.context, k_min=TINY.k_min,
                k_max=TINY.k_max, seed=1, n_samples=4)
    items = [sample_to_tensors(x, context=TINY.context, drivers_len=s.max_drivers_len)
             for x in s]
    return torch.utils.data.default_collate(items)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_losses_ignore_the_missing_band(batch, objective):
    assert not batch["band_mask"][:, B05].any() and batch["band_mask"][:, OTHERS].all()
    torch.manual_seed(0)
    model = KGVSF(TINY, objective)
    with torch.no_grad():
        model.image_encoder.missing_band.normal_()  # as if trained: it must not matter here
    other = dict(batch)
    for key in ("images", "target"):
        x = batch[key].clone()
        x[..., B05, :, :] = 7.0 if key == "target" else float("nan")
        other[key] = x
    for phase in (1, 2):
        losses = []
        for b in (batch, other):
            g = torch.Generator().manual_seed(4)
            loss, _ = model.loss(b, objective, phase, generator=g)
            losses.append(loss)
        assert torch.isfinite(losses[0]) and torch.equal(losses[0], losses[1]), phase
    # and the band does count when it is observed
    seen = {**other, "band_mask": torch.ones_like(batch["band_mask"])}
    seen["images"] = batch["images"]
    g = torch.Generator().manual_seed(4)
    assert not torch.equal(model.loss(seen, objective, 2, generator=g)[0], losses[0])


def test_short_pretraining_without_b05(world_b05_listed, tmp_path):
    train = TrainConfig(phase1_steps=2, phase2_steps=2, batch_size=2, eval_every=2,
                        val_batches=1)
    result = pretrain(world_b05_listed, tmp_path / "run", TINY, train, progress=False,
                      fit_stats=False)
    assert result.steps == 4
    assert result.history and all(np.isfinite(h["val_loss"]) and np.isfinite(h["train_loss"])
                                  for h in result.history)
    model, *_ = load_checkpoint(tmp_path / "run")
    assert float(model.image_encoder.missing_band[B05].detach().abs().sum()) > 0  # it learns
    assert float(model.image_encoder.missing_band[OTHERS].detach().abs().sum()) == 0


# ------------------------------------------------------------------------------------------
# (e) no band at all


def test_a_cube_without_any_band_is_refused(fake_ds):
    none = fake_ds.assign_attrs(kgvsf_missing_bands=json.dumps(list(schema.BANDS)))
    with pytest.raises(KGVSFError, match=r"observed none of the bands.*at least one band"):
        plan_tiles(Cube(none), TINY, "2021-05-01")
    gone = fake_ds.drop_vars(list(schema.BANDS))
    with pytest.raises(KGVSFError, match="no band variable is present"):
        plan_tiles(Cube(gone), TINY, "2021-05-01")
    with pytest.raises(ValueError, match="observed none of the bands"):
        sampler(Cube(none))
    with pytest.raises(CubeValidationError, match="observed none of the bands"):
        Cube(gone).valid  # noqa: B018


def test_dashboard_session_notes_the_missing_band(world_b05_listed):
    from kgvsf_explore.app.session import RegionSession

    torch.manual_seed(0)
    model = KGVSF(TINY).eval()
    s = RegionSession(model, world_b05_listed, START, rows=slice(0, 16), cols=slice(0, 16))
    assert s.missing_bands == ("B05",) and "B05 was never observed" in s.band_notes[0]
    assert np.isfinite(s.forecast([10])).all() and np.isfinite(s.embedding()).all()
