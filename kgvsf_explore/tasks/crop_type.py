"""Pixel-wise crop type mapping from mid-season embeddings: macro F1, per-class F1, confusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import schema
from .base import Task
from .data import TaskData

__all__ = ["CropType", "confusion", "f1_scores"]


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix ``(n_classes, n_classes)``: rows truth, columns prediction."""
    idx = np.asarray(truth, int) * n_classes + np.asarray(pred, int)
    return np.bincount(idx.ravel(), minlength=n_classes * n_classes).reshape(n_classes,
                                                                              n_classes)


def f1_scores(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> tuple[float, np.ndarray]:
    """Macro F1 and per-class F1.

    Per-class F1 is ``2 TP / (2 TP + FP + FN)`` (0 when the class is neither true nor
    predicted, NaN in the returned array then); the macro F1 averages the classes that occur in
    the truth or in the prediction (as scikit-learn's ``f1_score(average="macro")``).

    Examples
    --------
    >>> f1_scores(np.array([0, 1, 1]), np.array([0, 1, 1]), 3)[0]
    1.0
    """
    cm = confusion(truth, pred, n_classes)
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
    present = denom > 0
    return (float(np.nanmean(f1[present])) if present.any() else float("nan")), f1


@dataclass(frozen=True)
class CropType(Task):
    """Crop type of every pixel from embeddings of a date ``t`` in June-September."""

    name: str = "crop_type"
    samples: int = 0
    out_dim: int = len(schema.CROP_CLASSES)
    months: tuple[int, int] | None = (6, 9)
    primary: tuple[str, bool] = ("macro_f1", True)
    regression: bool = False

    def target(self, data: TaskData) -> torch.Tensor:
        return data.crop

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(pred, target.long())

    def metrics(self, pred: torch.Tensor, data: TaskData, mask: torch.Tensor) -> dict:
        m = mask.numpy()
        truth = data.crop.numpy()[m]
        guess = pred.argmax(1).numpy()[m]
        macro, per = f1_scores(truth, guess, self.out_dim)
        out: dict = {"macro_f1": macro}
        for code, name in schema.CROP_CLASSES.items():
            out[f"f1_{name}"] = float(per[code])
        out["confusion"] = confusion(truth, guess, self.out_dim).tolist()
        return out
