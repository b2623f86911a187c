"""The paired-variant loss (our extension): a world and its weather variant read side by side."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kgvsf_explore.cli import main
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.models import KGVSF, PRESETS
from kgvsf_explore.models.config import TrainConfig
from kgvsf_explore.training.data import make_loaders, variant_pairs
from kgvsf_explore.world import SIZES, make_world
from kgvsf_explore.world.variants import random_weather_scenario

TINY = PRESETS["tiny"]
CFG = replace(TINY.model, pixel_residual=True, pixel_context=True)


@pytest.fixture(scope="module")
def cubes() -> list[Cube]:
    rng = np.random.default_rng([31, 7919])
    scen = random_weather_scenario(rng, SIZES["tiny"][1])
    world = Cube(make_world(seed=31, size="tiny")[0].load())
    variant = Cube(make_world(seed=31, size="tiny", scenario=scen)[0].load())
    other = Cube(make_world(seed=32, size="tiny")[0].load())
    return [world, other, variant]


@pytest.fixture(scope="module")
def paired_batch(cubes: list[Cube]) -> dict:
    train = replace(TINY.train, pair_weight=1.0, batch_size=6)
    stream, _ = make_loaders(cubes, CFG, train)
    batches = [stream.batch(n) for n in range(len(stream.sources))]
    return next(b for b in batches if "pair_of" in b)


def test_variants_pair_with_their_world(cubes: list[Cube]) -> None:
    assert variant_pairs(cubes) == [(0, 2)]
    assert variant_pairs(cubes[:2]) == []


def test_a_paired_batch_reads_the_same_picks_from_both(paired_batch: dict) -> None:
    b = paired_batch
    n = len(b["k"]) // 2
    assert n == 3
    assert b["pair_of"].tolist() == [3, 4, 5, 0, 1, 2]
    for key in ("row", "col", "k", "t_index", "image_offsets"):
        assert torch.equal(b[key][:n], b[key][n:]), key
    # same land, other weather: every pair differs in its weather or in the land's state
    # (a change before the context leaves its mark), the picks do not
    for i in range(n):
        assert (not torch.equal(b["drivers"][i], b["drivers"][i + n])
                or not torch.equal(b["images"][i], b["images"][i + n])), i


def test_paired_batches_only_when_asked(cubes: list[Cube]) -> None:
    stream, _ = make_loaders(cubes, CFG, TINY.train)
    assert len(stream.sources) == 3
    assert all("pair_of" not in stream.batch(n) for n in range(3))
    with pytest.raises(ValueError, match="weather variants"):
        make_loaders(cubes[:2], CFG, replace(TINY.train, pair_weight=1.0))


def test_the_pair_term_is_ours_off_by_default_and_learns(paired_batch: dict) -> None:
    b = paired_batch
    torch.manual_seed(0)
    plain = KGVSF(CFG)
    torch.manual_seed(0)
    paired = KGVSF(CFG, pair_weight=2.0)
    base, logs = plain.loss(b, phase=2)
    both, plogs = paired.loss(b, phase=2)
    assert "pair" not in logs and plogs["pair"] > 0
    np.testing.assert_allclose(float(both.detach()), float(base.detach()) + 2.0 * plogs["pair"],
                               rtol=1e-5)
    both.backward()
    grads = [p.grad for p in paired.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    # a forecast whose change equals the observed change scores zero on the term
    t = b["target"].float()
    m = b["target_mask"].bool()
    perfect = paired.norm_images(torch.nan_to_num(t))
    loss = paired._pair_loss(perfect, paired.norm_images(t), t, m, b["pair_of"], None)
    assert float(loss) < 1e-8
    with pytest.raises(ValueError, match="pair_weight"):
        TrainConfig(pair_weight=-1.0)


def test_cli_pretrain_with_pairs(tmp_path: Path) -> None:
    out = tmp_path / "w"
    assert main(["pretrain", "--preset", "tiny", "--worlds", "13", "--world-size", "tiny",
                 "--weather-variants", "1", "--pair-weight", "1", "--pixel-context",
                 "--steps", "6", "--out", str(out), "--quiet"]) == 0
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["pair_weight"] == 1.0
    data = json.loads((out / "training_data.json").read_text())
    assert "paired-variant weight 1" in data["description"]
    assert (out / "model.safetensors").is_file()
