"""What the dashboard is given: a cube and weights in any of their forms, loaded with care.

A missing or unreadable weights folder is not an error here: :func:`load_weights` returns the
reason, and the dashboard shows it while its maps keep working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..cube.cube import Cube


def open_cube_arg(cube: Any) -> Cube:
    """A :class:`Cube` from a Cube, a path or a Dataset (None: the shipped sample)."""
    from ..cube import open_cube
    from ..data import sample_path

    if cube is None:
        cube = sample_path()
    if isinstance(cube, Cube):
        return cube
    return open_cube(cube)


def load_weights(weights: Any) -> tuple[Any, str, str]:
    """``(model, sha256, error)``; the error text is empty when the weights loaded."""
    from ..forecaster import Forecaster
    from ..models.kgvsf import KGVSF
    from ..weights import default_weights, load_model

    if isinstance(weights, Forecaster):
        return weights.model, weights.weights_id, ""
    if isinstance(weights, KGVSF):
        return weights.eval(), "", ""
    folder = Path(weights) if weights is not None else default_weights()
    if not folder.is_dir():
        return None, "", (f"weights not found: {folder} is not a checkpoint folder "
                          "(safetensors + JSON). The maps work; forecasts are off. Start with "
                          "`kgvsf serve --weights DIR` or leave --weights out for the shipped "
                          "weights.")
    try:
        model, sha = load_model(folder)
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint: say so, keep serving
        return None, "", f"cannot load the weights in {folder}: {type(err).__name__}: {err}"
    return model, sha, ""
