"""Training and validation batches for pretraining, split by calendar year.

Validation holds out one calendar year of every cube (``TrainConfig.val_year``, by default each
cube's last year); training samples come from the other years. Both are cut by
:meth:`~kgvsf_explore.cube.cube.Cube.sel_time`, so no sample's context, drivers or target crosses
into the other split.

The training stream is *seekable*: batch ``n`` is a pure function of ``(seed, rank, n)``, so a
resumed run continues with exactly the batches an uninterrupted one would have drawn, without
replaying the ones before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import schema
from ..cube.cube import Cube
from ..cube.sampler import Sampler

if TYPE_CHECKING:
    import torch.utils.data as tud
    import xarray as xr

    from ..models.config import ModelConfig, TrainConfig

__all__ = [
    "SINGLE_YEAR_VAL_FRACTION",
    "VAL_SEED",
    "TrainStream",
    "make_loaders",
    "normalisation_stats",
    "split_years",
    "variant_pairs",
    "with_stats",
]

#: Seed of the validation samples: the same for every run, seed and objective, so that the
#: validation losses of different runs are computed on the same batches.
VAL_SEED = 20240727

Batch = dict[str, Any]


#: Cubes up to this many bytes in all are loaded into memory for training by default.
IN_MEMORY_BYTES = 2 * 2**30

#: Cubes left on disk are read in blocks of this many tiles a side (rounded up to whole
#: storage chunks) with every image date, one read per block ...
BLOCK_TILES = 4
#: ... and each block serves this many consecutive batches (``benchmarks/bench_train.py``).
BLOCK_REUSE = 8


def _in_memory(cubes: list[Cube], in_memory: bool | None) -> list[Cube]:
    """The cubes loaded into memory when asked, or by default when they are small enough."""
    if in_memory is None:
        in_memory = sum(c.ds.nbytes for c in cubes) <= IN_MEMORY_BYTES
    return [c.load() for c in cubes] if in_memory else cubes


def _as_cubes(cubes: Cube | xr.Dataset | Sequence[Cube | xr.Dataset]) -> list[Cube]:
    """A list of :class:`Cube` from one cube, one dataset or a sequence of them."""
    items = [cubes] if isinstance(cubes, Cube) or not isinstance(cubes, Sequence) else cubes
    out = [c if isinstance(c, Cube) else Cube(c) for c in items]
    if not out:
        raise ValueError("no cube given: pass a Cube or a non-empty list of cubes")
    return out


def split_years(cube: Cube, val_year: int | None = None) -> tuple[list[Cube], Cube, int]:
    """Split a cube by calendar year into training pieces and the validation year.

    Parameters
    ----------
    cube
        The cube to split.
    val_year
        Year held out for validation; None: the cube's last image year, or, for a cube whose
        images all lie in one calendar year (a single season of a user's own data), the last
        :data:`SINGLE_YEAR_VAL_FRACTION` of its image period.

    Returns
    -------
    train, val, year
        The training pieces (the years before and/or after ``year``; two pieces when ``year``
        lies in the middle), the validation cube and the held-out year. In the single-year
        case the training piece ends the day before the validation period starts, so no
        sample's context, drivers or target crosses the cut.

    Raises
    ------
    ValueError
        If ``val_year`` holds no image date, or no image date lies outside it.
    """
    years = sorted({int(y) for y in cube.times.year})
    if not years:
        raise ValueError("the cube has no image dates")
    year = years[-1] if val_year is None else int(val_year)
    if len(years) == 1 and val_year is None:
        return _split_dates(cube, year)
    if year not in years:
        raise ValueError(f"val_year={year} holds no image date; the cube's years are {years}")
    train: list[Cube] = []
    if years[0] < year:
        train.append(cube.sel_time(None, f"{year - 1}-12-31"))
    if years[-1] > year:
        train.append(cube.sel_time(f"{year + 1}-01-01", None))
    if not train:
        raise ValueError(
            f"the cube only covers {year}, which is held out for validation; training needs at "
            "least one more calendar year (or set TrainConfig.val_year)"
        )
    return train, cube.sel_time(f"{year}-01-01", f"{year}-12-31"), year


#: A cube of one calendar year holds out the last this fraction of its image period.
SINGLE_YEAR_VAL_FRACTION = 0.3


def _split_dates(cube: Cube, year: int) -> tuple[list[Cube], Cube, int]:
    """Hold out the last :data:`SINGLE_YEAR_VAL_FRACTION` of a one-year cube's image period."""
    import pandas as pd

    times = cube.times
    first, last = times[0].normalize(), times[-1].normalize()
    cut = last - pd.Timedelta(days=int((last - first).days * SINGLE_YEAR_VAL_FRACTION))
    if (times < cut).sum() < 2 or (times >= cut).sum() < 2:
        raise ValueError(
            f"the cube has {len(times)} image date(s), all in {year}: too few to hold the last "
            f"{SINGLE_YEAR_VAL_FRACTION:.0%} of its period out for validation; ingest more dates"
        )
    train = cube.sel_time(None, str((cut - pd.Timedelta(days=1)).date()))
    return [train], cube.sel_time(str(cut.date()), None), year


def normalisation_stats(
    cubes: Cube | xr.Dataset | Sequence[Cube | xr.Dataset], val_year: int | None = None
) -> dict[str, Any]:
    """Band and driver mean/std over the training years of one or several cubes.

    Bands are summarised over valid (cloud-free, finite, in-region) pixels, drivers over every
    day and native cell (see :meth:`~kgvsf_explore.cube.cube.Cube.stats`); the statistics of
    several cubes (and of the pieces before and after a mid-series validation year) are pooled
    by count. A standard deviation that is zero or not finite (a constant driver, e.g. no snow)
    is replaced by 1, so normalising never divides by zero.

    Parameters
    ----------
    cubes
        A cube or a list of cubes.
    val_year
        The held-out year (as in :func:`make_loaders`); None: each cube's last year.

    Returns
    -------
    dict
        ``{"mean": {name: float}, "std": {name: float}, "count": {name: int},
        "bands": (...), "drivers": (...), "band_mean": (...), "band_std": (...),
        "driver_mean": (...), "driver_std": (...)}``; the tuples follow the schema order of
        the variables present in every cube. JSON-serialisable after ``tuple -> list``.
    """
    cube_list = _as_cubes(cubes)
    n: dict[str, float] = {}
    s1: dict[str, float] = {}
    s2: dict[str, float] = {}
    for cube in cube_list:
        pieces, _, _ = split_years(cube, val_year)
        for piece in pieces:
            st = piece.stats()
            for name in (*piece.bands, *piece.driver_names):
                c = float(st.count.get(name, 0))
                if c <= 0:
                    continue
                m, s = float(st.mean[name]), float(st.std[name])
                n[name] = n.get(name, 0.0) + c
                s1[name] = s1.get(name, 0.0) + c * m
                s2[name] = s2.get(name, 0.0) + c * (s * s + m * m)
    mean = {k: s1[k] / n[k] for k in n}
    std: dict[str, float] = {}
    for k in n:
        var = s2[k] / n[k] - mean[k] ** 2
        sd = math.sqrt(max(var, 0.0))
        std[k] = sd if math.isfinite(sd) and sd > 1e-12 else 1.0
    bands = tuple(b for b in cube_list[0].bands if all(b in c.bands for c in cube_list) and b in n)
    drivers = tuple(
        d for d in cube_list[0].driver_names if all(d in c.driver_names for c in cube_list)
        and d in n
    )
    return {
        "mean": mean,
        "std": std,
        "count": {k: int(v) for k, v in n.items()},
        "bands": bands,
        "drivers": drivers,
        "band_mean": tuple(mean[b] for b in bands),
        "band_std": tuple(std[b] for b in bands),
        "driver_mean": tuple(mean[d] for d in drivers),
        "driver_std": tuple(std[d] for d in drivers),
    }


def with_stats(model_cfg: ModelConfig, stats: dict[str, Any]) -> ModelConfig:
    """``model_cfg`` with the normalisation statistics of :func:`normalisation_stats`.

    Values are matched by name to ``model_cfg.bands`` and ``model_cfg.drivers`` (through
    ``stats["mean"]``/``stats["std"]``); without those dicts the tuples ``band_mean`` etc. are
    used as they are.

    A band no cube observed (e.g. Landsat's missing red edge) keeps the value ``model_cfg``
    already has (the start checkpoint's, or the configuration's typical reflectance): the model
    never sees it as input, only its learned "missing" embedding.

    Raises
    ------
    ValueError
        If a driver of the model, or every band, has no statistics.
    """
    if "mean" in stats and "std" in stats:
        mean, std = stats["mean"], stats["std"]
        missing = [v for v in model_cfg.drivers if v not in mean]
        if missing or not any(b in mean for b in model_cfg.bands):
            raise ValueError(
                f"no normalisation statistics for {missing or list(model_cfg.bands)}: the "
                f"cubes lack these variables (statistics exist for {sorted(mean)})"
            )
        old_mean = dict(zip(model_cfg.bands, model_cfg.band_mean, strict=True))
        old_std = dict(zip(model_cfg.bands, model_cfg.band_std, strict=True))
        return replace(
            model_cfg,
            band_mean=tuple(float(mean.get(b, old_mean[b])) for b in model_cfg.bands),
            band_std=tuple(float(std.get(b, old_std[b])) for b in model_cfg.bands),
            driver_mean=tuple(float(mean[d]) for d in model_cfg.drivers),
            driver_std=tuple(float(std[d]) for d in model_cfg.drivers),
        )
    return replace(
        model_cfg,
        band_mean=tuple(float(v) for v in stats["band_mean"]),
        band_std=tuple(float(v) for v in stats["band_std"]),
        driver_mean=tuple(float(v) for v in stats["driver_mean"]),
        driver_std=tuple(float(v) for v in stats["driver_std"]),
    )


def _seed(*parts: int) -> int:
    """A 32-bit seed mixing ``parts`` (distinct parts give independent streams)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@dataclass
class _Source:
    """One sampler's dataset, batched whole (one batch per epoch)."""

    sampler: Sampler
    dataset: tud.IterableDataset

    def batch(self, index: int) -> Batch:
        """Batch ``index`` of this source: a pure function of the sampler seed and index.

        The dataset's items (``sampler.n_samples`` = the batch size) are collated by torch's
        ``default_collate`` in this process, as a ``DataLoader`` without workers would do,
        without building a loader iterator for every batch.
        """
        from torch.utils.data import default_collate

        self.dataset.set_epoch(index)  # type: ignore[attr-defined]
        return default_collate(list(self.dataset))


def _source(sampler: Sampler, block_reuse: int = 1) -> _Source:
    from ..cube.sampler import _dataset_class

    # reads from memory or in blocks are cheap and the machine is small: no worker processes
    return _Source(sampler, _dataset_class()(sampler, block_reuse=block_reuse))


@dataclass
class _PairSource:
    """Paired batches: tiles, start dates and horizons drawn on a world (``first``) and read
    from it and from a weather variant of it (``second``), for the paired-variant loss.

    Batch ``index`` holds ``n_samples // 2`` samples of the world followed by the same picks
    read from the variant; ``pair_of`` gives each sample's partner. A variant changes the
    weather in a few windows only, and a pair whose weather is the same throughout gives both
    forecasts the same inputs (nothing to learn), so picks are redrawn (up to
    :data:`PAIR_TRIES` times) until the weather differs somewhere from
    :data:`PAIR_MEMORY_DAYS` before the context up to the target day (the land keeps the
    mark of a drought or a wet spell for a season).

    Cubes left on disk (samplers with a ``block``) are read as the unpaired sources read them:
    one block of both cubes, the same window, loaded whole and kept for ``block_reuse``
    consecutive batches, so memory is bounded by two blocks whatever the number of variants.
    """

    first: Sampler
    second: Sampler
    block_reuse: int = 1

    def __post_init__(self) -> None:
        from ..world.variants import weather_differs

        if not self.first.cube.times.equals(self.second.cube.times):
            raise ValueError("a world and its weather variant must have the same image dates "
                             "to be paired")
        differs = weather_differs(self.first.cube.ds, self.second.cube.ds,
                                  self.first.driver_names)
        #: days (from the piece's first) on which the weather of the two differs, cumulated
        self._changed = np.concatenate([[0], np.cumsum(differs)])
        self._lazy = self.first.block is not None and not (
            self.first._in_memory and self.second._in_memory)
        self._block: tuple[tuple[int, int], Sampler, Sampler] | None = None

    def _informative(self, p: int, q: int) -> bool:
        s = self.first
        d0 = max(0, int(s._img_day[max(0, p - s.context + 1)]) - PAIR_MEMORY_DAYS)
        d1 = int(s._img_day[q]) + 1
        return bool(self._changed[d1] > self._changed[d0])

    def _pick(self, first: Sampler, rng: np.random.Generator) -> tuple[int, int, int, int]:
        pick = first._pick(rng)
        for _ in range(PAIR_TRIES - 1):
            if self._informative(pick[2], pick[3]):
                break
            pick = first._pick(rng)
        return pick

    def _block_pair(self, block_rng: np.random.Generator,
                    n: int) -> tuple[tuple[int, int], Sampler, Sampler]:
        """The origin of one block (the same window of the world and of the variant) and
        samplers over it."""
        a, b = self.first, self.second
        ny, nx = a.cube.ds.sizes[schema.Y_DIM], a.cube.ds.sizes[schema.X_DIM]
        by, bx = a._block_shape()
        r0, c0 = a._block_origin(block_rng, ny - by, nx - bx)
        if self._block is None or self._block[0] != (r0, c0):
            self._block = ((r0, c0), a._block_sampler(r0, c0, by, bx, n),
                           b._block_sampler(r0, c0, by, bx, n))
        return self._block

    def batch(self, index: int) -> Batch:
        import torch
        from torch.utils.data import default_collate

        from ..cube.sampler import sample_to_tensors

        rng = np.random.default_rng([int(self.first.seed), int(index), PAIR_STREAM])
        n = max(1, self.first.n_samples // 2)
        first, second = self.first, self.second
        picks: list[tuple[int, int, int, int]] = []
        r0 = c0 = 0  # the block's origin: samples give rows and columns in the piece
        if self._lazy:  # `block_reuse` consecutive batches share a block of both cubes
            block_rng = np.random.default_rng(
                [int(self.first.seed), int(index) // self.block_reuse, PAIR_STREAM, 1])
            for _ in range(self.first.max_tries):
                (r0, c0), first, second = self._block_pair(block_rng, n)
                try:
                    picks = [self._pick(first, rng) for _ in range(n)]
                    break
                except RuntimeError:  # no valid tile in this block: try another one
                    continue
            if not picks:
                raise RuntimeError(
                    f"no block with a tile valid >= {self.first.min_valid} after "
                    f"{self.first.max_tries} blocks; lower min_valid or use a larger block")
        else:
            picks = [self._pick(first, rng) for _ in range(n)]
        pad = {"context": self.first.context, "drivers_len": self.first.max_drivers_len}
        items = [sample_to_tensors(s.read_at(*pick)._replace(row=pick[0] + r0,
                                                             col=pick[1] + c0), **pad)
                 for s in (first, second) for pick in picks]
        batch = default_collate(items)
        batch["pair_of"] = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
        return batch


#: Stream number mixed into the seeds of paired batches.
PAIR_STREAM = 2
#: Draws per pair before one whose weather is the same on both sides is kept.
PAIR_TRIES = 20
#: A weather change this many days before a pair's context still counts as a difference.
PAIR_MEMORY_DAYS = 120


def variant_pairs(cubes: Sequence[Cube]) -> list[tuple[int, int]]:
    """``(world, variant)`` index pairs among simulated cubes: a variant is a cube of the same
    world (``kgvsf_seed``, ``kgvsf_size`` and generator version in its attributes) simulated
    under a weather scenario (``kgvsf_scenario``), the world the one without a scenario."""
    def key(c: Cube) -> tuple[Any, ...] | None:
        a = c.ds.attrs
        if a.get("kgvsf_seed") in (None, ""):
            return None
        return (str(a["kgvsf_seed"]), str(a.get("kgvsf_size")),
                str(a.get("kgvsf_generator_version")))

    worlds: dict[tuple[Any, ...], int] = {}
    for i, c in enumerate(cubes):
        if key(c) is not None and not c.ds.attrs.get("kgvsf_scenario"):
            worlds.setdefault(key(c), i)  # type: ignore[arg-type]
    pairs = []
    for i, c in enumerate(cubes):
        k = key(c)
        if k in worlds and c.ds.attrs.get("kgvsf_scenario"):
            w = worlds[k]  # type: ignore[index]
            if not cubes[w].times.equals(c.times):
                raise ValueError(f"cube {i} is a weather variant of cube {w} but their image "
                                 "dates differ; pairs need the same dates")
            pairs.append((w, i))
    return pairs


class TrainStream:
    """An endless, seekable stream of training batches, round robin over the training samplers.

    Batch ``n`` comes from sampler ``n % S`` (``S`` samplers: one per cube, two for a cube
    whose validation year lies in the middle) and is that sampler's batch ``n // S``, drawn
    from a generator seeded with ``(sampler seed, n // S)``. Set :attr:`position` to seek.

    Parameters
    ----------
    sources
        The samplers with their loaders.
    position
        Index of the next batch.
    """

    def __init__(self, sources: list[_Source | _PairSource], position: int = 0) -> None:
        if not sources:
            raise ValueError("no training sampler")
        self.sources = sources
        self.position = int(position)

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        batch = self.batch(self.position)
        self.position += 1
        return batch

    def batch(self, n: int) -> Batch:
        """Batch ``n`` of the stream (does not move :attr:`position`)."""
        s = len(self.sources)
        return self.sources[n % s].batch(n // s)


def _check_vocabulary(cube: Cube, model_cfg: ModelConfig, i: int) -> None:
    """The cube's bands must be among the model's (missing ones are masked), its drivers the
    model's."""
    extra = [b for b in cube.bands if b not in model_cfg.bands]
    if extra:
        raise ValueError(
            f"cube {i} has bands {extra} the model does not know (it expects a subset of "
            f"{model_cfg.bands})"
        )
    if tuple(cube.driver_names) != tuple(model_cfg.drivers):
        raise ValueError(
            f"cube {i} has drivers {cube.driver_names} but the model expects {model_cfg.drivers}"
        )


def make_loaders(
    cubes: Cube | xr.Dataset | Sequence[Cube | xr.Dataset],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    rank: int = 0,
    world_size: int = 1,
    in_memory: bool | None = None,
    block: int | None = None,
    block_reuse: int = BLOCK_REUSE,
) -> tuple[TrainStream, list[Batch]]:
    """Training batches and fixed validation batches from one or several cubes.

    Parameters
    ----------
    cubes
        A :class:`~kgvsf_explore.cube.cube.Cube` or a list of cubes (e.g. several sample
        worlds); their bands and drivers must be the model's.
    model_cfg
        Gives the tile size, context length and forecast range of the samples.
    train_cfg
        Gives ``batch_size``, ``val_batches``, ``val_year`` and ``seed``.
    rank, world_size
        Under data-parallel training, each rank draws its own training stream (seeded with
        ``(seed, rank, sampler)``) and gets its share of the validation batches
        (``val[rank::world_size]``), so the union over ranks is the single-process list.
    in_memory
        Load the cubes into memory first (samples are drawn many times faster than from a
        zarr store: ``benchmarks/bench_train.py``). None: when they hold at most
        :data:`IN_MEMORY_BYTES` together; False keeps them lazy (bounded memory).
    block, block_reuse
        For cubes left on disk: the side in pixels of the blocks read whole (default
        :data:`BLOCK_TILES` tiles, rounded up to whole chunks; see
        :class:`~kgvsf_explore.cube.sampler.Sampler`) and how many consecutive batches each
        block serves. One read per ``block_reuse`` batches instead of dozens of chunk reads per
        sample; the price is that those batches come from one neighbourhood. Memory is bounded
        by one block (every image date of its bands and masks, every day of its drivers).

    Returns
    -------
    train, val
        An endless :class:`TrainStream` of batches (dicts of tensors from
        :func:`~kgvsf_explore.cube.sampler.sample_to_tensors`, batched by the default collate
        function) and the list of validation batches. Validation batches are drawn from the
        held-out year with :data:`VAL_SEED`, round robin over the cubes, independent of the
        training seed and objective, so every run is validated on the same batches.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    cube_list = _in_memory(_as_cubes(cubes), in_memory)
    kw = {
        "tile": model_cfg.tile,
        "context": model_cfg.context,
        "k_min": model_cfg.k_min,
        "k_max": model_cfg.k_max,
        "n_samples": train_cfg.batch_size,
        "bands": model_cfg.bands,  # bands the cube lacks come masked
        "truth": False,  # pretraining uses neither the cloud-free truth nor soil moisture
        "block": block or BLOCK_TILES * model_cfg.tile,  # only used by cubes left on disk
    }
    train_sources: list[_Source | _PairSource] = []
    val_sources: list[_Source] = []
    pieces_of: list[list[Cube]] = []
    for i, cube in enumerate(cube_list):
        _check_vocabulary(cube, model_cfg, i)
        pieces, val_cube, year = split_years(cube, train_cfg.val_year)
        pieces_of.append(pieces)
        for j, piece in enumerate(pieces):
            seed = _seed(train_cfg.seed, rank, i, j)
            try:
                sampler = Sampler(piece, seed=seed, **kw)
            except ValueError as err:
                raise ValueError(f"cube {i}, training years (not {year}): {err}") from err
            train_sources.append(_source(sampler, block_reuse))
        try:
            sampler = Sampler(val_cube, seed=_seed(VAL_SEED, i), **kw)
        except ValueError as err:
            raise ValueError(f"cube {i}, validation year {year}: {err}") from err
        val_sources.append(_source(sampler))
    if train_cfg.pair_weight > 0:
        pairs = variant_pairs(cube_list)
        if not pairs:
            raise ValueError(
                "pair_weight > 0 needs weather variants of the training worlds (kgvsf "
                "pretrain --worlds ... --weather-variants 1 or more); none of the cubes is one")
        # one paired source per (variant, training piece): a third of the batches are pairs
        # when every world has one variant
        for w, v in pairs:
            for j, (a, b) in enumerate(zip(pieces_of[w], pieces_of[v])):
                seed = _seed(train_cfg.seed, rank, v, j, PAIR_STREAM)
                train_sources.append(_PairSource(Sampler(a, seed=seed, **kw),
                                                 Sampler(b, seed=seed, **kw), block_reuse))
    n_val = len(val_sources)
    val = [
        val_sources[b % n_val].batch(b // n_val)
        for b in range(rank, train_cfg.val_batches, world_size)
    ]
    return TrainStream(train_sources), val
