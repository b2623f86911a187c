"""The experimental weather-window input of the forecast summary (``weather_windows``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from kgvsf_explore.models import KGVSF, ModelConfig
from kgvsf_explore.models.config import TrainConfig
from kgvsf_explore.models.kgvsf import window_means
from kgvsf_explore.training import load_checkpoint, save_checkpoint

CFG = ModelConfig(tile=16, dim=32, heads=2, depth=1, seq_depth=1, pixel_residual=True,
                  pixel_context=True, weather_windows=True)


def test_window_means_are_the_days_after_t_through_t_plus_k() -> None:
    d = torch.arange(2 * 10 * 3, dtype=torch.float32).reshape(2, 10, 3)
    t, k = torch.tensor([2, 0]), torch.tensor([3, 9])
    got = window_means(d, t, k)
    torch.testing.assert_close(got[0], d[0, 3:6].mean(0))
    torch.testing.assert_close(got[1], d[1, 1:10].mean(0))


def test_the_window_reaches_the_forecast_and_learns(forecast_batch) -> None:
    samples, b = forecast_batch
    torch.manual_seed(0)
    model = KGVSF(CFG).train()
    with torch.no_grad():  # past the zero start of the per-pixel path's output and FiLM
        torch.nn.init.normal_(model.pixel.out.weight, std=0.1)
        torch.nn.init.normal_(model.pixel.film.weight, std=0.1)
    loss, _ = model.loss(b, phase=2)
    loss.backward()
    assert model.forecaster.window.weight.grad.abs().sum() > 0
    # training and forecasting read the same window: same prediction from both paths
    with torch.no_grad():
        torch.nn.init.normal_(model.forecaster.window.weight, std=0.5)
        model.eval()
        state = model.encode_context(b)
        s = samples[0]
        fut = b["drivers"][0:1, s.t_index + 1:s.t_index + 1 + s.k]
        a = model.forecast(state.select(0), fut, [s.k])[0, 0]
        wet = fut.clone()
        wet[..., 0] *= 3  # more rain in the window moves the forecast through the window path
        c = model.forecast(state.select(0), wet, [s.k])[0, 0]
    assert not torch.allclose(a, c)


def test_a_windows_checkpoint_round_trips_and_old_configs_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = KGVSF(CFG)
    save_checkpoint(tmp_path / "ck", model, CFG, TrainConfig(objective="kgvsf"), {"step": 0})
    again, cfg, _, _ = load_checkpoint(tmp_path / "ck")
    assert cfg.weather_windows and again.forecaster.window is not None
    plain = replace(CFG, weather_windows=False)
    save_checkpoint(tmp_path / "old", KGVSF(plain), plain, TrainConfig(objective="kgvsf"),
                    {"step": 0})
    again, cfg, _, _ = load_checkpoint(tmp_path / "old")
    assert not cfg.weather_windows and again.forecaster.window is None
