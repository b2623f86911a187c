"""The experimental per-pixel residual path (``ModelConfig(pixel_residual=True)``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgvsf_explore.models import KGVSF, ModelConfig
from kgvsf_explore.models.config import TrainConfig
from kgvsf_explore.training import load_checkpoint, save_checkpoint
from kgvsf_explore.training.checkpoint import CheckpointError

CFG = ModelConfig(tile=16, dim=32, heads=2, depth=1, seq_depth=1, pixel_residual=True)
CTX = ModelConfig(tile=16, dim=32, heads=2, depth=1, seq_depth=1, pixel_residual=True,
                  pixel_context=True)


def _persistence(s) -> np.ndarray:
    out = np.full(s.images.shape[1:], np.nan, "float32")
    for img, ok in zip(s.images, s.mask):
        out = np.where(ok[None], img, out)
    return out


@pytest.mark.parametrize("cfg", [CFG, CTX], ids=["anchor", "context"])
@pytest.mark.parametrize("objective", ["kgvsf", "mm-vsf"])
def test_an_untrained_pixel_model_forecasts_persistence(forecast_batch, objective: str,
                                                        cfg: ModelConfig) -> None:
    samples, b = forecast_batch
    torch.manual_seed(0)
    model = KGVSF(cfg, objective).eval()
    state = model.encode_context(b)
    for i, s in enumerate(samples):
        fut = b["drivers"][i:i + 1, s.t_index + 1:s.t_index + 1 + s.k]
        with torch.no_grad():
            pred = model.forecast(state.select(i), fut, [s.k])[0, 0].numpy()
        persist = _persistence(s)
        seen = np.isfinite(persist).all(0)
        assert seen.any()
        np.testing.assert_allclose(pred[:, seen], persist[:, seen], atol=1e-5)


def test_the_residual_learns_from_the_forecast_loss(forecast_batch) -> None:
    _, b = forecast_batch
    torch.manual_seed(0)
    model = KGVSF(CFG).train()
    loss, _ = model.loss(b, phase=2)
    loss.backward()
    assert model.pixel.out.weight.grad.abs().sum() > 0


def test_the_default_model_has_no_pixel_path() -> None:
    model = KGVSF(ModelConfig(tile=16, dim=32, heads=2, depth=1, seq_depth=1))
    assert model.pixel is None
    assert not any(n.startswith("pixel.") for n, _ in model.named_parameters())


def test_a_pixel_checkpoint_round_trips_and_a_bad_flag_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = KGVSF(CFG)
    save_checkpoint(tmp_path / "ck", model, CFG, TrainConfig(objective="kgvsf"), {"step": 0})
    again, cfg, _, _ = load_checkpoint(tmp_path / "ck")
    assert cfg.pixel_residual and again.pixel is not None
    for (n, a), (_, c) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, c), n
    conf = json.loads((tmp_path / "ck" / "config.json").read_text())
    conf["model"]["pixel_residual"] = "yes"
    (tmp_path / "ck" / "config.json").write_text(json.dumps(conf))
    with pytest.raises(CheckpointError, match="pixel_residual"):
        load_checkpoint(tmp_path / "ck")


def test_the_context_series_holds_each_pixels_own_history(forecast_batch) -> None:
    samples, b = forecast_batch
    model = KGVSF(CTX).eval()
    images = model.norm_images(b["images"].float())
    valid = b["mask"].bool() & b["context_mask"].bool()[:, :, None, None]
    px = model._pixel_history(images, valid, b["image_offsets"])
    c, n = len(CTX.bands), CTX.context
    assert px.shape[1] == (c + 2) + n * (c + 2)
    series = px[:, c + 2:].reshape(px.shape[0], n, c + 2, 16, 16)
    last = b["images"].shape[1] - 1  # the newest context date is the last position
    ok = valid[:, last]
    torch.testing.assert_close(series[:, -1, :c][ok.unsqueeze(1).expand(-1, c, -1, -1)],
                               images[:, last][ok.unsqueeze(1).expand(-1, c, -1, -1)])
    assert torch.equal(series[:, -1, c] > 0, ok)
    # not clear -> zeros, so a cloud's values never reach the network
    assert (series[:, -1, :c][(~ok).unsqueeze(1).expand(-1, c, -1, -1)] == 0).all()


def test_pixel_context_needs_the_residual_path() -> None:
    with pytest.raises(ValueError, match="pixel_residual"):
        ModelConfig(pixel_context=True)


def test_the_ndvi_term_is_ours_and_off_by_default(forecast_batch) -> None:
    _, b = forecast_batch
    torch.manual_seed(0)
    plain = KGVSF(CFG).eval()
    torch.manual_seed(0)
    weighted = KGVSF(CFG, ndvi_weight=2.0).eval()
    with torch.no_grad():
        base, logs = plain.loss(b, phase=2)
        both, wlogs = weighted.loss(b, phase=2)
    assert "ndvi" not in logs
    assert wlogs["ndvi"] > 0
    np.testing.assert_allclose(float(both), float(base) + 2.0 * wlogs["ndvi"], rtol=1e-5)
    # a perfect NDVI forecast scores zero
    t = b["target"].float()
    m = b["target_mask"].bool()
    assert float(weighted._ndvi_loss(weighted.norm_images(torch.nan_to_num(t)), t, m,
                                     None)) < 1e-10
    with pytest.raises(ValueError, match="ndvi_weight"):
        TrainConfig(ndvi_weight=-1.0)


def test_a_context_checkpoint_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = KGVSF(CTX)
    save_checkpoint(tmp_path / "ck", model, CTX, TrainConfig(ndvi_weight=1.0), {"step": 0})
    again, cfg, tcfg, _ = load_checkpoint(tmp_path / "ck")
    assert cfg.pixel_context and tcfg.ndvi_weight == 1.0
    for (n, a), (_, c) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, c), n


def test_context_embeddings_carry_the_pixel_path_and_stay_causal(forecast_batch) -> None:
    _, b = forecast_batch
    torch.manual_seed(0)
    model = KGVSF(CTX).eval()
    with torch.no_grad():
        emb = model.embed(b)
    assert emb.shape[2] == model.embed_dim == 32 + 16 + model.pixel.inp.out_features
    later = {**b, "images": b["images"].clone()}
    later["images"][:, -1] += 0.3  # change only the newest image
    with torch.no_grad():
        again = model.embed(later)
    torch.testing.assert_close(again[:, :-1], emb[:, :-1])  # earlier dates never see it
    assert not torch.allclose(again[:, -1], emb[:, -1])
    assert KGVSF(CFG).embed_dim == 32 + 16  # only pixel_context adds features


@pytest.mark.parametrize("cfg", [CFG, CTX], ids=["anchor", "context"])
def test_the_cached_pixel_share_forecasts_the_same_and_follows_new_weights(forecast_batch,
                                                                          cfg) -> None:
    samples, b = forecast_batch
    torch.manual_seed(1)
    model = KGVSF(cfg, "kgvsf").eval()
    for layer in (model.pixel.out, model.pixel.film):  # trained-like: a non-zero correction
        torch.nn.init.normal_(layer.weight, std=0.3)
        torch.nn.init.normal_(layer.bias, std=0.1)
    with torch.no_grad():
        state = model.encode_context(b)
    s = samples[0]
    one = state.select(0)
    fut = b["drivers"][:1, s.t_index + 1:s.t_index + 1 + s.k]
    ks = sorted({1, max(1, s.k // 2), s.k})

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            cached = model.forecast(one, fut, ks)
        with torch.enable_grad():  # training never reads the cache
            plain = model.forecast(one, fut, ks).detach()
        return cached, plain

    cached, plain = both()
    assert one.pixel_static is not None
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-5)
    with torch.no_grad():  # an optimiser step changes the weights in place
        model.pixel.inp.weight.add_(0.05 * torch.randn_like(model.pixel.inp.weight))
    cached2, plain2 = both()
    assert (plain2 - plain).abs().max() > 1e-3
    torch.testing.assert_close(cached2, plain2, rtol=0, atol=1e-5)
    with torch.no_grad():  # the bias alone, too
        model.pixel.inp.bias.add_(0.5)
    cached3, plain3 = both()
    assert (plain3 - plain2).abs().max() > 1e-3
    torch.testing.assert_close(cached3, plain3, rtol=0, atol=1e-5)
