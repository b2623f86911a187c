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


def load_calibration(weights: Any, sha: str) -> Any:
    """The forecast-interval calibration of the weights (None when they have none).

    A :class:`~kgvsf_explore.Forecaster` gives its own (:attr:`Forecaster.intervals`); a
    checkpoint folder (None: the shipped weights) the ``intervals.json`` in it, if it was made
    for these weights.
    """
    from ..forecaster import Forecaster
    from ..inference.intervals import FILENAME, Calibration, IntervalsError
    from ..weights import default_weights

    if isinstance(weights, Forecaster):
        try:
            return weights.intervals
        except IntervalsError:
            return None
    if not isinstance(weights, (str, Path)) and weights is not None:
        return None
    path = (Path(weights) if weights is not None else default_weights()) / FILENAME
    if not path.is_file():
        return None
    try:
        cal = Calibration.load(path)
    except (IntervalsError, OSError, ValueError):
        return None
    return cal if sha and cal.weights_sha256 == sha else None
