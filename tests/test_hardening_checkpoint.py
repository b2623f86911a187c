"""A hostile or damaged checkpoint fails fast and clearly, before any model memory is allocated.

Before the hardening ``load_checkpoint`` built the model from ``config.json`` first: ``dim``
10^7 allocated gigabytes, ``depth`` 10^6 ran for minutes, ``tile`` 10^5, ``weather_hidden`` 10^8
and ``dim`` -64 ended in tracebacks, ``"dim": "64"`` said "not all arguments converted during
string formatting", and a full disk during a save was a bare ``SafetensorError``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors
import safetensors.torch as st
import torch

from kgvsf_explore.errors import KGVSFError
from kgvsf_explore.models import preset
from kgvsf_explore.training import checkpoint as ckpt
from kgvsf_explore.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

TINY = preset("tiny")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ck") / "tiny"
    save_checkpoint(folder, ckpt.build_model(TINY.model, TINY.train), TINY.model, TINY.train,
                    {"step": 1})
    return folder


@pytest.fixture
def copy(saved: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ck"
    out.mkdir()
    for f in saved.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    return out


@pytest.fixture
def built_on(monkeypatch) -> list[str]:
    """The device of every model ``load_checkpoint`` builds."""
    devices: list[str] = []
    real = ckpt.build_model

    def recording(*args, **kwargs):
        devices.append(str(torch.empty(0).device))
        return real(*args, **kwargs)

    monkeypatch.setattr(ckpt, "build_model", recording)
    return devices


def _set(folder: Path, **model) -> None:
    path = folder / "config.json"
    data = json.loads(path.read_text())
    data["model"].update(model)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("key, value, words", [
    ("dim", 10**7, "model.dim = 10000000 is outside 1..4096"),
    ("depth", 10**6, "model.depth = 1000000 is outside 1..64"),
    ("tile", 10**5, "model.tile = 100000 is outside"),
    ("weather_hidden", 10**8, "model.weather_hidden = 100000000 is outside"),
    ("dim", -64, "model.dim = -64 is outside"),
    ("dim", "64", "model.dim must be an integer, got str '64'; write 64 without quotes"),
    ("heads", 2.5, "model.heads must be an integer, got float"),
    ("context", True, "model.context must be an integer, got bool"),
    ("dropout", "x", "model.dropout must be a number"),
    ("bands", "B02", "model.bands must be a list"),
    ("band_mean", [float("nan")] * 7, "model.band_mean must be a list of finite numbers"),
])
def test_bad_sizes_and_types_are_refused_before_building(copy, built_on, key, value,
                                                         words) -> None:
    _set(copy, **{key: value})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(copy)
    assert words in str(err.value) and "config.json" in str(err.value)
    assert isinstance(err.value, KGVSFError)
    assert built_on == []  # nothing was built, not even on the meta device


def test_sizes_within_bounds_that_do_not_fit_the_weights_allocate_nothing(copy,
                                                                           built_on) -> None:
    _set(copy, dim=4096, depth=64, heads=64)  # a 13-billion-parameter model if allocated
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_checkpoint(copy)
    assert built_on == ["meta"]  # compared with the safetensors header on the meta device


def test_a_good_checkpoint_still_loads_and_is_built_once_for_real(copy, built_on) -> None:
    model, cfg, _, state = load_checkpoint(copy)
    assert cfg == TINY.model and state == {"step": 1}
    assert built_on == ["meta", "cpu"]
    assert next(model.parameters()).device.type == "cpu"


def test_a_full_disk_during_a_save_is_a_clear_error_and_keeps_the_checkpoint(
        copy, monkeypatch) -> None:
    before = {f.name: f.read_bytes() for f in copy.iterdir()}

    def full(*args, **kwargs):
        raise safetensors.SafetensorError(
            "Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
            'message: "No space left on device" })')

    monkeypatch.setattr(st, "save_file", full)
    model = ckpt.build_model(TINY.model, TINY.train)
    with pytest.raises(CheckpointError, match="disk full.*intact"):
        save_checkpoint(copy, model, TINY.model, TINY.train, {"step": 2})
    assert {f.name: f.read_bytes() for f in copy.iterdir()} == before
    monkeypatch.undo()
    assert load_checkpoint(copy)[3] == {"step": 1}


def test_a_config_that_is_not_an_object_or_nested_too_deep(copy) -> None:
    (copy / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="config.json"):
        load_checkpoint(copy)
    (copy / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="expected a JSON object"):
        load_checkpoint(copy)
