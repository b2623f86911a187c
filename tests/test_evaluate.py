"""``kgvsf evaluate``: the pipeline runs, resumes from its cells, and writes a well-formed
table; the table and counterfactual metrics on hand-made inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kgvsf_explore.cli import main
from kgvsf_explore.evaluation.counterfactual_check import change_metrics, scenarios_at
from kgvsf_explore.evaluation.runner import EvalConfig, cell_key, load_cells
from kgvsf_explore.evaluation.table import aggregate, claim_check


def test_change_metrics_on_hand_made_maps():
    truth = np.array([[0.1, -0.2], [0.05, -0.01]])
    pixels = np.ones((2, 2), bool)
    same = change_metrics(truth, truth, pixels)
    assert same["correlation"] == pytest.approx(1.0) and same["rmse"] == 0.0
    assert same["same_sign"] == 1.0  # over the 3 pixels with |change| > 0.02
    flipped = change_metrics(-truth, truth, pixels)
    assert flipped["correlation"] == pytest.approx(-1.0) and flipped["same_sign"] == 0.0
    flat = change_metrics(np.zeros((2, 2)), truth, pixels)
    assert flat["correlation"] == 0.0 and flat["same_sign"] == 0.0


def test_scenarios_start_after_t():
    scen = scenarios_at(pd.Timestamp("2022-06-30"))
    assert set(scen) == {"rain-50%-30d", "heat+3C-14d", "wet-x2-30d"}
    assert [k for _, k in scen.values()] == [30, 14, 30]


def _row(enc, seed, value, task="sm_forecast", metric="r2"):
    return {"encoder": enc, "pretrain_seed": 0, "task": task, "protocol": "frozen",
            "budget": 1.0, "seed": seed, metric: value}


def test_aggregate_and_claim_verdicts():
    rows = [_row("kgvsf", s, 0.8 + 0.01 * s) for s in range(3)]
    rows += [_row("sm-mr", s, 0.5 + 0.01 * s) for s in range(3)]
    rows += [_row("mm-mr", s, 0.79 + 0.05 * s) for s in range(3)]
    agg = aggregate(rows)
    k = agg[agg.encoder == "kgvsf"].iloc[0]
    assert k["mean"] == pytest.approx(0.81) and k["std"] == pytest.approx(0.01)
    assert k["n"] == 3
    verdicts = claim_check(agg).set_index("rival")["verdict"]
    assert verdicts["sm-mr"] == "win" and verdicts["mm-mr"] == "tie"


def test_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown"):
        EvalConfig(encoders=("kgvsf", "bert"))
    assert EvalConfig(preset="small").budgets == (0.01, 0.1, 1.0)
    with pytest.raises(ValueError, match="distinct"):
        EvalConfig(pretrain_seeds=(1, 1))
    assert EvalConfig(pretrain_seeds=(3, 0)).pretrain_seed == 3
    assert EvalConfig(preset="small").pretrain_seeds == (0, 1)  # the claim covers pretraining
    assert EvalConfig(preset="tiny").pretrain_seeds == (0,)


def test_evaluate_tiny_pipeline_and_resume(tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["evaluate", "--preset", "tiny", "--objectives", "kgvsf,random", "--seeds", "0,1",
            "--tasks", "sm_forecast,future_image", "--out", str(out), "--cache", str(cache),
            "--what-if"]
    assert main(argv) == 0
    rows = load_cells(out / "cells.jsonl")
    keys = {cell_key(r) for r in rows}
    # 2 encoders x 2 tasks x 2 protocols x 2 seeds, + native future images, + the check
    assert len([r for r in rows if r["task"] != "counterfactual" and r["protocol"] != "native"
                and not r["encoder"].startswith("peer:")]) == 16
    # the peers of future_image, on the same samples, once
    assert {r["encoder"] for r in rows if r["encoder"].startswith("peer:")} == {
        "peer:persistence", "peer:climatology", "peer:trees"}
    assert {r["protocol"] for r in rows if r["task"] == "counterfactual"} == {"head", "native"}
    assert len(keys) == len(rows)
    for name in ("results.md", "results.csv", "results.png", "claim.csv", "config.json"):
        assert (out / name).stat().st_size > 0
    table = pd.read_csv(out / "results.csv")
    assert set(table.columns) == {"task", "metric", "protocol", "budget", "encoder", "mean",
                                  "std", "n"}
    assert set(table.encoder) == {"kgvsf", "random", "peer:persistence", "peer:climatology",
                                  "peer:trees"}
    md = (out / "results.md").read_text()
    assert "| sm_forecast | r2 |" in md and "Counterfactual check" in md
    assert "peer:trees" in md
    assert (cache / "tiny" / "kgvsf-p0" / "model.safetensors").is_file()
    check = [r for r in rows if r["task"] == "counterfactual"][0]
    assert {s["scenario"] for s in check["scenarios"]} == {"rain-50%-30d", "heat+3C-14d",
                                                          "wet-x2-30d"}
    # resume: a torn last line is ignored, missing cells are redone, finished ones skipped
    lines = (out / "cells.jsonl").read_text().splitlines()
    (out / "cells.jsonl").write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:20])
    capsys.readouterr()
    assert main(argv) == 0
    again = load_cells(out / "cells.jsonl")
    assert {cell_key(r) for r in again} == keys
    assert "kgvsf: sm_forecast" not in capsys.readouterr().out  # its cells were kept
    first = {cell_key(r): r for r in rows}
    for r in again:
        if r["task"] == "sm_forecast" and r["encoder"] == "kgvsf":
            assert json.dumps(r, sort_keys=True) == json.dumps(first[cell_key(r)],
                                                               sort_keys=True)
    # a second pretraining seed adds the main protocol, the native rows and the check only
    assert main(argv + ["--pretrain-seeds", "0,1"]) == 0
    more = [r for r in load_cells(out / "cells.jsonl") if r["pretrain_seed"] == 1]
    assert {(r["protocol"], r["budget"]) for r in more} == {("frozen", 1.0), ("native", 1.0),
                                                            ("head", 1.0)}
    assert len([r for r in more if r["protocol"] == "frozen"]) == 2 * 2 * 2
    assert (cache / "tiny" / "kgvsf-p1" / "model.safetensors").is_file()
    table = pd.read_csv(out / "results.csv").set_index(["task", "metric", "protocol", "encoder"])
    assert table.loc[("sm_forecast", "r2", "frozen", "kgvsf"), "n"] == 4  # 2 runs x 2 seeds
    assert table.loc[("sm_forecast", "r2", "finetune", "kgvsf"), "n"] == 2  # seed 0 only
    assert "Pretraining seeds 0,1" in (out / "results.md").read_text()


def test_peers_only_scores_the_peers_on_the_table_samples(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["evaluate", "--preset", "tiny", "--peers-only", "--tasks",
            "crop_type,sm_estimation,missing_image", "--out", str(out), "--cache", str(cache)]
    assert main(argv) == 0
    rows = load_cells(out / "cells.jsonl")
    assert {(r["task"], r["encoder"]) for r in rows} == {
        ("crop_type", "peer:random_forest"), ("sm_estimation", "peer:random_forest"),
        ("missing_image", "peer:linear_interpolation"), ("missing_image", "peer:persistence")}
    assert not (cache / "tiny").exists()  # nothing was pretrained
    by = {(r["task"], r["encoder"]): r for r in rows}
    assert 0.0 <= by[("crop_type", "peer:random_forest")]["macro_f1"] <= 1.0
    assert np.isfinite(by[("missing_image", "peer:linear_interpolation")]["mse"])
    assert (by[("missing_image", "peer:linear_interpolation")]["mse"]
            < by[("missing_image", "peer:persistence")]["mse"] * 1.5)


def test_evaluation_world_must_not_be_a_training_world(tmp_path):
    from kgvsf_explore.evaluation.runner import evaluation_cube

    with pytest.raises(ValueError, match="training"):
        evaluation_cube(EvalConfig(preset="tiny", seed=101, out=str(tmp_path)))
