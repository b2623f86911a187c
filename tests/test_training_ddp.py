"""Data-parallel pretraining: two CPU processes (gloo) train the tiny preset in lockstep."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch.distributed as dist

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")


def test_two_ranks_train_identical_weights(tmp_path):
    out = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "kgvsf_explore.training._ddp_smoke", "--out", str(out), "--steps", "4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("model.safetensors", "config.json", "state.json", "history.csv"):
        assert (out / name).is_file(), name
    assert (out / "last" / "state.json").is_file()
    report = json.loads((out / "ddp_check.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 8
    sums = report["rank_weights_sha256"]
    assert len(sums) == 2 and sums[0] == sums[1] == report["checkpoint_weights_sha256"]
    assert [h["step"] for h in report["history"]] == [2, 4, 6, 8]
