"""The model card of trained weights: how they were trained and their scorecard beside the
peers (:func:`~kgvsf_explore.evaluation.scorecard.evaluate_weights`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from .._atomic import atomic_write
from .scorecard.report import markdown

__all__ = ["write_model_card"]


def _fmt(df: pd.DataFrame) -> str:
    return df.to_markdown(floatfmt=".4f")


def write_model_card(card, path: str | os.PathLike[str], *, command: str = "") -> Path:
    """Write the model card of the weights ``card`` (a
    :class:`~kgvsf_explore.evaluation.scorecard.Scorecard`) scored, to ``path``.

    Parameters
    ----------
    card
        The weights' scorecard.
    path
        Markdown file (written atomically).
    command
        The command that reproduces the scorecard (printed in the card).
    """
    folder = Path(card.meta["weights"])
    cfg = json.loads((folder / "config.json").read_text())
    trained = folder / "training_data.json"
    data = json.loads(trained.read_text()) if trained.is_file() else {}
    hist = folder / "history.csv"
    history = pd.read_csv(hist) if hist.is_file() else None
    from ..weights import load_model

    model, sha = load_model(folder)
    lines = [
        f"# Model card: `{folder.name}` ({model.objective})",
        "",
        f"- weights sha256 `{sha}`; {sum(p.numel() for p in model.parameters()):,} parameters",
        f"- trained on: {data.get('description', 'see config.json')}",
        "- scorecard below: " + (f"`{command}`" if command else "`kgvsf evaluate-weights`"),
        "",
        "## Limits",
        "",
        "- Trained on simulated sample worlds only (central-Iowa-like climate, five land covers, "
        "Sentinel-2-like bands, 10 m); real imagery needs adaptation (`kgvsf finetune`).",
        "- Forecasts 1-60 days ahead from the last image and the weather of the horizon; the "
        "weather enters as tile means (32 x 32 px).",
        "- Read the scorecard before using it: simple peers beat these weights on most tasks.",
        "",
    ]
    lines += ["#" + line if line.startswith("#") else line
              for line in markdown(card).splitlines()] + [""]
    lines += ["## Training", "", "```json", json.dumps(cfg, indent=2), "```", ""]
    if history is not None and len(history) and "val_loss" in history:
        last = history.dropna(subset=["val_loss"]).tail(3)
        lines += ["Last validation points (held-out year of the training worlds):", "",
                  _fmt(last.set_index("step")), ""]
    return atomic_write(path, "\n".join(lines))
