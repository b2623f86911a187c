"""Pretrained encoders of the evaluation table, cached per (preset, objective, pretrain seed).

Every objective of :data:`~kgvsf_explore.models.config.OBJECTIVES` is pretrained by the same
:func:`~kgvsf_explore.training.pretrain` on the same training worlds and for the same number of
steps (:func:`eval_train_config`); ``random`` is the same network with its initial weights and the
training worlds' normalisation statistics. A run lives in ``cache/<preset>/<objective>-p<seed>``;
an interrupted run resumes from its last checkpoint, a finished one is loaded.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..models.config import OBJECTIVES, ModelConfig, TrainConfig, preset

if TYPE_CHECKING:
    import torch

    from ..cube.cube import Cube

__all__ = ["ENCODERS", "EVAL_STEPS", "eval_train_config", "load_or_pretrain", "run_dir",
           "training_worlds"]

#: Encoders of the table: the pretraining objectives plus the untrained network.
ENCODERS: tuple[str, ...] = (*OBJECTIVES, "random")

#: Pretraining steps (phase 1, phase 2) per preset in the evaluation. ``small`` uses 600 steps
#: instead of the shipped weights' 2000 so that seven encoders fit the hour (the shipped run's
#: validation loss at step 1200, i.e. 600 forecasting steps, was within 8 % of its final value).
EVAL_STEPS: dict[str, tuple[int, int]] = {
    "tiny": (15, 15), "small": (150, 450), "base": (5000, 15000),
}

#: Seeds and size of the training worlds per preset (never the evaluation world's seed).
TRAIN_WORLDS: dict[str, tuple[tuple[int, ...], str]] = {
    "tiny": ((101, 102), "tiny"),
    "small": ((101, 102, 103), "small"),
    "base": ((101, 102, 103, 104, 105), "medium"),
}


def eval_train_config(preset_name: str, objective: str, seed: int = 0) -> tuple[ModelConfig,
                                                                                  TrainConfig]:
    """Model and training configuration of one pretraining run of the evaluation.

    ``random`` gets the ``kgvsf`` configuration (it is never trained).
    """
    p1, p2 = EVAL_STEPS[preset_name]
    obj = "kgvsf" if objective == "random" else objective
    p = preset(preset_name, objective=obj, phase1_steps=p1, phase2_steps=p2, seed=seed)
    return p.model, replace(p.train)


def training_worlds(preset_name: str, exclude: int | None = None) -> list[Cube]:
    """The simulated training worlds of a preset (in memory); ``exclude`` must not be among them.

    Raises
    ------
    ValueError
        If the evaluation world's seed ``exclude`` is one of the training seeds.
    """
    from ..cube.cube import Cube
    from ..world import make_world

    seeds, size = TRAIN_WORLDS[preset_name]
    if exclude is not None and exclude in seeds:
        raise ValueError(f"evaluation world seed {exclude} is a training world of preset "
                         f"{preset_name!r} ({seeds}); pick another seed")
    return [Cube(make_world(seed=s, size=size)[0].load()) for s in seeds]


def run_dir(cache: str | os.PathLike[str], preset_name: str, objective: str, seed: int) -> Path:
    """Folder of one cached pretraining run."""
    return Path(cache) / preset_name / f"{objective}-p{seed}"


def _finished(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's live process
        return True
    return True


def _lock(folder: Path, poll: float = 20.0) -> Path:
    """Take ``<folder>.lock`` (one pretraining writer per run); wait while a live process
    holds it, take over a stale one."""
    import time

    lock = folder.with_name(folder.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                time.sleep(poll)
                continue
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return lock


def load_or_pretrain(
    cache: str | os.PathLike[str],
    preset_name: str,
    objective: str,
    seed: int = 0,
    *,
    worlds: list[Cube] | None = None,
    progress: bool = False,
) -> torch.nn.Module:
    """The pretrained encoder of ``objective`` (``"random"``: untrained), from the cache or
    pretrained now (resuming an interrupted run).

    Parameters
    ----------
    cache
        Cache root.
    preset_name
        ``tiny``, ``small`` or ``base``.
    objective
        One of :data:`ENCODERS`.
    seed
        Pretraining seed (weights initialisation, batches, masks).
    worlds
        Training cubes (default: :func:`training_worlds`, simulated on demand).
    progress
        Show the pretraining progress bar.

    Returns
    -------
    torch.nn.Module
        The network in eval mode on the CPU.
    """
    import torch

    from ..training import load_checkpoint, normalisation_stats, pretrain, with_stats
    from ..training.checkpoint import build_model

    if objective not in ENCODERS:
        raise ValueError(f"unknown encoder {objective!r}; choose from {ENCODERS}")
    model_cfg, train_cfg = eval_train_config(preset_name, objective, seed)
    folder = run_dir(cache, preset_name, objective, seed)
    if objective == "random":
        worlds = worlds if worlds is not None else training_worlds(preset_name)
        cfg = with_stats(model_cfg, normalisation_stats(worlds, train_cfg.val_year))
        torch.manual_seed(seed)
        return build_model(cfg, train_cfg).eval()
    if not _finished(folder):
        lock = _lock(folder)
        try:
            if not _finished(folder):  # another process may have finished it meanwhile
                worlds = worlds if worlds is not None else training_worlds(preset_name)
                pretrain(worlds, folder, model_cfg, train_cfg, resume=True, device="cpu",
                         progress=progress)
        finally:
            lock.unlink(missing_ok=True)
    model, _, _, _ = load_checkpoint(folder)
    return model.eval()


def _main() -> None:  # pragma: no cover - used to pre-fill a cache from the shell
    import argparse

    import torch

    ap = argparse.ArgumentParser(description="pre-fill the evaluation's pretraining cache")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="build/evaluate/cache")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    worlds = training_worlds(args.preset)
    for obj in args.objectives.split(","):
        load_or_pretrain(args.cache, args.preset, obj, args.seed, worlds=worlds, progress=True)
        print(f"done {obj}", flush=True)


if __name__ == "__main__":  # pragma: no cover
    _main()
