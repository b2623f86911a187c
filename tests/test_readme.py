"""The README's notebook examples run as written (on the shipped sample and weights)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_quick_start_answers_the_question_in_ten_lines() -> None:
    block = _python_blocks()[0]
    code = [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(code) <= 10, "the quick start promises an answer in under ten lines"
    scope: dict = {}
    exec(compile(block, "README quick start", "exec"), scope)
    change = scope["change"]
    assert set(change.dims) == {"scenario", "horizon", "y", "x"}
    per_horizon = change.mean(["y", "x"]).to_pandas()
    assert per_horizon.shape == (1, 3) and np.isfinite(per_horizon.values).all()


def test_more_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    days = pd.date_range("2022-07-01", "2022-07-31", freq="D")
    pd.DataFrame({"date": days, "prcp": 0.0, "tmax": 31.0}).to_csv("station.csv", index=False)
    scope: dict = {}
    first, second = _python_blocks()[:2]
    exec(compile(first + second, "README examples", "exec"), scope)
    assert scope["emb"].dims == ("feature", "y", "x")
    assert scope["filled"].ndvi.dims == ("time", "y", "x")
    assert not scope["first"].model.cfg.pixel_context  # the first weights: token decoder only
    assert (tmp_path / "forecast.zarr").exists()
    assert scope["station"].variables == ("prcp", "tmax")
