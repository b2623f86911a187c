"""Where the shipped sample data lives."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that points to a folder laid out like ``data_samples/``.
DATA_ENV = "KGVSF_DATA"


def data_dir() -> Path:
    """The ``data_samples`` folder: ``$KGVSF_DATA`` if set, else the one beside the package.

    Raises
    ------
    FileNotFoundError
        When neither exists, with the command that makes a sample cube.
    """
    env = os.environ.get(DATA_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent.parent / "data_samples")
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(
        "no data_samples folder found (looked at "
        + ", ".join(str(p) for p in candidates)
        + "). Set KGVSF_DATA to a folder holding 'sample/', or make a cube with "
        "'kgvsf make-sample --seed 42 --out DIR' and open it with open_cube(DIR)."
    )


def sample_path() -> Path:
    """Path of the shipped sample cube folder (``cube.zarr`` + ``fields.parquet``)."""
    return data_dir() / "sample"
