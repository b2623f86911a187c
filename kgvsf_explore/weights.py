"""The shipped pretrained weights, how to load any checkpoint, and seed ensembles of them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data import data_dir

#: Folder name of the shipped KG-VSF weights inside ``data_samples/weights/``.
SHIPPED_WEIGHTS = "kgvsf-small-pcwv"
#: The file that makes a weights folder an ensemble (:func:`make_ensemble`).
ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_VERSION = 1
#: Members an ensemble may have (a bound checked before anything is loaded).
MAX_MEMBERS = 32
#: Files of a checkpoint copied into an ensemble member (its ``last/`` and ``best/`` are not).
MEMBER_FILES = ("config.json", "model.safetensors", "state.json", "history.csv",
                "training_data.json", "manifest.json")


def default_weights() -> Path:
    """Path of the default shipped weights, ``kgvsf-small-pcwv`` (safetensors + JSON config,
    calibrated intervals, model card; ``docs/model.md`` says why these)."""
    return data_dir() / "weights" / SHIPPED_WEIGHTS


def load_model(path: str | os.PathLike | None = None, device: Any = "cpu") -> tuple[Any, str]:
    """Load a checkpoint folder (default: the shipped weights), or an ensemble folder
    (:func:`make_ensemble`), for inference.

    Returns the network (a :class:`~kgvsf_explore.models.ensemble.KGVSFEnsemble` for an
    ensemble) in eval mode and the SHA-256 of its weight tensors (of an ensemble: of its
    members' hashes in order). Nothing is unpickled: weights are safetensors, configuration
    is JSON.
    """
    from .training.checkpoint import load_checkpoint

    folder = Path(path) if path is not None else default_weights()
    if (folder / ENSEMBLE_FILE).is_file():
        members = ensemble_members(folder)
        model = _joined([load_checkpoint(m, map_location=device)[0] for m in members],
                        str(folder / ENSEMBLE_FILE))
        return model.eval(), _members_sha256(members)
    model, _, _, _ = load_checkpoint(folder, map_location=device)
    return model.eval(), weights_id(folder)


def weights_id(path: str | os.PathLike) -> str:
    """The SHA-256 that names a weights folder's tensors (equal for bit-identical weights);
    of an ensemble, the SHA-256 of its members' in order."""
    from .training.checkpoint import weights_sha256

    folder = Path(path)
    if (folder / ENSEMBLE_FILE).is_file():
        return _members_sha256(ensemble_members(folder))
    return weights_sha256(folder)


def _members_sha256(members: Sequence[Path]) -> str:
    from .training.checkpoint import weights_sha256

    return hashlib.sha256("".join(weights_sha256(m) for m in members).encode()).hexdigest()


def _joined(models: list[Any], where: str) -> Any:
    """The ensemble of ``models``; a configuration mismatch is a ``CheckpointError``."""
    from .models.ensemble import KGVSFEnsemble
    from .training.checkpoint import CheckpointError

    try:
        return KGVSFEnsemble(models)
    except ValueError as err:
        raise CheckpointError(f"{where}: {err}") from None


def ensemble_members(folder: str | os.PathLike) -> list[Path]:
    """The member checkpoint folders an ensemble folder's ``ensemble.json`` lists.

    Raises
    ------
    CheckpointError
        The file is not valid JSON of this version, lists fewer than two or more than
        :data:`MAX_MEMBERS` members, or a member path leaves the folder or is missing.
    """
    from .training.checkpoint import CheckpointError

    folder = Path(folder)
    path = folder / ENSEMBLE_FILE
    if path.stat().st_size > 1 << 20:
        raise CheckpointError(f"{path} is larger than 1 MiB; not an ensemble file")
    try:
        info = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); rewrite it with "
                              "'kgvsf make-ensemble'") from None
    if not isinstance(info, dict) or info.get("kgvsf_ensemble_version") != ENSEMBLE_VERSION:
        raise CheckpointError(f"{path}: unsupported ensemble file (kgvsf_ensemble_version "
                              f"{ENSEMBLE_VERSION} expected)")
    names = info.get("members")
    if (not isinstance(names, list) or not 2 <= len(names) <= MAX_MEMBERS
            or not all(isinstance(n, str) for n in names)):
        raise CheckpointError(f"{path}: 'members' must list 2 to {MAX_MEMBERS} folder names")
    root = folder.resolve()
    out = []
    for name in names:
        member = (folder / name).resolve()
        if Path(name).is_absolute() or root not in member.parents:
            raise CheckpointError(f"{path}: member {name!r} lies outside the ensemble folder")
        if not member.is_dir():
            raise CheckpointError(f"{path}: member folder {name!r} is missing")
        out.append(member)
    return out


def make_ensemble(members: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                  overwrite: bool = False) -> Path:
    """Write a seed ensemble of checkpoints as one weights folder.

    The folder holds ``ensemble.json``, the members' checkpoints under ``members/0``,
    ``members/1``, ... (weights, config, history; not their ``last/`` and ``best/``), and
    member 0's ``config.json`` and ``training_data.json`` (the members share the recipe) for
    model cards and peers. It is written to a temporary folder first and swapped in whole.
    Load it with :func:`load_model` or ``Forecaster.from_pretrained(out)``; calibrate and
    score it as any weights.

    Parameters
    ----------
    members
        Two or more checkpoint folders of one recipe (equal ``ModelConfig``), other seeds.
    out
        The ensemble folder.
    overwrite
        Replace an existing folder that kgvsf did not write.

    Raises
    ------
    CheckpointError
        A member does not load, or the members' configurations differ (the field is named).
    """
    from ._atomic import check_output, write_output_dir
    from .training.checkpoint import load_checkpoint

    members = [Path(m) for m in members]
    target = check_output(out, overwrite=overwrite, inputs=members)
    _joined([load_checkpoint(m)[0] for m in members],  # checks before writing
            f"cannot ensemble {', '.join(map(str, members))}")

    def write(tmp: Path) -> None:
        names = []
        for i, m in enumerate(members):
            dest = tmp / "members" / str(i)
            dest.mkdir(parents=True)
            for f in MEMBER_FILES:
                if (m / f).is_file():
                    shutil.copy2(m / f, dest / f)
            names.append(f"members/{i}")
        for f in ("config.json", "training_data.json"):
            if (members[0] / f).is_file():
                shutil.copy2(members[0] / f, tmp / f)
        data = tmp / "training_data.json"
        if data.is_file():
            desc = json.loads(data.read_text())
            desc["description"] = (f"seed ensemble of {len(members)} (forecasts averaged); "
                                   f"member 0: {desc.get('description', '')}")
            data.write_text(json.dumps(desc, indent=2) + "\n")
        info = {"kgvsf_ensemble_version": ENSEMBLE_VERSION, "members": names,
                "sources": [str(m) for m in members],
                "combine": "forecast: mean of the members; embeddings: side by side"}
        (tmp / ENSEMBLE_FILE).write_text(json.dumps(info, indent=2) + "\n")

    return write_output_dir(target, write, kind="weights")
