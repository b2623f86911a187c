"""Pretraining: loaders, checkpoints (no pickle, atomic, checked), the loop (resume, determinism).

Most tests use a small stand-in network with the KGVSF interface (``loss(batch, objective,
phase)``), so the loop is tested independently of the architecture; one test trains the real
KG-VSF tiny preset.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import kgvsf_explore.models as models
from kgvsf_explore.cube import Cube
from kgvsf_explore.errors import KGVSFError
from kgvsf_explore.models.config import ModelConfig, TrainConfig, config_to_json, preset
from kgvsf_explore.training import (
    CheckpointError,
    TrainResult,
    load_checkpoint,
    load_optimizer_state,
    make_loaders,
    normalisation_stats,
    pretrain,
    save_checkpoint,
    tensors_sha256,
    weights_sha256,
    with_stats,
)
from kgvsf_explore.training import checkpoint as ckpt_mod
from kgvsf_explore.training import loop as loop_mod
from kgvsf_explore.training.data import split_years
from kgvsf_explore.world import make_world

TINY = preset("tiny")


# ------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def cube() -> Cube:
    """A 32x32 sample world over 2021-2022 (2022 is validation), loaded in memory."""
    ds, _ = make_world(seed=3, size="tiny")
    return Cube(ds).compute()


@pytest.fixture(autouse=True)
def no_pickle(monkeypatch):
    """Checkpoints must never be unpickled: any torch.load call fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load called: checkpoints must not be unpickled")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(torch.serialization, "load", forbidden)


class Interrupt(Exception):
    """Raised by the stand-in to simulate a killed run."""


class StandIn(nn.Module):
    """Same interface as ``KGVSF``: forecasts the band means of the target from the context.

    Uses the global torch RNG (a random dropout of context dates), so resuming must restore it.
    ``StandIn.interrupt_at`` raises :class:`Interrupt` on that training call.
    """

    interrupt_at: int | None = None
    calls = 0

    def __init__(self, cfg: ModelConfig, objective: str = "kgvsf") -> None:
        super().__init__()
        self.cfg = cfg
        self.objective = objective
        c = len(cfg.bands)
        self.encode = nn.Linear(c, 16)
        self.head = nn.ModuleDict({"1": nn.Linear(16, c), "2": nn.Linear(16 + 1, c)})
        self.register_buffer("band_mean", torch.tensor(cfg.band_mean), persistent=False)
        self.register_buffer("band_std", torch.tensor(cfg.band_std), persistent=False)

    def loss(self, batch, objective=None, phase=2, generator=None):
        if self.training:
            StandIn.calls += 1
            if StandIn.interrupt_at is not None and StandIn.calls >= StandIn.interrupt_at:
                raise Interrupt(f"interrupted at call {StandIn.calls}")
        norm = (batch["images"] - self.band_mean[:, None, None]) / self.band_std[:, None, None]
        m = batch["mask"].unsqueeze(2).float()  # (B, L, 1, H, W)
        keep = (torch.rand(m.shape[:2], device=m.device) > 0.2).float()[..., None, None, None]
        w = m * keep + 1e-6
        x = (norm * w).sum((1, 3, 4)) / w.sum((1, 3, 4))  # (B, C)
        h = torch.tanh(self.encode(x))
        if phase == 1:
            return ((self.head["1"](h) - x) ** 2).mean(), {}
        tnorm = (batch["target"] - self.band_mean[:, None, None]) / self.band_std[:, None, None]
        tm = batch["target_mask"].unsqueeze(1).float() + 1e-6
        y = (tnorm * tm).sum((2, 3)) / tm.sum((2, 3))
        k = batch["k"].float().unsqueeze(1) / 60.0
        loss = ((self.head["2"](torch.cat([h, k], 1)) - y) ** 2).mean()
        return loss, {"loss": float(loss.detach())}


@pytest.fixture
def stand_in(monkeypatch):
    """Replace ``kgvsf_explore.models.KGVSF`` by :class:`StandIn` for one test."""
    monkeypatch.setattr(models, "KGVSF", StandIn)
    StandIn.calls, StandIn.interrupt_at = 0, None
    yield StandIn
    StandIn.calls, StandIn.interrupt_at = 0, None


def small_train(**kw) -> TrainConfig:
    opts = dict(phase1_steps=10, phase2_steps=10, batch_size=2, eval_every=5, val_batches=2,
                lr=1e-2)
    opts.update(kw)
    return TrainConfig(**opts)


def trained_state(stand_in_cls) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A stand-in with non-trivial weights and AdamW state."""
    torch.manual_seed(0)
    model = stand_in_cls(TINY.model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = sum((p**2).sum() for p in model.parameters())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt


# ------------------------------------------------------------------------------------------
# data


def test_loaders_split_by_year_and_are_seekable(cube):
    train_cfg = small_train(val_batches=3)
    stream, val = make_loaders([cube, cube], TINY.model, train_cfg)
    assert len(val) == 3
    for b in val:  # validation: 2022 only (context, drivers and target)
        days = b["t"] + b["k"]
        years = (days.numpy().astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
        assert (years == 2022).all()
        assert (b["t"].numpy().astype("datetime64[D]") >= np.datetime64("2022-01-01")).all()
    first = [next(stream) for _ in range(4)]
    for b in first:  # training: 2021 only
        end = (b["t"] + b["k"]).numpy().astype("datetime64[D]")
        assert (end <= np.datetime64("2021-12-31")).all()
        assert b["images"].shape[:2] == (2, TINY.model.context)
    # seekable and reproducible: batch n is the same whether reached in order or directly
    again, val2 = make_loaders([cube, cube], TINY.model, train_cfg)
    again.position = 3
    torch.testing.assert_close(next(again)["images"], first[3]["images"], rtol=0, atol=0)
    torch.testing.assert_close(val2[0]["target"], val[0]["target"], rtol=0, atol=0)
    # round robin over the two cubes: different seeds give different batches
    assert not torch.equal(first[0]["row"] * 100 + first[0]["col"] + first[0]["t"],
                           first[1]["row"] * 100 + first[1]["col"] + first[1]["t"])
    # another training seed: other training batches, the same validation batches
    other, val3 = make_loaders([cube, cube], TINY.model, replace(train_cfg, seed=5))
    assert not torch.equal(next(other)["images"], first[0]["images"])
    torch.testing.assert_close(val3[1]["images"], val[1]["images"], rtol=0, atol=0)
    # ranks draw different streams and share the validation batches
    r0, v0 = make_loaders(cube, TINY.model, train_cfg, rank=0, world_size=2)
    r1, v1 = make_loaders(cube, TINY.model, train_cfg, rank=1, world_size=2)
    assert len(v0) == 2 and len(v1) == 1
    assert not torch.equal(next(r0)["images"], next(r1)["images"])


def test_loaders_reject_bad_years(cube):
    with pytest.raises(ValueError, match="val_year=2019"):
        make_loaders(cube, TINY.model, small_train(val_year=2019))
    # one calendar year: the last 30 % of its image period is held out, no sample crosses
    one_year = cube.sel_time("2022-01-01", "2022-12-31")
    (train,), val, year = split_years(one_year)
    assert year == 2022 and train.times[-1] < val.times[0]
    stream, val_batches = make_loaders(one_year, TINY.model, small_train())
    cut = np.datetime64(val.times[0].date(), "D")
    assert (next(stream)["t"].numpy().astype("datetime64[D]") < cut).all()
    assert all((b["t"].numpy().astype("datetime64[D]") >= cut).all() for b in val_batches)
    # validation in the first year: training comes from the later one
    stream, _ = make_loaders(cube, TINY.model, small_train(val_year=2021))
    assert (next(stream)["t"].numpy().astype("datetime64[D]") >= np.datetime64("2022")).all()


def test_normalisation_stats(cube):
    stats = normalisation_stats(cube)
    train = cube.sel_time(None, "2021-12-31")
    b04 = train.ds["B04"].where(train.valid).values
    assert stats["mean"]["B04"] == pytest.approx(np.nanmean(b04), rel=1e-6)
    assert stats["std"]["B04"] == pytest.approx(np.nanstd(b04), rel=1e-6)
    assert stats["mean"]["tmax"] == pytest.approx(float(train.ds["tmax"].mean()), rel=1e-6)
    pooled = normalisation_stats([cube, cube])
    assert pooled["mean"]["B04"] == pytest.approx(stats["mean"]["B04"], rel=1e-9)
    assert pooled["std"]["tmax"] == pytest.approx(stats["std"]["tmax"], rel=1e-9)
    cfg = with_stats(TINY.model, stats)
    assert cfg.band_mean == tuple(stats["mean"][b] for b in cfg.bands)
    assert cfg.driver_std == tuple(stats["std"][d] for d in cfg.drivers)
    assert all(s > 0 for s in cfg.band_std + cfg.driver_std)
    json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in stats.items()})


# ------------------------------------------------------------------------------------------
# checkpoints


def test_checkpoint_round_trip_is_bit_exact(tmp_path, stand_in):
    model, opt = trained_state(stand_in)
    state = {"step": 3, "phase": 1, "best_val": 0.5, "history": [{"step": 3, "val_loss": 0.5}],
             "rng": torch.get_rng_state().tolist()}
    save_checkpoint(tmp_path / "ck", model, TINY.model, TINY.train, state, opt)
    names = sorted(os.listdir(tmp_path / "ck"))
    assert names == ["config.json", "model.safetensors", "optimizer.json",
                     "optimizer.safetensors", "state.json"]
    loaded, mcfg, tcfg, st = load_checkpoint(tmp_path / "ck")
    assert (mcfg, tcfg, st) == (TINY.model, TINY.train, state)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v) and loaded.state_dict()[k].dtype == v.dtype
    opt2 = torch.optim.AdamW(loaded.parameters(), lr=1.0)
    load_optimizer_state(tmp_path / "ck", opt2)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == [dict(g, betas=tuple(g["betas"])) for g in b["param_groups"]]
    for pid, s in a["state"].items():
        for key, value in s.items():
            assert torch.equal(b["state"][pid][key], value), key
    assert weights_sha256(tmp_path / "ck") == tensors_sha256(model.state_dict())
    assert torch.equal(torch.tensor(st["rng"], dtype=torch.uint8), torch.tensor(state["rng"],
                       dtype=torch.uint8))


def test_missing_truncated_and_corrupted_files(tmp_path, stand_in):
    model, _ = trained_state(stand_in)
    folder = tmp_path / "ck"
    save_checkpoint(folder, model, TINY.model, TINY.train, {"step": 1})
    weights = folder / "model.safetensors"
    good = weights.read_bytes()

    weights.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(CheckpointError, match="model.safetensors.*truncated or corrupted"):
        load_checkpoint(folder)
    weights.write_bytes(b"\xff" * 8 + good[8:])  # corrupted header
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(folder)
    bad = bytearray(good)  # corrupted tensor bytes: a valid file, wrong numbers
    bad[-20:-10] = bytes(b ^ 0x5A for b in bad[-20:-10])
    weights.write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted.*sha256"):
        load_checkpoint(folder)
    weights.write_bytes(good)
    load_checkpoint(folder)

    (folder / "state.json").write_text('{"step": 1, "checkpoi')
    with pytest.raises(CheckpointError, match="state.json is corrupted"):
        load_checkpoint(folder)
    os.remove(folder / "config.json")
    with pytest.raises(CheckpointError, match="missing config.json") as err:
        load_checkpoint(folder)
    assert isinstance(err.value, KGVSFError)


def test_config_that_does_not_match_the_weights(tmp_path, stand_in):
    model, _ = trained_state(stand_in)
    folder = tmp_path / "ck"
    save_checkpoint(folder, model, TINY.model, TINY.train, {"step": 1})
    # fewer bands: every layer touching the bands changes shape
    fewer = replace(TINY.model, bands=TINY.model.bands[:5], band_mean=TINY.model.band_mean[:5],
                    band_std=TINY.model.band_std[:5])
    (folder / "config.json").write_text(config_to_json(fewer, TINY.train))
    with pytest.raises(CheckpointError, match=r"shape mismatches: encode\.weight") as err:
        load_checkpoint(folder)
    assert "head.1.bias" in str(err.value)
    # missing and unexpected keys
    torch.manual_seed(0)
    other = stand_in(TINY.model)
    other.head = nn.ModuleDict({"1": other.head["1"], "3": nn.Linear(16, 7)})
    save_checkpoint(folder, other, TINY.model, TINY.train, {"step": 1})
    with pytest.raises(CheckpointError, match=r"missing keys.*head\.2\.weight") as err:
        load_checkpoint(folder)
    assert "unexpected keys" in str(err.value) and "head.3.weight" in str(err.value)
    # same shapes, other normalisation statistics: caught by the config hash in the weights
    save_checkpoint(folder, model, TINY.model, TINY.train, {"step": 1})
    shifted = replace(TINY.model, band_mean=tuple(m + 0.1 for m in TINY.model.band_mean))
    (folder / "config.json").write_text(config_to_json(shifted, TINY.train))
    with pytest.raises(CheckpointError, match="config_sha256"):
        load_checkpoint(folder)
    # unsupported config version
    data = json.loads(config_to_json(TINY.model, TINY.train))
    data["kgvsf_config_version"] = 99
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="unsupported config version 99"):
        load_checkpoint(folder)


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, stand_in, monkeypatch):
    import safetensors.torch as st

    model, opt = trained_state(stand_in)
    folder = tmp_path / "ck"
    save_checkpoint(folder, model, TINY.model, TINY.train, {"step": 1}, opt)
    before = weights_sha256(folder)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)

    real, calls = st.save_file, []

    def failing(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:  # the optimiser file, after the new weights were written
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(st, "save_file", failing)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(folder, model, TINY.model, TINY.train, {"step": 2}, opt)
    monkeypatch.setattr(st, "save_file", real)
    _, _, _, state = load_checkpoint(folder)
    assert state == {"step": 1} and weights_sha256(folder) == before
    assert not [p for p in os.listdir(folder) if p.startswith(".")]  # nothing left behind

    # interrupted after the commit marker, while moving files: the next load rolls forward
    roll_forward = ckpt_mod._roll_forward
    monkeypatch.setattr(ckpt_mod, "_roll_forward", lambda folder, journal: None)
    save_checkpoint(folder, model, TINY.model, TINY.train, {"step": 3})
    monkeypatch.setattr(ckpt_mod, "_roll_forward", roll_forward)
    assert [p for p in os.listdir(folder) if p.startswith(".tmp-")]
    _, _, _, state = load_checkpoint(folder)
    assert state == {"step": 3} and weights_sha256(folder) == tensors_sha256(model.state_dict())
    assert not (folder / "optimizer.safetensors").exists()  # stale files of the old one


# ------------------------------------------------------------------------------------------
# the loop


def val_loss(net: nn.Module, val: list, objective: str, phase: int) -> float:
    """Mean loss of ``net`` over validation batches (fixed masks)."""
    net.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        return float(np.mean([float(net.loss(b, objective, phase)[0]) for b in val]))


def test_loss_falls_with_the_stand_in(cube, tmp_path, stand_in):
    cfg = small_train(phase2_steps=20)
    result = pretrain(cube, tmp_path / "run", TINY.model, cfg, progress=False)
    model, mcfg, tcfg, state = load_checkpoint(tmp_path / "run")
    _, val = make_loaders(cube, mcfg, tcfg)
    torch.manual_seed(cfg.seed)
    before, after = val_loss(stand_in(mcfg), val, "kgvsf", 2), val_loss(model, val, "kgvsf", 2)
    assert after < 0.7 * before, (before, after)
    assert isinstance(result, TrainResult)
    phase2 = [h for h in result.history if h["phase"] == 2]
    assert result.steps == 30 and [p["phase"] for p in result.phases] == [1, 2]
    assert result.best_val == min(h["val_loss"] for h in phase2)
    out = tmp_path / "run"
    for name in ("model.safetensors", "config.json", "state.json", "history.csv"):
        assert (out / name).is_file()
    assert (out / "history.csv").read_text().splitlines()[0] == "step,phase,train_loss,val_loss,lr"
    # the final model is the best validation weights, the same as out/best
    assert weights_sha256(out) == weights_sha256(out / "best")
    assert state["best_val"] == result.best_val and state["done"]
    assert mcfg.band_mean != TINY.model.band_mean  # fitted to the cube
    assert mcfg == result.model_cfg


def test_determinism_resume_and_early_stopping(cube, tmp_path, stand_in):
    cfg = small_train()
    a = pretrain(cube, tmp_path / "a", TINY.model, cfg, progress=False)
    b = pretrain(cube, tmp_path / "b", TINY.model, cfg, progress=False)
    assert weights_sha256(tmp_path / "a") == weights_sha256(tmp_path / "b")
    assert a.history == b.history

    # killed at the start of phase 2 (last checkpoint: the phase change at step 10) and in the
    # middle of phase 2 (last checkpoint: step 15, with the optimiser), then resumed
    for call, saved_at in ((13, (10, 2, 0)), (18, (15, 2, 5))):
        folder = tmp_path / f"c{call}"
        stand_in.calls, stand_in.interrupt_at = 0, call
        with pytest.raises(Interrupt):
            pretrain(cube, folder, TINY.model, cfg, progress=False)
        saved = json.loads((folder / "last" / "state.json").read_text())
        assert (saved["step"], saved["phase"], saved["pstep"]) == saved_at
        assert (folder / "last" / "optimizer.safetensors").is_file() == (saved_at[2] > 0)
        stand_in.interrupt_at = None
        c = pretrain(cube, folder, TINY.model, cfg, resume=True, progress=False)
        assert weights_sha256(folder) == weights_sha256(tmp_path / "a")
        assert c.history == a.history and c.steps == a.steps
    # resuming a finished run trains no more
    stand_in.calls = 0
    again = pretrain(cube, folder, TINY.model, cfg, resume=True, progress=False)
    assert stand_in.calls == 0 and again.history == a.history
    assert weights_sha256(folder) == weights_sha256(tmp_path / "a")

    # resuming with another configuration is refused
    with pytest.raises(CheckpointError, match="lr: 0.01 != 0.02"):
        pretrain(cube, folder, TINY.model, replace(cfg, lr=0.02), resume=True,
                 progress=False)

    # early stopping: with lr 0 the validation loss never improves after the first validation
    frozen = small_train(lr=0.0, patience=1, eval_every=2, objective="sm-vsf")
    d = pretrain(cube, tmp_path / "d", TINY.model, frozen, progress=False)
    assert d.phases == [{"phase": 2, "steps": 4, "best_val": d.history[0]["val_loss"],
                         "best_step": 2, "stopped_early": True}]
    assert d.steps == 4


def test_real_model_loss_falls(cube, tmp_path):
    """The real KG-VSF tiny preset: after pretraining, the forecast loss on the validation
    batches is lower than that of the untrained network."""
    result = pretrain(cube, tmp_path / "kg", TINY.model, TINY.train, progress=False)
    model, mcfg, tcfg, _ = load_checkpoint(tmp_path / "kg")
    assert tcfg == TINY.train and isinstance(model, models.KGVSF)
    _, val = make_loaders(cube, mcfg, tcfg)
    torch.manual_seed(tcfg.seed)
    untrained = models.KGVSF(mcfg, objective=tcfg.objective)
    before, after = val_loss(untrained, val, "kgvsf", 2), val_loss(model, val, "kgvsf", 2)
    assert after < 0.9 * before, (before, after)
    assert result.best_val == pytest.approx(after, rel=1e-5)
    assert loop_mod.lr_at(0, 100, 1.0) < loop_mod.lr_at(5, 100, 1.0) == 1.0
