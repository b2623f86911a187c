"""Adapt the pretrained KG-VSF weights to a user's cube: continued pretraining, recorded.

``finetune`` runs :func:`kgvsf_explore.training.pretrain` from the shipped (or given) weights
with their own model configuration and normalisation statistics (so the inputs mean what the
weights learnt), a smaller learning rate, validation on the cube's held-out last calendar year,
early stopping and resumable checkpoints; ``training_data.json`` of the result records the cube
it was adapted on and the weights it started from (the model card's "trained on" line).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["finetune", "adaptation_record", "held_out_check"]


def adaptation_record(cube: Any, cube_path: str | None, weights: Path) -> dict[str, Any]:
    """What ``training_data.json`` says of an adapted model: the cube and the start weights."""
    from ..weights import weights_id

    ds = cube.ds
    times = cube.times
    where = cube_path or "an in-memory cube"
    info = {
        "path": cube_path,
        "bounds": [float(v) for v in cube.bounds],
        "crs": str(cube.crs) if getattr(cube, "crs", None) is not None else None,
        "image_dates": [str(times[0].date()), str(times[-1].date()), len(times)],
        "provenance": {k: ds.attrs[k] for k in ("kgvsf_ingest", "kgvsf_bands_derived",
                                                "kgvsf_weather_derived") if k in ds.attrs},
    }
    return {
        "description": f"adapted from {weights.name} (sha256 {weights_id(weights)[:12]}) "
                       f"on {where}, images {info['image_dates'][0]}..{info['image_dates'][1]}",
        "adapted_from": {"path": str(weights), "sha256": weights_id(weights)},
        "adapted_on": info,
    }


def held_out_check(cube: Any, start: Path, adapted: str | os.PathLike[str], *,
                   val_year: int | None = None, n_cases: int = 64,
                   seed: int = 0) -> dict[str, Any]:
    """Score the start and the adapted weights against persistence on the held-out dates.

    Both models forecast the same ``n_cases`` random (tile, date, horizon) cases of the
    validation period that finetuning never trained on
    (:func:`kgvsf_explore.evaluation.skill.heldout_skill`); the result says whether the
    adapted model beats persistence there, and by how much it moved from the start weights.
    """
    from ..evaluation.skill import heldout_skill
    from ..weights import load_model

    out: dict[str, Any] = {}
    for name, path in (("start", start), ("adapted", Path(adapted))):
        model, _ = load_model(path)
        out[name] = heldout_skill(model, cube, val_year=val_year, n_cases=n_cases, seed=seed)
    out["beats_persistence"] = out["adapted"]["skill_vs_persistence"] > 0
    return out


def finetune(
    cube: Any,
    out_dir: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    steps: int = 200,
    lr: float = 1e-4,
    batch_size: int | None = None,
    eval_every: int | None = None,
    val_batches: int | None = None,
    patience: int = 3,
    val_year: int | None = None,
    resume: bool = False,
    device: Any = None,
    progress: bool = True,
    seed: int = 0,
    check_cases: int = 64,
):
    """Continue KG-VSF pretraining from ``weights`` on ``cube``; return the ``TrainResult``.

    Parameters
    ----------
    cube
        A :class:`kgvsf_explore.Cube` or a path to one (e.g. written by ``kgvsf ingest``). The
        last calendar year (or ``val_year``) is held out for validation and early stopping;
        a cube of one year holds out the last 30 % of its image period instead
        (:func:`kgvsf_explore.training.data.split_years`).
    out_dir
        Output checkpoint folder (usable by ``Forecaster.from_pretrained(out_dir)``).
    weights
        Start checkpoint; default the shipped ``kgvsf-small-pcwv`` weights. A seed ensemble
        (``kgvsf make-ensemble``) has each member adapted with these settings, one after the
        other in ``OUT.members/``, and joined again in ``out_dir``.
    steps
        Optimiser steps, split evenly between masked reconstruction and forecasting.
    lr, batch_size, eval_every, val_batches, patience, seed
        Optimisation; ``batch_size`` and ``val_batches`` default to the checkpoint's,
        ``eval_every`` to a tenth of ``steps`` (at least 5).
    val_year, resume, device, progress
        As in :func:`kgvsf_explore.training.pretrain`.
    check_cases
        Held-out forecast cases on which the start and the adapted weights are scored against
        persistence afterwards (:func:`held_out_check`, recorded under ``held_out_skill`` in
        ``training_data.json``); 0 skips the check.
    """
    from .._atomic import atomic_write
    from ..cube import open_cube
    from ..models.config import TrainConfig
    from ..training import load_checkpoint, pretrain
    from ..weights import ENSEMBLE_FILE, default_weights

    cube_path = None
    if isinstance(cube, (str, os.PathLike)):
        cube_path = str(cube)
        cube = open_cube(cube)
    start = Path(weights) if weights is not None else default_weights()
    if (start / ENSEMBLE_FILE).is_file():
        return _finetune_ensemble(
            cube, cube_path, start, Path(out_dir), check_cases=check_cases,
            options=dict(steps=steps, lr=lr, batch_size=batch_size, eval_every=eval_every,
                         val_batches=val_batches, patience=patience, val_year=val_year,
                         resume=resume, device=device, progress=progress, seed=seed))
    _, model_cfg, saved_train, _ = load_checkpoint(start)
    base = saved_train or TrainConfig()
    half = max(1, steps // 2)
    train_cfg = replace(
        base, phase1_steps=half, phase2_steps=max(1, steps - half), lr=lr, patience=patience,
        batch_size=batch_size or base.batch_size, eval_every=eval_every or max(5, steps // 10),
        val_batches=val_batches or base.val_batches, val_year=val_year, seed=seed)
    result = pretrain(cube, out_dir, model_cfg, train_cfg, resume=resume, device=device,
                      progress=progress, fit_stats=False, init_from=start)
    if os.environ.get("RANK", "0") == "0":
        record = adaptation_record(cube, cube_path, start)
        if check_cases:
            record["held_out_skill"] = held_out_check(cube, start, out_dir, val_year=val_year,
                                                      n_cases=check_cases, seed=seed)
        text = json.dumps(record, indent=2) + "\n"
        atomic_write(Path(out_dir) / "training_data.json", text.encode())
    return result


def _finetune_ensemble(cube: Any, cube_path: str | None, start: Path, out_dir: Path, *,
                       check_cases: int, options: dict[str, Any]):
    """Finetune every member of a seed ensemble with the same settings, then join them.

    The members are adapted one after the other in ``OUT.members/i`` (each resumable with
    ``resume=True``); the adapted ensemble is written to ``OUT`` atomically
    (:func:`~kgvsf_explore.weights.make_ensemble`) and the work folder removed. The held-out
    check scores the ensemble as a whole. Returns the last member's ``TrainResult`` with
    ``out_dir`` set to ``OUT``.
    """
    import shutil

    from .._atomic import atomic_write
    from ..weights import ensemble_members, make_ensemble

    work = out_dir.parent / f"{out_dir.name}.members"
    adapted, result = [], None
    for i, member in enumerate(ensemble_members(start)):
        target = work / str(i)
        done = (target / "training_data.json").is_file() and options["resume"]
        if not done:
            result = finetune(cube, target, weights=member, check_cases=0, **options)
        adapted.append(target)
    if os.environ.get("RANK", "0") != "0":
        return result
    make_ensemble(adapted, out_dir, overwrite=True)
    record = adaptation_record(cube, cube_path, start)
    record["members"] = len(adapted)
    if check_cases:
        record["held_out_skill"] = held_out_check(cube, start, out_dir,
                                                  val_year=options["val_year"],
                                                  n_cases=check_cases, seed=options["seed"])
    atomic_write(out_dir / "training_data.json", (json.dumps(record, indent=2) + "\n").encode())
    shutil.rmtree(work, ignore_errors=True)
    if result is None:  # every member was already adapted (resumed after the last one)
        from ..training.loop import TrainResult

        result = TrainResult(out_dir=out_dir, history=[], best_val=float("nan"), steps=0,
                             seconds=0.0)
    return replace(result, out_dir=out_dir)
