"""Seed ensembles: one weights folder of several checkpoints that forecasts as their mean."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kgvsf_explore import Forecaster
from kgvsf_explore.cli import main
from kgvsf_explore.cube import Cube
from kgvsf_explore.inference import forecast_region
from kgvsf_explore.models import KGVSF, PRESETS, TrainConfig
from kgvsf_explore.models.ensemble import EnsembleState, KGVSFEnsemble
from kgvsf_explore.scenario import Scenario
from kgvsf_explore.training import save_checkpoint
from kgvsf_explore.training.checkpoint import CheckpointError
from kgvsf_explore.weights import load_model, make_ensemble
from kgvsf_explore.world import make_world

CFG = replace(PRESETS["tiny"].model, pixel_residual=True, pixel_context=True)


def _member(folder: Path, seed: int, cfg=CFG) -> Path:
    torch.manual_seed(seed)
    model = KGVSF(cfg, "kgvsf").eval()
    with torch.no_grad():  # an untrained residual head forecasts persistence for any seed
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_checkpoint(folder, model, cfg,
                    TrainConfig(objective="kgvsf", seed=seed), {"step": 0})
    return folder


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("members")
    return [_member(root / f"s{s}", s) for s in (0, 1, 2)]


@pytest.fixture(scope="module")
def cube() -> Cube:
    return Cube(make_world(seed=21, size="tiny")[0])


def test_ensemble_forecasts_the_members_mean(members: list[Path], cube: Cube,
                                             tmp_path: Path) -> None:
    out = make_ensemble(members, tmp_path / "ens")
    info = json.loads((out / "ensemble.json").read_text())
    assert info["members"] == ["members/0", "members/1", "members/2"]
    assert (out / "members" / "1" / "model.safetensors").is_file()
    ens, sha = load_model(out)
    assert isinstance(ens, KGVSFEnsemble) and len(ens) == 3 and len(sha) == 64
    singles = [load_model(m)[0] for m in members]
    assert sha != load_model(members[0])[1]
    dry = Scenario.parse("prcp =0", "tmax +4", name="hot-dry")
    got = forecast_region(ens, cube, "2022-07-03", [5, 30], [None, dry], progress=False)
    each = [forecast_region(m, cube, "2022-07-03", [5, 30], [None, dry], progress=False)
            for m in singles]
    want = np.mean([e.reflectance.values for e in each], axis=0)
    np.testing.assert_allclose(got.reflectance.values, want, atol=1e-5)
    # the members disagree, so the mean is not any one of them
    assert not np.allclose(each[0].reflectance.values, each[1].reflectance.values, atol=1e-3)
    # embeddings are the members' side by side
    fc = Forecaster.from_pretrained(out, device="cpu")
    emb = fc.embed(cube, None, "2022-07-03", progress=False)
    first = Forecaster(singles[0]).embed(cube, None, "2022-07-03", progress=False)
    assert emb.sizes["feature"] == 3 * first.sizes["feature"] == ens.embed_dim
    np.testing.assert_allclose(emb.isel(feature=slice(0, first.sizes["feature"])).values,
                               first.values, atol=1e-5)


def test_ensemble_state_splits_and_joins_like_one_state(members: list[Path],
                                                        forecast_batch) -> None:
    _, batch = forecast_batch
    ens = KGVSFEnsemble([load_model(m)[0] for m in members[:2]])
    with torch.no_grad():
        state = ens.encode_context(batch)
        future = batch["drivers"][:, -20:].float()
        whole = ens.forecast(state, future, [3, 20])
        parts = EnsembleState.cat([state.take([0, 1]), state.take([2, 3])])
        np.testing.assert_allclose(ens.forecast(parts, future, [3, 20]), whole, atol=1e-6)
        twice = ens.forecast(KGVSFEnsemble.repeat_state(state.select(1), 2),
                             future[[1, 1]], [3])
        np.testing.assert_allclose(twice[0], whole[1, :1], atol=1e-6)


def test_ensemble_refusals(members: list[Path], tmp_path: Path) -> None:
    other = _member(tmp_path / "other", 0, replace(CFG, dim=CFG.dim * 2))
    with pytest.raises(CheckpointError, match="'dim'.*only the seed may differ"):
        make_ensemble([members[0], other], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(CheckpointError, match="two or more"):
        make_ensemble(members[:1], tmp_path / "one")
    out = make_ensemble(members[:2], tmp_path / "ens")
    for bad, message in ((["members/0", "../other"], "outside"),
                         (["members/0", "members/9"], "missing"),
                         ("members/0", "2 to 32")):
        (out / "ensemble.json").write_text(json.dumps({"kgvsf_ensemble_version": 1,
                                                       "members": bad}))
        with pytest.raises(CheckpointError, match=message):
            load_model(out)
    (out / "ensemble.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(out)


@pytest.mark.filterwarnings("ignore:the held-out skill rests on")
def test_cli_make_ensemble_then_forecast(members: list[Path], tmp_path: Path) -> None:
    cube_dir = tmp_path / "cube.zarr"
    assert main(["make-sample", "--seed", "21", "--size", "tiny", "--out", str(cube_dir),
                 "--quiet"]) == 0
    ens = tmp_path / "ens"
    assert main(["make-ensemble", "--members", f"{members[0]},{members[1]}",
                 "--out", str(ens)]) == 0
    assert main(["forecast", "--cube", str(cube_dir), "--weights", str(ens), "--start",
                 "2022-07-03", "--horizons", "5", "--out", str(tmp_path / "f.zarr")]) == 0
    assert main(["make-ensemble", "--members", str(members[0]), "--out",
                 str(tmp_path / "x")]) == 2
    # finetuning adapts every member with the same settings and joins them again
    from kgvsf_explore.ingest.finetune import finetune

    result = finetune(str(cube_dir), tmp_path / "ft", weights=ens, steps=2, eval_every=1,
                      val_batches=1, batch_size=2, progress=False, check_cases=4)
    assert result.out_dir == tmp_path / "ft" and not (tmp_path / "ft.members").exists()
    adapted, sha = load_model(tmp_path / "ft")
    assert isinstance(adapted, KGVSFEnsemble) and len(adapted) == 2
    assert sha != load_model(ens)[1]
    record = json.loads((tmp_path / "ft" / "training_data.json").read_text())
    assert record["members"] == 2 and record["adapted_from"]["sha256"] == load_model(ens)[1]
    assert "held_out_skill" in record


def test_the_shipped_ensemble_loads_with_its_intervals() -> None:
    from kgvsf_explore.data import data_dir

    folder = data_dir() / "weights" / "kgvsf-small-pcwv8p-ens2"
    fc = Forecaster.from_pretrained(folder, device="cpu")
    assert isinstance(fc.model, KGVSFEnsemble) and len(fc.model) == 2
    assert repr(fc).endswith(", ensemble of 2)")
    fc.load_intervals(folder)  # calibrated for exactly these weights (checked by hash)
    assert fc.intervals is not None
    assert (folder / "MODEL_CARD.md").read_text().startswith(
        "# Model card: `kgvsf-small-pcwv8p-ens2`")
