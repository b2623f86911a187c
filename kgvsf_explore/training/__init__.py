"""Pretraining of KG-VSF and its baselines: data loaders, checkpoints and the training loop.

>>> from kgvsf_explore.training import pretrain           # doctest: +SKIP
>>> result = pretrain(cube, "runs/kgvsf", model_cfg, train_cfg)  # doctest: +SKIP
"""

from __future__ import annotations

from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_optimizer_state,
    save_checkpoint,
    tensors_sha256,
    weights_sha256,
)
from .corpus import CorpusData
from .data import make_loaders, normalisation_stats, with_stats
from .loop import TrainResult, pretrain

__all__ = [
    "CheckpointError",
    "CorpusData",
    "TrainResult",
    "load_checkpoint",
    "load_optimizer_state",
    "make_loaders",
    "normalisation_stats",
    "pretrain",
    "save_checkpoint",
    "tensors_sha256",
    "weights_sha256",
    "with_stats",
]
