"""The KG-VSF network: shapes, causality, weather dependence, masking, every objective learns."""

from __future__ import annotations

import pytest
import torch

from kgvsf_explore.cube import Cube, Sampler
from kgvsf_explore.cube.sampler import sample_to_tensors
from kgvsf_explore.models import KGVSF, OBJECTIVES, PRESETS, TrainConfig, phase_schedule
from kgvsf_explore.models.image_encoder import patchify, unpatchify
from kgvsf_explore.world import make_world

CFG = PRESETS["tiny"].model


@pytest.fixture(scope="module")
def batch() -> dict:
    ds, _ = make_world(seed=5, size="tiny")
    sampler = Sampler(Cube(ds), tile=CFG.tile, context=CFG.context, k_min=CFG.k_min,
                      k_max=CFG.k_max, seed=1, n_samples=6)
    items = [sample_to_tensors(s, context=CFG.context, drivers_len=sampler.max_drivers_len)
             for s in sampler]
    return torch.utils.data.default_collate(items)


def _model(objective: str = "kgvsf", seed: int = 0) -> KGVSF:
    torch.manual_seed(seed)
    return KGVSF(CFG, objective).eval()


def test_patchify_roundtrip_and_layout() -> None:
    x = torch.randn(2, 3, 7, 16, 16)
    assert torch.equal(unpatchify(patchify(x, 4), 4, 7, 16), x)
    # patch 5 of a 4x4 grid is row 1, column 1
    assert torch.equal(patchify(x, 4)[0, 0, 5, :16].reshape(4, 4), x[0, 0, 0, 4:8, 4:8])


def test_shapes(batch: dict) -> None:
    model = _model()
    b = batch["images"].shape[0]
    with torch.no_grad():
        state = model.encode_context(batch)
        future = batch["drivers"][:, :60]
        out = model.forecast(state, future, [1, 7, 60])
        emb = model.embed(batch)
    assert out.shape == (b, 3, len(CFG.bands), CFG.tile, CFG.tile)
    assert emb.shape == (b, CFG.context, CFG.dim + CFG.pixel_dim, CFG.tile, CFG.tile)
    assert torch.isfinite(out).all() and torch.isfinite(emb).all()


def _later_date_changed(batch: dict) -> dict:
    changed = {k: v.clone() for k, v in batch.items()}
    changed["images"][:, -1] += 0.3  # the date t itself (the last context date)
    return changed


def test_causal_mask_holds(batch: dict) -> None:
    model = _model("kgvsf")
    with torch.no_grad():
        a = model.embed(batch)
        b = model.embed(_later_date_changed(batch))
    # earlier dates' embeddings do not see the change of the last date ...
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-5)
    # ... the last date's do
    assert not torch.allclose(a[:, -1], b[:, -1], atol=1e-3)


def test_bidirectional_baseline_is_not_causal(batch: dict) -> None:
    model = _model("mm-mr")
    with torch.no_grad():
        a = model.embed(batch)
        b = model.embed(_later_date_changed(batch))
    assert not torch.allclose(a[:, :-1], b[:, :-1], atol=1e-4)


def test_forecast_depends_on_weather_inside_the_horizon_only(batch: dict) -> None:
    model = _model("kgvsf")
    k = 20
    with torch.no_grad():
        state = model.encode_context(batch)
        future = batch["drivers"][:, :60].clone()
        base = model.forecast(state, future, [k])
        inside = future.clone()
        inside[:, 5:k, 0] += 20.0  # more rain in (t, t+k]
        after = future.clone()
        after[:, k:, 0] += 20.0  # rain after t+k
        after[:, k:, 1] += 10.0
    assert not torch.allclose(model.forecast(state, inside, [k]), base, atol=1e-5)
    assert torch.equal(model.forecast(state, after, [k]), base)


def test_forecast_without_weather_ignores_it(batch: dict) -> None:
    model = _model("sm-vsf")
    with torch.no_grad():
        state = model.encode_context(batch)
        future = batch["drivers"][:, :30]
        wetter = future.clone()
        wetter[..., 0] += 20.0
        assert torch.equal(model.forecast(state, future, [10]), model.forecast(state, wetter, [10]))


@pytest.mark.parametrize("objective", ["kgvsf", "mm-vsf", "sm-vsf"])
def test_encode_once_matches_training_path(batch: dict, objective: str) -> None:
    """The fast path (encode context once, run the weather on) predicts what training saw."""
    model = _model(objective)
    with torch.no_grad():
        loss_train, _ = model.loss(batch, objective, phase=2)
        state = model.encode_context(batch)
        preds = []
        for i in range(batch["images"].shape[0]):
            ti, k = int(batch["t_index"][i]), int(batch["k"][i])
            sub = state.select(i)
            future = batch["drivers"][i : i + 1, ti + 1 : ti + 1 + k]
            preds.append(model.forecast(sub, future, [k])[:, 0])
        pred = torch.cat(preds)
        target = model.norm_images(batch["target"])
        m = batch["target_mask"].unsqueeze(1).float()
        fast = (((model.norm_images(pred) - target) ** 2) * m).sum() / (m.sum() * pred.shape[1])
    assert torch.allclose(fast, loss_train, rtol=1e-4)


def test_scenarios_share_one_context(batch: dict) -> None:
    model = _model("kgvsf")
    with torch.no_grad():
        state = model.encode_context(batch)
        future = batch["drivers"][:, :30]
        dry = future.clone()
        dry[..., 0] = 0.0
        both = model.forecast(KGVSF.repeat_state(state, 2), torch.cat([future, dry]), [10, 30])
        b = future.shape[0]
        assert torch.allclose(both[:b], model.forecast(state, future, [10, 30]), atol=1e-5)
        assert torch.allclose(both[b:], model.forecast(state, dry, [10, 30]), atol=1e-5)


def test_clouded_pixels_are_ignored(batch: dict) -> None:
    """Values under the cloud mask never reach the model or the loss."""
    model = _model("kgvsf")
    noisy = {k: v.clone() for k, v in batch.items()}
    noisy["images"] = torch.where(noisy["mask"].unsqueeze(2), noisy["images"], 99.0)
    noisy["target"] = torch.where(noisy["target_mask"].unsqueeze(1), noisy["target"], 99.0)
    with torch.no_grad():
        assert torch.equal(model.embed(batch), model.embed(noisy))
        assert torch.equal(model.loss(batch, phase=2)[0], model.loss(noisy, phase=2)[0])


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_learns(batch: dict, objective: str) -> None:
    model = _model(objective).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for phase, _ in phase_schedule(TrainConfig(objective=objective)):
        losses = []
        for _ in range(30):
            gen.manual_seed(0)  # the same masks each step: the loss must fall
            loss, logs = model.loss(batch, objective, phase, generator=gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[-1] < 0.8 * losses[0], (objective, phase, losses[0], losses[-1])
        assert "loss" in logs


def test_same_parameter_budget_for_every_objective() -> None:
    counts = {o: sum(p.numel() for p in KGVSF(CFG, o).parameters()) for o in OBJECTIVES}
    assert len(set(counts.values())) == 1
