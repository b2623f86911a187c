"""The pretraining loop: phases, validation, early stopping, checkpoints, resume, DDP.

One code path trains every objective of :data:`~kgvsf_explore.models.config.OBJECTIVES`
(:func:`~kgvsf_explore.models.phase_schedule` decides the phases), so the comparison between
KG-VSF and its baselines differs only in the objective.

Output folder::

    out_dir/model.safetensors, config.json, state.json, history.csv
                    the final model: best validation weights of the last phase
    out_dir/best/   best weights of the last phase so far (written while training)
    out_dir/last/   everything needed to resume (weights, optimiser, RNG states, data
                    position, best weights of the current phase), written at every validation
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..models.config import ModelConfig, TrainConfig
from .checkpoint import (
    STATE_FILE,
    CheckpointError,
    atomic_write,
    build_model,
    load_checkpoint,
    load_optimizer_state,
    load_tensors,
    save_checkpoint,
)
from .data import VAL_SEED, _seed, make_loaders, normalisation_stats, with_stats

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch
    import xarray as xr

    from ..cube.cube import Cube

__all__ = ["TrainResult", "lr_at", "pretrain"]

#: Gradient norm clip.
CLIP_NORM = 1.0
#: Columns of ``history.csv`` (and keys of each history entry).
HISTORY_COLUMNS = ("step", "phase", "train_loss", "val_loss", "lr")


@dataclass
class TrainResult:
    """Outcome of :func:`pretrain`.

    Attributes
    ----------
    out_dir
        Folder of the final model (see the module docstring).
    history
        One entry per validation: ``{"step", "phase", "train_loss", "val_loss", "lr"}``
        (``step`` counts optimiser steps over all phases; ``train_loss`` is the mean since the
        previous validation).
    best_val
        Best validation loss of the last phase (the final model's).
    steps
        Optimiser steps done in all (including resumed) sessions; fewer than planned after
        early stopping.
    seconds
        Wall time of this call.
    model_cfg
        The model configuration saved with the weights (normalisation statistics included).
    phases
        Per phase: ``{"phase", "steps", "best_val", "best_step", "stopped_early"}``.
    model
        The trained network (final weights, ``eval()`` mode, on the training device).
    """

    out_dir: Path
    history: list[dict[str, Any]]
    best_val: float
    steps: int
    seconds: float
    model_cfg: ModelConfig | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    model: torch.nn.Module | None = field(default=None, repr=False, compare=False)


@dataclass
class _State:
    """What :func:`pretrain` saves in ``state.json`` to resume exactly."""

    phase_index: int = 0
    pstep: int = 0
    step: int = 0
    best_val: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    data_position: int = 0
    done: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, schedule: list[tuple[int, int]]) -> dict[str, Any]:
        out = asdict(self)
        out["phase"] = schedule[min(self.phase_index, len(schedule) - 1)][0]
        out["schedule"] = [list(s) for s in schedule]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _State:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _loss_module(model: torch.nn.Module) -> torch.nn.Module:
    """Wrap ``model.loss`` as ``forward`` so DistributedDataParallel sees the call."""
    import torch

    class LossModule(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, batch: dict[str, Any], objective: str, phase: int) -> Any:
            return self.inner.loss(batch, objective, phase)

    return LossModule(model)


def lr_at(pstep: int, steps: int, lr: float) -> float:
    """Learning rate of step ``pstep`` (0-based) of a phase of ``steps`` steps.

    Linear warmup over the first 5 % of the phase (at least 1, at most 200 steps), then cosine
    decay towards 0.
    """
    warmup = max(1, min(200, round(0.05 * steps)))
    if pstep < warmup:
        return lr * (pstep + 1) / warmup
    progress = (pstep - warmup) / max(1, steps - warmup)
    return lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ------------------------------------------------------------------------------------------
# RNG states as JSON


def _rng_state(device: torch.device) -> dict[str, Any]:
    import torch

    np_state = np.random.get_state()  # noqa: NPY002 - legacy global state
    py_state = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state().tolist(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device).tolist()
    return out


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    import torch

    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    n = state["numpy"]
    legacy = (n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4])
    np.random.set_state(legacy)  # noqa: NPY002 - legacy global state
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(torch.tensor(state["cuda"], dtype=torch.uint8), device)


def _seed_all(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - legacy global state used by third-party code
    random.seed(seed)


# ------------------------------------------------------------------------------------------
# distributed helpers


@dataclass
class _Dist:
    rank: int
    world_size: int
    device: torch.device
    owns_group: bool

    @property
    def main(self) -> bool:
        return self.rank == 0

    def reduce_sum(self, values: list[float]) -> list[float]:
        """Sum ``values`` over ranks (identity in a single process)."""
        if self.world_size == 1:
            return values
        import torch
        import torch.distributed as dist

        dev = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        t = torch.tensor(values, dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj: Any) -> list[Any]:
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


def _setup_distributed(device: str | torch.device | None) -> _Dist:
    import torch
    import torch.distributed as dist

    owns = False
    want_cuda = torch.cuda.is_available() and (
        device is None or torch.device(device).type == "cuda"
    )
    if (
        dist.is_available()
        and not dist.is_initialized()
        and int(os.environ.get("WORLD_SIZE", "1")) > 1
    ):
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
        owns = True
    if dist.is_available() and dist.is_initialized():
        rank, ws = dist.get_rank(), dist.get_world_size()
    else:
        rank, ws = 0, 1
    if device is None:
        if want_cuda:
            index = int(os.environ.get("LOCAL_RANK", "0")) if ws > 1 else None
            dev = torch.device("cuda", torch.cuda.current_device() if index is None else index)
        else:
            dev = torch.device("cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return _Dist(rank, ws, dev, owns)


# ------------------------------------------------------------------------------------------
# the loop


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if hasattr(v, "to") else v for k, v in batch.items()}


def _evaluate(
    model: torch.nn.Module,
    val: list[dict[str, Any]],
    objective: str,
    phase: int,
    ctx: _Dist,
) -> float:
    """Mean loss over the validation batches of all ranks (masks seeded per batch)."""
    import torch

    from ..models.precision import autocast

    was_training = model.training
    model.eval()
    total, count = 0.0, 0.0
    devices = [ctx.device.index] if ctx.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        for j, batch in enumerate(val):
            torch.manual_seed(_seed(VAL_SEED, ctx.rank + j * ctx.world_size))
            with autocast(ctx.device):
                loss, _ = model.loss(_to_device(batch, ctx.device), objective, phase)
            total += float(loss)
            count += 1.0
    model.train(was_training)
    total, count = ctx.reduce_sum([total, count])
    if count == 0:
        raise ValueError("no validation batch: set TrainConfig.val_batches >= 1")
    return total / count


def _history_csv(history: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(HISTORY_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k) for k in HISTORY_COLUMNS})
    return buf.getvalue()


def _config_diff(a: Any, b: Any) -> list[str]:
    return [
        f"{f.name}: {getattr(a, f.name)!r} != {getattr(b, f.name)!r}"
        for f in fields(a)
        if getattr(a, f.name) != getattr(b, f.name)
    ]


def pretrain(
    cubes: Cube | xr.Dataset | Sequence[Cube | xr.Dataset],
    out_dir: str | os.PathLike[str],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    resume: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    fit_stats: bool = True,
    init_from: str | os.PathLike[str] | None = None,
    in_memory: bool | None = None,
) -> TrainResult:
    """Pretrain a KG-VSF network (or a baseline objective) on one or several cubes.

    Parameters
    ----------
    cubes
        A cube or a list of cubes; the last calendar year of each (or
        ``train_cfg.val_year``) is held out for validation. Or a
        :class:`~kgvsf_explore.training.corpus.CorpusData` (a ``kgvsf make-corpus`` folder),
        streamed a few cubes at a time and split by world and year (see
        :mod:`kgvsf_explore.training.corpus`).
    out_dir
        Output folder (see the module docstring). Without ``resume`` an existing run there is
        overwritten as the new one proceeds.
    model_cfg, train_cfg
        Architecture and run. With ``fit_stats`` (default) the normalisation statistics of
        ``model_cfg`` are replaced by those of the training years (:func:`normalisation_stats`).
    resume
        Continue from ``out_dir/last`` (same step, phase, optimiser, RNG and data position),
        giving the same final weights as an uninterrupted run; starts afresh if there is no
        checkpoint. The configurations must equal the checkpoint's.
    device
        Torch device; default CUDA if available (``cuda:LOCAL_RANK`` under torchrun), else
        CPU. CUDA runs use bfloat16 autocast.
    progress
        Show a ``tqdm`` progress bar (rank 0 only).
    fit_stats
        Fit the normalisation statistics to the cubes (see ``model_cfg``).
    init_from
        A checkpoint folder whose weights the run starts from instead of a random
        initialisation (finetuning, e.g. the shipped weights on a user's cube); its
        architecture must match ``model_cfg``. A checkpoint found by ``resume`` wins over it.
    in_memory
        Load the cubes into memory (True), keep cubes opened from disk there and read them in
        blocks, memory bounded (False), or decide by their size (None, the default; see
        :func:`~kgvsf_explore.training.make_loaders`). Ignored for a corpus, always streamed.

    Returns
    -------
    TrainResult

    Notes
    -----
    The phases follow :func:`~kgvsf_explore.models.phase_schedule`. Each phase gets a fresh
    AdamW (``lr``, ``weight_decay``) with linear warmup and cosine decay (:func:`lr_at`);
    gradients are clipped to norm 1. Validation runs every ``eval_every`` steps and at the
    end of a phase, on fixed batches (:func:`~kgvsf_explore.training.data.make_loaders`);
    after ``patience`` validations without improvement (0: never) the phase stops early. At
    the end of a phase the best weights of that phase are restored, so the next phase (and
    the final model) starts from them.

    Under ``torch.distributed`` (initialised by the caller, or here when ``WORLD_SIZE > 1``:
    NCCL on CUDA, gloo on CPU) the model is wrapped in DistributedDataParallel, every rank
    draws its own batches, validation losses are averaged over ranks and only rank 0 writes.
    """
    import torch

    t0 = time.perf_counter()
    ctx = _setup_distributed(device)
    prev = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _pretrain(cubes, Path(out_dir), model_cfg, train_cfg, resume, progress,
                         fit_stats, ctx, t0, init_from, in_memory)
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        if ctx.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _init_weights(model: torch.nn.Module, folder: Path) -> None:
    """Copy the weights of the checkpoint ``folder`` into ``model`` (same architecture)."""
    saved, _, _, _ = load_checkpoint(folder)
    try:
        model.load_state_dict(saved.state_dict())
    except RuntimeError as exc:
        raise CheckpointError(
            f"cannot start from {folder}: its architecture differs from the run's model "
            f"configuration ({exc}); use the checkpoint's own config.json"
        ) from None


def _pretrain(
    cubes: Any,
    out: Path,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    resume: bool,
    progress: bool,
    fit_stats: bool,
    ctx: _Dist,
    t0: float,
    init_from: str | os.PathLike[str] | None = None,
    in_memory: bool | None = None,
) -> TrainResult:
    import torch
    from tqdm.auto import tqdm

    from .. import models
    from ..models.precision import autocast
    from .corpus import CorpusData

    corpus = cubes if isinstance(cubes, CorpusData) else None
    if fit_stats:
        stats = (corpus.stats(train_cfg.val_year) if corpus is not None
                 else normalisation_stats(cubes, train_cfg.val_year))
        model_cfg = with_stats(model_cfg, stats)
    schedule = [(int(p), int(s)) for p, s in models.phase_schedule(train_cfg) if s > 0]
    if not schedule:
        raise ValueError("the run has no steps: set phase1_steps/phase2_steps")
    objective = train_cfg.objective

    _seed_all(train_cfg.seed)  # same initial weights on every rank
    model = build_model(model_cfg, train_cfg).to(ctx.device)
    if init_from is not None:
        _init_weights(model, Path(init_from))
    _seed_all(_seed(train_cfg.seed, ctx.rank, 1))  # per-rank masks and dropout
    if corpus is not None:  # streaming over the corpus' cubes, a few open at a time
        stream, val = corpus.loaders(model_cfg, train_cfg, rank=ctx.rank,
                                     world_size=ctx.world_size)
    else:
        stream, val = make_loaders(cubes, model_cfg, train_cfg, rank=ctx.rank,
                                   world_size=ctx.world_size, in_memory=in_memory)

    last_dir, best_dir = out / "last", out / "best"
    st = _State()
    best_weights: dict[str, torch.Tensor] | None = None
    resumed_mid_phase = False
    if resume and (last_dir / STATE_FILE).is_file():
        saved_model, saved_mcfg, saved_tcfg, saved = load_checkpoint(last_dir)
        diff = _config_diff(saved_mcfg, model_cfg)
        if saved_tcfg is not None:
            diff += _config_diff(saved_tcfg, train_cfg)
        if diff:
            raise CheckpointError(
                f"cannot resume from {last_dir}: it was saved with another configuration "
                f"({'; '.join(diff)})"
            )
        model.load_state_dict(saved_model.state_dict())
        st = _State.from_json(saved)
        if saved.get("has_phase_best"):
            best_weights = {
                k: v.to(ctx.device) for k, v in load_tensors(last_dir, "phase_best").items()
            }
        rngs = saved.get("rng", [])
        if ctx.rank < len(rngs):
            _set_rng_state(rngs[ctx.rank], ctx.device)
        stream.position = st.data_position
        resumed_mid_phase = st.pstep > 0

    net: torch.nn.Module = _loss_module(model)
    if ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            net,
            device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=True,  # phases and objectives leave parts unused
        )

    planned = sum(s for _, s in schedule)
    position = sum(s for _, s in schedule[: st.phase_index]) + st.pstep
    bar = tqdm(total=planned, initial=min(position, planned), unit="step", desc=objective,
               disable=not (progress and ctx.main), dynamic_ncols=True)
    run_loss = torch.zeros((), dtype=torch.float64, device=ctx.device)
    run_count = 0

    def save_last(optimizer: torch.optim.Optimizer | None) -> None:
        rng = ctx.gather(_rng_state(ctx.device))
        if not ctx.main:
            return
        state = st.to_json(schedule)
        state.update(rng=rng, data_position=stream.position, has_phase_best=best_weights
                     is not None, objective=objective, world_size=ctx.world_size)
        extra = {"phase_best": best_weights} if best_weights is not None else None
        save_checkpoint(last_dir, model, model_cfg, train_cfg, state, optimizer,
                        extra_tensors=extra)

    model.train()
    try:
        while st.phase_index < len(schedule):
            phase, n_steps = schedule[st.phase_index]
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=train_cfg.lr,
                                          weight_decay=train_cfg.weight_decay)
            if resumed_mid_phase:
                load_optimizer_state(last_dir, optimizer, map_location=ctx.device)
                resumed_mid_phase = False
            while st.pstep < n_steps:
                lr = lr_at(st.pstep, n_steps, train_cfg.lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                batch = _to_device(next(stream), ctx.device)
                with autocast(ctx.device):
                    loss, _ = net(batch, objective, phase)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
                optimizer.step()
                st.pstep += 1
                st.step += 1
                run_loss += loss.detach().to(torch.float64)
                run_count += 1
                bar.update(1)
                if st.pstep % 10 == 0:
                    bar.set_postfix(phase=phase, loss=f"{float(loss.detach()):.4f}",
                                    refresh=False)
                every = train_cfg.eval_every
                if not ((every > 0 and st.pstep % every == 0) or st.pstep == n_steps):
                    continue
                # ---- validation
                val_loss = _evaluate(model, val, objective, phase, ctx)
                tl_sum, tl_n = ctx.reduce_sum([float(run_loss), float(run_count)])
                train_loss = tl_sum / max(tl_n, 1.0)
                run_loss.zero_()
                run_count = 0
                if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                    raise FloatingPointError(
                        f"loss is not finite at step {st.step} (train {train_loss}, val "
                        f"{val_loss}); lower TrainConfig.lr"
                    )
                st.history.append({"step": st.step, "phase": phase, "train_loss": train_loss,
                                   "val_loss": val_loss, "lr": lr})
                bar.set_postfix(phase=phase, loss=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
                last_phase = st.phase_index == len(schedule) - 1
                if st.best_val is None or val_loss < st.best_val:
                    st.best_val, st.best_step, st.bad_evals = val_loss, st.step, 0
                    best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    if last_phase and ctx.main:
                        save_checkpoint(best_dir, model, model_cfg, train_cfg,
                                        st.to_json(schedule))
                else:
                    st.bad_evals += 1
                stop = train_cfg.patience > 0 and st.bad_evals >= train_cfg.patience
                if stop or st.pstep >= n_steps:
                    # end of the phase: continue from its best weights
                    assert best_weights is not None
                    model.load_state_dict(best_weights)
                    st.phases.append({"phase": phase, "steps": st.pstep,
                                      "best_val": st.best_val, "best_step": st.best_step,
                                      "stopped_early": st.pstep < n_steps})
                    bar.update(n_steps - st.pstep)
                    st.phase_index += 1
                    st.done = st.phase_index == len(schedule)
                    if not st.done:
                        st.pstep, st.best_val, st.best_step, st.bad_evals = 0, None, None, 0
                        best_weights = None
                    st.data_position = stream.position
                    save_last(None)
                    break
                st.data_position = stream.position
                save_last(optimizer)
    finally:
        bar.close()

    best_val = float(st.phases[-1]["best_val"]) if st.phases else float("nan")
    if ctx.main:
        final = st.to_json(schedule)
        final.update(best_val=best_val, objective=objective, world_size=ctx.world_size)
        save_checkpoint(out, model, model_cfg, train_cfg, final)
        atomic_write(out / "history.csv", _history_csv(st.history))
    ctx.barrier()
    return TrainResult(
        out_dir=out,
        history=list(st.history),
        best_val=best_val,
        steps=st.step,
        seconds=time.perf_counter() - t0,
        model_cfg=model_cfg,
        phases=list(st.phases),
        model=model.eval(),
    )
