"""The shipped pretrained weights and how to load any checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .data import data_dir

#: Folder name of the shipped KG-VSF weights inside ``data_samples/weights/``.
SHIPPED_WEIGHTS = "kgvsf-small-pcwv"


def default_weights() -> Path:
    """Path of the default shipped weights, ``kgvsf-small-pcwv`` (safetensors + JSON config,
    calibrated intervals, model card; ``docs/model.md`` says why these)."""
    return data_dir() / "weights" / SHIPPED_WEIGHTS


def load_model(path: str | os.PathLike | None = None, device: Any = "cpu") -> tuple[Any, str]:
    """Load a checkpoint folder (default: the shipped weights) for inference.

    Returns the network in eval mode and the SHA-256 of its weight tensors. Nothing is
    unpickled: weights are safetensors, configuration is JSON.
    """
    from .training.checkpoint import load_checkpoint, weights_sha256

    folder = Path(path) if path is not None else default_weights()
    model, _, _, _ = load_checkpoint(folder, map_location=device)
    return model.eval(), weights_sha256(folder)
