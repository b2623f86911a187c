"""Where a model runs and in which precision: CUDA with bfloat16 autocast when present, else CPU."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def pick_device(device: Any = "auto") -> torch.device:
    """``"auto"`` (CUDA when available, else CPU) or anything :class:`torch.device` takes."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast(device: torch.device) -> Any:
    """bfloat16 autocast on CUDA; a no-op context on CPU (float32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
