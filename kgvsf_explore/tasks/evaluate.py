"""One cell of the table: an encoder, a task, a protocol, a label budget and a seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import Task
from .data import TaskData
from .protocol import (
    PixelHead,
    ProtocolConfig,
    budget_mask,
    embeddings,
    finetune,
    fit_frozen,
    head_inputs,
    predict,
)

__all__ = ["FrozenInputs", "frozen_inputs", "run_cell"]

PROTOCOLS = ("frozen", "finetune")


@dataclass
class FrozenInputs:
    """Head inputs of an encoder on a task's finetuning and test samples (computed once)."""

    train: torch.Tensor
    test: torch.Tensor


def _inputs(model: nn.Module, task: Task, data: TaskData) -> torch.Tensor:
    emb = embeddings(model, data.batch)
    fut = embeddings(model, data.batch, forecast=True) if task.future else None
    return head_inputs(emb, data.batch["context_mask"], data.gap, data.features(task.future),
                       fut, task.pixel_inputs(data))


def frozen_inputs(model: nn.Module, task: Task, train: TaskData, test: TaskData) -> FrozenInputs:
    """Head inputs ``(N, D, H, W)`` of both parts from the frozen encoder."""
    return FrozenInputs(_inputs(model, task, train), _inputs(model, task, test))


def run_cell(task: Task, model: nn.Module, train: TaskData, test: TaskData, *, protocol: str,
             budget: float, seed: int, cfg: ProtocolConfig | None = None,
             inputs: FrozenInputs | None = None) -> dict:
    """Finetune on ``train`` (label budget ``budget``) and return the metrics on ``test``.

    Labels are read on ``train.part_pixels`` only (the finetune field group); metrics on
    ``test.part_pixels`` only (the test field group).

    Parameters
    ----------
    task
        The task.
    model
        The pretrained encoder (not modified).
    train, test
        Samples of the finetune and test parts of the split.
    protocol
        ``"frozen"`` or ``"finetune"``.
    budget
        Share of labelled finetuning pixels used.
    seed
        Seeds the budget draw, the head's initialisation and the batches.
    cfg
        Optimisation settings.
    inputs
        Precomputed frozen inputs (reused across budgets and seeds).

    Returns
    -------
    dict
        The task's metrics, plus ``labelled_pixels``.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    cfg = cfg or ProtocolConfig()
    inputs = inputs or frozen_inputs(model, task, train, test)
    target = task.target(train)
    mask = budget_mask(train.part_pixels, budget, seed)
    head: PixelHead
    if protocol == "frozen":
        head = fit_frozen(task, inputs.train, target, mask, seed, cfg)
        x_test = inputs.test
    else:
        enc, head = finetune(task, model, train, inputs.train, target, mask, seed, cfg)
        x_test = _inputs(enc, task, test)
    pred = task.prediction(predict(head, x_test), test)
    out = task.metrics(pred, test, test.part_pixels)
    out["labelled_pixels"] = int(mask.sum())
    return out
