"""Pretraining from a corpus folder (``kgvsf make-corpus``), streaming, with bounded memory.

The corpus may hold hundreds of cubes; none is loaded whole. :class:`CorpusStream` keeps
``open_cubes`` *slots*; each slot opens one cube lazily (zarr, through dask), draws
``batches_per_cube`` batches from it (block reads, as
:func:`~kgvsf_explore.training.make_loaders` does for cubes left on disk) and then opens the
next. Memory is bounded by the slots' blocks, whatever the number of cubes.

Even sampling
    The training cubes are grouped into strata ``(climate, sensor, observed or intervention)``.
    The ``g``-th cube opened (``g = cycle * slots + slot``) comes from the stratum at position
    ``g mod S`` of a shuffled order of the ``S`` strata (a new order every ``S`` cubes), and is
    a random cube of that stratum: every stratum gets the same number of cubes, whatever its
    size.

Split by world and year
    The last tenth of the worlds (rounded up; none with a single world) are held out whole:
    consecutive worlds have different climates (``kgvsf make-corpus`` spreads them round
    robin), so with 40 worlds over four climates each climate has one validation world. Their
    observed-weather cubes' last year is the validation data. The other worlds train on
    every year but their last, observed and intervention cubes alike. So validation is on
    unseen worlds *and* an unseen year; :meth:`CorpusData.split` gives both lists (recorded
    in ``training_data.json``).

Paired variants (``TrainConfig.pair_weight > 0``, our extension)
    Every other batch is a paired batch (:class:`~kgvsf_explore.training.data._PairSource`):
    ``open_cubes`` more slots each open a training world's observed cube *and* one of its
    intervention cubes (the worlds in a shuffled order, a new one every cycle; the variant
    at random), read the same block of both and serve ``batches_per_cube`` paired batches.
    Memory stays bounded by the blocks, so a world may have as many variants as the disk
    holds.

Seekable
    Batch ``n`` is a pure function of ``(seed, rank, n)`` (slot ``n mod slots``, that slot's
    cube and batch index), so a resumed run continues with the batches an uninterrupted one
    would have drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cube.io import open_cube
from ..cube.sampler import Sampler
from .data import (
    BLOCK_REUSE,
    BLOCK_TILES,
    VAL_SEED,
    _check_vocabulary,
    _PairSource,
    _seed,
    _Source,
    _source,
    normalisation_stats,
    split_years,
)

if TYPE_CHECKING:
    from ..models.config import ModelConfig, TrainConfig

Batch = dict[str, Any]

#: Cubes open at once while streaming, and batches each serves before the next is opened.
OPEN_CUBES, BATCHES_PER_CUBE = 3, 16
#: Cubes (one per stratum, at most this many) whose training years give the normalisation
#: statistics (reading every cube of a large corpus would take as long as the training).
STATS_CUBES = 8


@dataclass
class CorpusData:
    """A corpus folder read for pretraining; pass it to :func:`~kgvsf_explore.training.pretrain`
    in place of the cubes.

    Parameters
    ----------
    folder
        A folder written by ``kgvsf make-corpus`` (with ``manifest.json``).
    open_cubes, batches_per_cube
        Streaming: cubes open at once, batches drawn from each before the next one is opened.
    kinds
        Train only on the interventions of these kinds (the corpus' ``KINDS``: ``shift``,
        ``scale``, ``swap``, ``spells``, ``other-world``); observed-weather cubes are always
        kept. ``None`` (the default) keeps every cube.
    """

    folder: Path
    open_cubes: int = OPEN_CUBES
    batches_per_cube: int = BATCHES_PER_CUBE
    kinds: tuple[str, ...] | None = None
    cubes: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from ..world.corpus import CorpusError, read_manifest

        self.folder = Path(self.folder)
        manifest = read_manifest(self.folder)
        self.cubes = [c for c in manifest.get("cubes", [])
                      if (self.folder / c["path"] / "cube.zarr").exists()]
        if self.kinds is not None:
            self.kinds = tuple(self.kinds)
            known = sorted({self.kind(c) for c in self.cubes} - {"observed"})
            unknown = sorted(set(self.kinds) - set(known))
            if unknown or not self.kinds:
                raise CorpusError(
                    f"intervention kind(s) {unknown or self.kinds!r} not in {self.folder}; "
                    f"it holds {', '.join(known) or 'no intervention'}")
            self.cubes = [c for c in self.cubes
                          if self.kind(c) == "observed" or self.kind(c) in self.kinds]
        if not self.cubes:
            raise CorpusError(f"{self.folder} lists no finished cube; run 'kgvsf make-corpus "
                              f"--out {self.folder} ...' (it resumes) first")
        if self.open_cubes < 1 or self.batches_per_cube < 1:
            raise ValueError("open_cubes and batches_per_cube must be at least 1")
        worlds = sorted({int(c["world"]) for c in self.cubes})
        # the last tenth of the worlds (consecutive worlds have different climates)
        held = worlds[-math.ceil(len(worlds) / 10):] if len(worlds) > 1 else []
        self.val_worlds = held
        self.train = [c for c in self.cubes if int(c["world"]) not in held]
        val_from = held or worlds
        self.val = [c for c in self.cubes
                    if int(c["world"]) in val_from and int(c["variant"]) == 0]
        keys = sorted({self.stratum(c) for c in self.train})
        self.strata = {k: [c for c in self.train if self.stratum(c) == k] for k in keys}

    @staticmethod
    def kind(entry: dict[str, Any]) -> str:
        """The intervention kind of a manifest entry (``"observed"`` for variant 0)."""
        if int(entry["variant"]) == 0:
            return "observed"
        return str((entry.get("scenario") or {}).get("kind", "unknown"))

    @staticmethod
    def stratum(entry: dict[str, Any]) -> tuple[str, str, str]:
        """``(climate, sensor, "observed" | "intervention")`` of a manifest entry."""
        return (str(entry["climate"]), str(entry["sensor"]),
                "observed" if int(entry["variant"]) == 0 else "intervention")

    def open(self, entry: dict[str, Any]):
        """The cube of a manifest entry, opened lazily."""
        return open_cube(self.folder / entry["path"])

    def split(self, val_year: int | None = None) -> dict[str, Any]:
        """The world/year split, as recorded in ``training_data.json``."""
        years = sorted({int(y) for y in self.open(self.cubes[0]).times.year})
        held_year = years[-1] if val_year is None else int(val_year)
        return {
            "corpus": str(self.folder),
            "cubes": len(self.cubes),
            "train_worlds": sorted({int(c["world"]) for c in self.train}),
            "train_years": [y for y in years if y != held_year],
            "train_cubes": len(self.train),
            "val_worlds": sorted({int(c["world"]) for c in self.val}),
            "val_year": held_year,
            "val_cubes": [c["path"] for c in self.val],
            "strata": {"/".join(k): len(v) for k, v in self.strata.items()},
            "kinds": sorted({self.kind(c) for c in self.train} - {"observed"}),
            "sampling": f"strata evenly, {self.open_cubes} cubes open, "
                        f"{self.batches_per_cube} batches per cube",
        }

    def variants_of(self) -> dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Training worlds with weather variants: ``{world: (observed entry, [variant
        entries])}``, for the paired-variant loss."""
        out: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for c in self.train:
            if int(c["variant"]) != 0:
                continue
            variants = [v for v in self.train
                        if int(v["world"]) == int(c["world"]) and int(v["variant"]) != 0]
            if variants:
                out[int(c["world"])] = (c, variants)
        return out

    def stats(self, val_year: int | None = None) -> dict[str, Any]:
        """Normalisation statistics from the training years of one cube per stratum (at most
        :data:`STATS_CUBES`), read lazily one at a time."""
        picks = [v[0] for v in self.strata.values()][:STATS_CUBES] or self.val[:1]
        return normalisation_stats([self.open(c) for c in picks], val_year)

    def loaders(
        self, model_cfg: ModelConfig, train_cfg: TrainConfig, *, rank: int = 0,
        world_size: int = 1,
    ) -> tuple[CorpusStream, list[Batch]]:
        """The training stream and the validation batches (as
        :func:`~kgvsf_explore.training.make_loaders` returns them)."""
        kw = _sampler_kwargs(model_cfg, train_cfg)
        got: dict[int, Batch] = {}
        n_val = len(self.val)
        wanted = list(range(rank, train_cfg.val_batches, world_size))
        for i, entry in enumerate(self.val):  # one validation cube open at a time
            mine = [b for b in wanted if b % n_val == i]
            if not mine:
                continue
            cube = self.open(entry)
            _check_vocabulary(cube, model_cfg, i)
            _, val_cube, _ = split_years(cube, train_cfg.val_year)
            src = _source(Sampler(val_cube, seed=_seed(VAL_SEED, i), **kw))
            got.update({b: src.batch(b // n_val) for b in mine})
            del cube, val_cube, src
        val = [got[b] for b in wanted]
        train_entries = self.train or self.val
        if train_cfg.pair_weight > 0 and not self.variants_of():
            raise ValueError(
                f"pair_weight > 0 needs weather variants of the training worlds, and "
                f"{self.folder} has none; make the corpus with 'kgvsf make-corpus "
                "--weather-variants N' (N >= 1)")
        return CorpusStream(self, train_entries, model_cfg, train_cfg, rank), val


def _sampler_kwargs(model_cfg: ModelConfig, train_cfg: TrainConfig) -> dict[str, Any]:
    return {
        "tile": model_cfg.tile,
        "context": model_cfg.context,
        "k_min": model_cfg.k_min,
        "k_max": model_cfg.k_max,
        "n_samples": train_cfg.batch_size,
        "bands": model_cfg.bands,
        "truth": False,
        "block": BLOCK_TILES * model_cfg.tile,
    }


class CorpusStream:
    """An endless, seekable stream of training batches over a corpus (see the module text).

    Set :attr:`position` to seek; :attr:`opened` counts the cubes opened so far (tests).
    """

    def __init__(self, corpus: CorpusData, entries: list[dict[str, Any]],
                 model_cfg: ModelConfig, train_cfg: TrainConfig, rank: int = 0,
                 position: int = 0) -> None:
        self.corpus = corpus
        self.strata = list(corpus.strata.values()) if corpus.train else [entries]
        self.model_cfg, self.train_cfg, self.rank = model_cfg, train_cfg, int(rank)
        self.kw = _sampler_kwargs(model_cfg, train_cfg)
        self.position = int(position)
        self.slots: dict[int, tuple[int, _Source]] = {}
        #: paired slots (pair_weight > 0): world and variant read side by side
        self.pairs = corpus.variants_of() if train_cfg.pair_weight > 0 else {}
        self.pair_slots: dict[int, tuple[int, _PairSource]] = {}
        self.opened = 0

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        batch = self.batch(self.position)
        self.position += 1
        return batch

    def entry(self, g: int) -> dict[str, Any]:
        """The manifest entry of the ``g``-th cube opened (any slot)."""
        s = len(self.strata)
        seed = self.train_cfg.seed
        order = np.random.default_rng(_seed(seed, self.rank, g // s, 11)).permutation(s)
        stratum = self.strata[int(order[g % s])]
        pick = np.random.default_rng(_seed(seed, self.rank, g, 13)).integers(len(stratum))
        return stratum[int(pick)]

    def _slot(self, n: int) -> tuple[int, int, int]:
        """Slot of the ``n``-th batch of a kind, the count ``g`` of the cube(s) it reads
        (over all slots) and the batch's index within that cube's turn."""
        k, per = self.corpus.open_cubes, self.corpus.batches_per_cube
        slot, local = n % k, n // k
        return slot, (local // per) * k + slot, local % per

    @property
    def _reuse(self) -> int:
        """Batches that share one block of a cube (never more than a cube's turn)."""
        return min(BLOCK_REUSE, self.corpus.batches_per_cube)

    def batch(self, n: int) -> Batch:
        """Batch ``n`` of the stream (does not move :attr:`position`)."""
        if self.pairs:  # every other batch is a paired one
            if n % 2:
                return self._pair_batch(n // 2)
            n //= 2
        slot, g, within = self._slot(n)
        held = self.slots.get(slot)
        if held is None or held[0] != g:
            self.slots.pop(slot, None)  # close the slot's previous cube first
            entry = self.entry(g)
            cube = self.corpus.open(entry)
            _check_vocabulary(cube, self.model_cfg, g)
            pieces, _, _ = split_years(cube, self.train_cfg.val_year)
            piece = pieces[int(np.random.default_rng(_seed(g, 17)).integers(len(pieces)))]
            sampler = Sampler(piece, seed=_seed(self.train_cfg.seed, self.rank, g, 19),
                              **self.kw)
            self.slots[slot] = (g, _source(sampler, self._reuse))
            self.opened += 1
        return self.slots[slot][1].batch(within)

    def pair_entries(self, g: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The world's and the variant's manifest entries of the ``g``-th pair opened."""
        worlds = sorted(self.pairs)
        s, seed = len(worlds), self.train_cfg.seed
        order = np.random.default_rng(_seed(seed, self.rank, g // s, 23)).permutation(s)
        base, variants = self.pairs[worlds[int(order[g % s])]]
        pick = np.random.default_rng(_seed(seed, self.rank, g, 29)).integers(len(variants))
        return base, variants[int(pick)]

    def _pair_batch(self, m: int) -> Batch:
        """Paired batch ``m`` (the stream's batch ``2 m + 1``)."""
        slot, g, within = self._slot(m)
        held = self.pair_slots.get(slot)
        if held is None or held[0] != g:
            self.pair_slots.pop(slot, None)
            base, variant = self.pair_entries(g)
            cubes = [self.corpus.open(e) for e in (base, variant)]
            for c in cubes:
                _check_vocabulary(c, self.model_cfg, g)
            split = [split_years(c, self.train_cfg.val_year)[0] for c in cubes]
            j = int(np.random.default_rng(_seed(g, 31)).integers(len(split[0])))
            seed = _seed(self.train_cfg.seed, self.rank, g, 37)
            self.pair_slots[slot] = (g, _PairSource(
                Sampler(split[0][j], seed=seed, **self.kw),
                Sampler(split[1][j], seed=seed, **self.kw), self._reuse))
            self.opened += 2
        return self.pair_slots[slot][1].batch(within)


def is_corpus(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder with a corpus ``manifest.json``."""
    return (Path(path) / "manifest.json").is_file()
