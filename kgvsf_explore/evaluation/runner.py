"""``kgvsf evaluate``: every encoder on every task, protocol, label budget and seed, resumable.

Work is done encoder by encoder (pretrain or load it, then all its cells), and every finished
cell is appended to ``out/cells.jsonl`` at once, so an interrupted evaluation continues where it
stopped (finished cells are skipped, an unfinished pretraining resumes from its checkpoint) and
the table can be written from whatever is finished (:mod:`kgvsf_explore.evaluation.table`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..tasks import PROTOCOLS, TASKS, ProtocolConfig

__all__ = ["EvalConfig", "PRETRAIN_SEEDS", "SIZES", "cell_key", "load_cells", "run_evaluation",
           "task_samples"]

#: Samples and optimisation per preset: (finetune samples, test samples, ProtocolConfig).
#: ``small`` is sized for about an hour on 2 CPU cores (see ``docs/evaluation.md``).
SIZES: dict[str, tuple[int, int, ProtocolConfig]] = {
    "tiny": (8, 6, ProtocolConfig(head_steps=20, ft_steps=2, ft_batch=4, hidden=16)),
    "small": (160, 48, ProtocolConfig(head_steps=150, ft_steps=30, ft_batch=6)),
    "base": (256, 128, ProtocolConfig(head_steps=600, ft_steps=300, ft_batch=16)),
}

#: Default label budgets of the frozen protocol per preset; the finetune protocol (the costly
#: one: forward and backward through the encoder) runs at 100 % of the labels by default.
BUDGETS: dict[str, tuple[float, ...]] = {"tiny": (1.0,), "small": (0.01, 0.1, 1.0),
                                         "base": (0.01, 0.1, 1.0)}

#: Default pretraining seeds per preset: ``small`` pretrains every objective twice, so that the
#: claim's spreads cover pretraining (``docs/evaluation.md``, Seeds).
PRETRAIN_SEEDS: dict[str, tuple[int, ...]] = {"tiny": (0,), "small": (0, 1), "base": (0,)}

#: Evaluation world of each preset when neither a cube nor a seed is given (the shipped sample
#: cube is ``small`` world 42).
DEFAULT_SEED = 42


@dataclass
class EvalConfig:
    """What ``kgvsf evaluate`` runs.

    Attributes
    ----------
    preset
        ``tiny`` (CI), ``small`` (the committed table) or ``base``.
    seed, cube
        The evaluation world: a sample world's seed (simulated at the preset's world size) or a
        cube path (must carry the simulator's ``*_true`` bands and soil moisture).
    seeds
        Finetuning seeds (label draw, head initialisation, batches).
    encoders, tasks, budgets, protocols
        The grid (``budgets`` empty: the preset's :data:`BUDGETS`).
    finetune_budgets
        Budgets of the finetune protocol (default 100 % only).
    out, cache
        Output folder and pretraining cache.
    what_if
        Run the counterfactual check.
    pretrain_seeds
        Seeds of the pretraining runs (empty: the preset's :data:`PRETRAIN_SEEDS`). The first
        runs the whole grid; every further one runs the main protocol (frozen, 100 % of the
        labels), the native forecasts and the check, so that the claim's spreads cover
        pretraining as well as finetuning.
    peers, peers_only
        Peers scored as rows beside the encoders (:mod:`.peer_cells`; empty: none), and
        whether to score only them (no pretraining).
    """

    preset: str = "tiny"
    seed: int | None = None
    cube: str | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    encoders: tuple[str, ...] = ()
    tasks: tuple[str, ...] = tuple(TASKS)
    budgets: tuple[float, ...] = ()
    finetune_budgets: tuple[float, ...] = (1.0,)
    protocols: tuple[str, ...] = PROTOCOLS
    out: str = "build/evaluate/tiny"
    cache: str = "build/evaluate/cache"
    what_if: bool = True
    pretrain_seeds: tuple[int, ...] = ()
    peers: tuple[str, ...] = ("persistence", "climatology", "linear_interpolation", "trees",
                              "random_forest")
    peers_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from .pretrained import ENCODERS

        self.encoders = tuple(self.encoders) or ENCODERS
        self.budgets = tuple(self.budgets) or BUDGETS.get(self.preset, (1.0,))
        bad = [e for e in self.encoders if e not in ENCODERS]
        bad += [t for t in self.tasks if t not in TASKS]
        bad += [p for p in self.protocols if p not in PROTOCOLS]
        from .scorecard import PEERS

        self.peers = tuple(self.peers)
        bad += [p for p in self.peers if p not in PEERS]
        if bad:
            raise ValueError(f"unknown {bad}; encoders {ENCODERS}, tasks {tuple(TASKS)}, "
                             f"protocols {PROTOCOLS}")
        if self.preset not in SIZES:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {sorted(SIZES)}")
        if len(self.seeds) < 1:
            raise ValueError("give at least one seed (the table reports mean and spread of 3+)")
        self.pretrain_seeds = (tuple(int(s) for s in self.pretrain_seeds)
                               or PRETRAIN_SEEDS.get(self.preset, (0,)))
        if not self.pretrain_seeds or len(set(self.pretrain_seeds)) != len(self.pretrain_seeds):
            raise ValueError(f"pretrain_seeds must be distinct and at least one, got "
                             f"{self.pretrain_seeds}")

    @property
    def pretrain_seed(self) -> int:
        """The first pretraining seed (the one that runs the whole grid)."""
        return self.pretrain_seeds[0]


def cell_key(row: dict[str, Any]) -> str:
    """Identity of a cell (what a resumed run skips)."""
    return "|".join(str(row[k]) for k in ("encoder", "pretrain_seed", "task", "protocol",
                                          "budget", "seed"))


def load_cells(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Finished cells of ``cells.jsonl`` (a torn last line from a kill is ignored)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _append(path: Path, row: dict[str, Any]) -> None:
    """Append one cell as a line (after a torn last line from a kill, start a new line)."""
    torn = False
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"
    with open(path, "a") as fh:
        fh.write(("\n" if torn else "") + json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def evaluation_cube(cfg: EvalConfig):
    """The evaluation world as an in-memory :class:`~kgvsf_explore.cube.cube.Cube`."""
    from ..cube.cube import Cube
    from ..cube.io import open_cube
    from ..world import make_world
    from .pretrained import TRAIN_WORLDS

    if cfg.cube:
        return Cube(open_cube(cfg.cube).ds.load())
    seeds, size = TRAIN_WORLDS[cfg.preset]
    seed = DEFAULT_SEED if cfg.seed is None else cfg.seed
    cfg.seed = seed
    if seed in seeds:
        raise ValueError(f"world {seed} is a training world of preset {cfg.preset!r}: {seeds}")
    return Cube(make_world(seed=seed, size=size)[0].load())


def task_samples(task, cube, split, preset: str):
    """The fixed ``(finetune, test)`` samples of ``task`` in the evaluation of ``preset``
    (sizes of :data:`SIZES`, seeds ``1000 + task.samples`` and ``2000 + task.samples``)."""
    from .pretrained import eval_train_config

    n_train, n_test, _ = SIZES[preset]
    model_cfg, _ = eval_train_config(preset, "kgvsf")
    return (task.draw(cube, split, "finetune", model_cfg, n_train, 1000 + task.samples),
            task.draw(cube, split, "test", model_cfg, n_test, 2000 + task.samples))


def _order(cfg: EvalConfig, pretrain_seed: int):
    """Encoders in the order to evaluate them, chosen as we go: already pretrained ones first,
    then ones nobody is pretraining, then ones another process is pretraining (waited for)."""
    from .pretrained import _finished, run_dir

    left = list(cfg.encoders)
    while left:
        def rank(e: str) -> int:
            folder = run_dir(cfg.cache, cfg.preset, e, pretrain_seed)
            if e == "random" or _finished(folder):
                return 0
            return 2 if folder.with_name(folder.name + ".lock").exists() else 1
        enc = min(left, key=lambda e: (rank(e), left.index(e)))
        left.remove(enc)
        yield enc


def run_evaluation(cfg: EvalConfig, *, progress: bool = False) -> Path:
    """Run (or continue) the evaluation and write the table; returns the output folder."""
    from ..tasks import make_split
    from .pretrained import _finished, load_or_pretrain, run_dir, training_worlds
    from .table import write_table

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    cells_path = out / "cells.jsonl"
    done = {cell_key(r) for r in load_cells(cells_path)}
    proto = SIZES[cfg.preset][2]
    t0 = time.perf_counter()
    cube = evaluation_cube(cfg)
    split = make_split(cube)
    _log(f"evaluation world ready ({time.perf_counter() - t0:.0f} s); {split.describe()}")
    data, drawn = {}, {}
    for name in cfg.tasks:
        task = TASKS[name]
        key = (task.samples, task.months, task.gap)  # tasks that share samples draw once
        if key not in drawn:
            drawn[key] = task_samples(task, cube, split, cfg.preset)
        data[name] = drawn[key]
    _log(f"task samples drawn ({time.perf_counter() - t0:.0f} s)")
    if cfg.peers:
        _peer_cells(cfg, cube, split, data, cells_path, done)
    cases = None
    worlds = None
    for ps in (() if cfg.peers_only else cfg.pretrain_seeds):
        main_only = ps != cfg.pretrain_seeds[0]  # further seeds: the main protocol only
        for enc in _order(cfg, ps):
            base = {"encoder": enc, "pretrain_seed": ps}
            if main_only:
                grid = [(name, "frozen", 1.0, s) for name in cfg.tasks for s in cfg.seeds]
            else:
                grid = [(name, p, b, s) for name in cfg.tasks for p in cfg.protocols
                        for b in (cfg.budgets if p == "frozen" else cfg.finetune_budgets)
                        for s in cfg.seeds]
            todo = [g for g in grid if cell_key({**base, "task": g[0], "protocol": g[1],
                                                 "budget": g[2], "seed": g[3]}) not in done]
            if "future_image" in cfg.tasks and cell_key(
                    {**base, "task": "future_image", "protocol": "native", "budget": 1.0,
                     "seed": 0}) not in done:
                todo.append(("future_image", "native", 1.0, 0))
            cf_todo = cfg.what_if and any(
                cell_key({**base, "task": "counterfactual", "protocol": m, "budget": 1.0,
                          "seed": s}) not in done for m in ("head", "native") for s in cfg.seeds)
            if not todo and not cf_todo:
                continue
            if worlds is None and (enc == "random" or not _finished(
                    run_dir(cfg.cache, cfg.preset, enc, ps))):
                worlds = training_worlds(cfg.preset)
            ts = time.perf_counter()
            model = load_or_pretrain(cfg.cache, cfg.preset, enc, ps, worlds=worlds,
                                     progress=progress)
            label = enc if ps == cfg.pretrain_seeds[0] else f"{enc} (pretraining seed {ps})"
            _log(f"{label}: encoder ready ({time.perf_counter() - ts:.0f} s)")
            cases = _encoder_cells(cfg, model, base, todo, cf_todo, data, cube, split, proto,
                                   cells_path, done, cases, label)
            del model
            write_table(load_cells(cells_path), out, cfg, with_plot=False)
    cfg.extra["seconds"] = time.perf_counter() - t0
    write_table(load_cells(cells_path), out, cfg)
    _log(f"done in {time.perf_counter() - t0:.0f} s -> {out}")
    return out


def _peer_cells(cfg: EvalConfig, cube, split, data: dict, cells_path: Path, done: set) -> None:
    """Score the peers on every task's fixed samples (cells ``peer:<name>``)."""
    from .peer_cells import PEER_ROWS, peer_cells
    from .peers import DriverSums, PixelHistory
    from .pretrained import TRAIN_WORLDS
    from .scorecard.training import fit_trees

    base = {"pretrain_seed": 0, "protocol": "frozen", "budget": 1.0, "seed": 0}
    todo = [(name, peer) for name in cfg.tasks for peer in PEER_ROWS.get(name, ())
            if peer in cfg.peers and cell_key({**base, "encoder": f"peer:{peer}",
                                               "task": name}) not in done]
    if not todo:
        return
    t0 = time.perf_counter()
    hist, sums = PixelHistory.from_cube(cube), DriverSums(cube)
    trees = None
    if any(peer == "trees" for _, peer in todo):  # learn where the encoders learnt
        trees, _, _ = fit_trees(cube, "weights", TRAIN_WORLDS[cfg.preset], where="",
                                test_start=cube.times[-1], cache=Path(cfg.cache) / "peers",
                                pixels_per_date=128, k_max=60)
    for name in dict.fromkeys(n for n, _ in todo):
        train, test = data[name]
        tc = time.perf_counter()
        for peer, metrics in peer_cells(name, train, test, cube, split, hist=hist, sums=sums,
                                        trees=trees):
            row = {**base, "encoder": f"peer:{peer}", "task": name,
                   "seconds": round(time.perf_counter() - tc, 2), **metrics}
            if peer in cfg.peers and cell_key(row) not in done:
                _append(cells_path, row)
                done.add(cell_key(row))
    _log(f"peers scored ({time.perf_counter() - t0:.0f} s)")


def _encoder_cells(cfg: EvalConfig, model, base: dict, todo: list, cf_todo: bool, data: dict,
                   cube, split, proto, cells_path: Path, done: set, cases, label: str):
    """Run one encoder's cells (``todo``) and, if ``cf_todo``, its counterfactual check;
    append each finished cell to ``cells_path``. Returns the check's cases (simulated once)."""
    from ..tasks import FutureImage, frozen_inputs, run_cell
    from ..tasks.future_image import native_forecast
    from ..tasks.protocol import budget_mask, fit_frozen
    from . import counterfactual_check as cc

    for name in cfg.tasks:
        task = TASKS[name]
        mine = [g for g in todo if g[0] == name and g[1] != "native"]
        native_todo = any(g[0] == name and g[1] == "native" for g in todo)
        if not mine and not native_todo and not (cf_todo and isinstance(task, FutureImage)):
            continue
        train, test = data[name]
        tt = time.perf_counter()
        inputs = frozen_inputs(model, task, train, test)
        for _, protocol, budget, seed in mine:
            tc = time.perf_counter()
            metrics = run_cell(task, model, train, test, protocol=protocol, budget=budget,
                               seed=seed, cfg=proto, inputs=inputs)
            row = {**base, "task": name, "protocol": protocol, "budget": budget,
                   "seed": seed, "seconds": round(time.perf_counter() - tc, 2), **metrics}
            _append(cells_path, row)
            done.add(cell_key(row))
        _log(f"{label}: {name} {len(mine)} cells ({time.perf_counter() - tt:.0f} s)")
        if native_todo:
            pred = native_forecast(model, test)
            row = {**base, "task": name, "protocol": "native", "budget": 1.0, "seed": 0,
                   **task.metrics(pred, test, test.part_pixels)}
            _append(cells_path, row)
            done.add(cell_key(row))
        if cf_todo and isinstance(task, FutureImage):
            if cases is None:
                tc = time.perf_counter()
                cases = cc.prepare_cases(cube, split)
                _log(f"counterfactual worlds simulated ({time.perf_counter() - tc:.0f} s)")
            tc = time.perf_counter()
            native = {c.name: cc.native_change(model, cube, c) for c in cases}
            for seed in cfg.seeds:
                head = fit_frozen(task, inputs.train, task.target(train),
                                  budget_mask(train.part_pixels, 1.0, seed), seed, proto)
                for method in ("head", "native"):
                    per = []
                    for c in cases:
                        change = (cc.head_change(model, head, cube, c) if method == "head"
                                  else native[c.name])
                        per.append({"scenario": c.name, "k": c.k,
                                    **cc.change_metrics(change, c.true_change, c.pixels)})
                    means = {m: float(np.nanmean([p[m] for p in per]))
                             for m in ("correlation", "rmse", "same_sign")}
                    row = {**base, "task": "counterfactual", "protocol": method,
                           "budget": 1.0, "seed": seed, **means, "scenarios": per}
                    if cell_key(row) in done:
                        continue
                    _append(cells_path, row)
                    done.add(cell_key(row))
            _log(f"{label}: counterfactual check ({time.perf_counter() - tc:.0f} s)")
    return cases
