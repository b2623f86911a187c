"""Random training samples (context images + drivers -> future image) for a forecasting model.

A :class:`Sampler` draws a random tile and a random image date ``t``, takes the images up to and
including ``t`` as context and an image ``k`` days later as target, together with the tile-mean
daily drivers from the first context date through the target date. Only the slices a sample
needs are read (``.isel(...)`` then ``.values``), so lazily opened cubes are never loaded whole.

``SamplerDataset`` (a :class:`torch.utils.data.IterableDataset`) wraps a sampler for PyTorch;
importing it is what imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from .. import schema
from ._util import crop_met_grid
from .arrays import WindowReader
from .cube import REGION_MASK, Cube, missing_bands, observed_bands
from .regrid import TileDrivers, drivers_on_pixels

__all__ = ["Sample", "Sampler", "sample_to_tensors"]  # + SamplerDataset, built lazily


class Sample(NamedTuple):
    """One training example. ``L`` context images, ``C`` bands (the sampler's full band list,
    observed or not), ``H`` x ``W`` tile pixels, ``D`` days of drivers and ``V`` drivers.

    Attributes
    ----------
    images
        float32 ``(L, C, H, W)``: context images, oldest first, the last one at date ``t``;
        NaN wherever ``mask`` is False and in every band the cube never observed
        (``band_mask`` False). ``1 <= L <= context``.
    mask
        bool ``(L, H, W)``: True where the pixel is valid (not cloudy, every observed band
        finite, inside the region of a clipped cube). A band the cube lacks does not make a
        pixel invalid.
    image_offsets
        int64 ``(L,)``: days of each context image relative to ``t`` (``<= 0``, last is 0).
    doy
        int64 ``(L,)``: day of year (1-366) of each context image.
    drivers
        float32 ``(D, V)``: tile-mean daily drivers from the first context image's day through
        the target day inclusive (``D = -image_offsets[0] + k + 1``); ``V`` follows
        :data:`~kgvsf_explore.schema.DRIVERS` order, restricted to the drivers present.
    t_index
        Index of day ``t`` within ``drivers`` (``drivers[t_index]`` is day ``t``).
    k
        Days from ``t`` to the target date (``k_min <= k <= k_max``, ``k > 0``).
    target
        float32 ``(C, H, W)``: the image at ``t + k``, NaN wherever ``target_mask`` is False
        and in the bands the cube never observed.
    target_mask
        bool ``(H, W)``: valid pixels of the target.
    target_true
        float32 ``(C, H, W)`` cloud-free truth at ``t + k`` (simulated cubes), or None; NaN in
        a band without a truth variable.
    soil_moisture_target
        float32 ``(H, W)``: soil moisture (m3/m3) on day ``t + k``; all NaN if the cube has none.
    row, col
        Offset of the tile in the cube (pixels).
    t
        ``np.datetime64`` day of the last context image.
    band_mask
        bool ``(C,)``: True for the bands the cube observed, False for those it lacks (absent
        or listed in ``attrs["kgvsf_missing_bands"]``); None means every band is observed.
    """

    images: np.ndarray
    mask: np.ndarray
    image_offsets: np.ndarray
    doy: np.ndarray
    drivers: np.ndarray
    t_index: int
    k: int
    target: np.ndarray
    target_mask: np.ndarray
    target_true: np.ndarray | None
    soil_moisture_target: np.ndarray
    row: int
    col: int
    t: np.datetime64
    band_mask: np.ndarray | None = None


class Sampler:
    """Draw random, reproducible training samples from a cube.

    Parameters
    ----------
    cube
        A :class:`~kgvsf_explore.cube.cube.Cube` (or a schema-following ``xarray.Dataset``).
    tile
        Tile size in pixels (``H = W = tile``).
    context
        Maximum number of context images (dates up to and including ``t``).
    k_min, k_max
        Range of the forecast horizon in days (inclusive).
    seed
        Seed of the random generator: the same seed gives the same samples.
    min_valid
        Minimum valid fraction of the tile on date ``t`` and on the target date.
    n_samples
        Number of samples one iteration (``for s in sampler``) yields.
    max_tries
        Random tiles tried for one sample before giving up with ``RuntimeError``.
    truth
        Read the cloud-free truth and the soil moisture of the target date (``target_true``,
        ``soil_moisture_target``); False leaves them out (None and NaN): pretraining uses
        neither, and they are a third of a sample's reads.
    bands
        The bands of every sample, in this order (default
        :data:`~kgvsf_explore.schema.BANDS`, the model's). Any subset of them may be missing
        from the cube (absent, or listed in ``attrs["kgvsf_missing_bands"]``): such a band is
        NaN in ``images``/``target``, False in ``band_mask``, and does not make a pixel
        invalid. A cube without any of them is refused.
    block
        For a cube that is not in memory: each call of :meth:`sample` (and each iteration)
        loads one random ``block`` x ``block`` pixel window with every image date in a single
        read, then draws its samples from it in memory (tiles inside the block; blocks that
        yield no valid tile are replaced by others). Much faster than reading every sample
        from the store (``benchmarks/bench_train.py``), at the cost of samples of one call
        sharing a neighbourhood; :func:`~kgvsf_explore.training.make_loaders` draws one block
        per batch. None (default) reads each sample on its own, so a lazy cube gives exactly
        the samples of the same cube in memory.

    Notes
    -----
    Each sample reads the tile's cloud mask and one band over all image dates (to find dates
    with enough valid pixels), then the context and target images, soil moisture and drivers.
    On a lazily opened store that is a few dozen chunk reads; a cube that fits in memory samples
    much faster after ``cube.compute()``. Results do not depend on chunking.
    """

    def __init__(
        self,
        cube: Cube | xr.Dataset,
        *,
        tile: int = 32,
        context: int = 8,
        k_min: int = 1,
        k_max: int = 60,
        seed: int = 0,
        min_valid: float = 0.2,
        n_samples: int = 1000,
        max_tries: int = 200,
        truth: bool = True,
        block: int | None = None,
        bands: Sequence[str] | None = None,
    ) -> None:
        if isinstance(cube, xr.Dataset):
            cube = Cube(cube)
        if tile < 1 or context < 1:
            raise ValueError(f"tile ({tile}) and context ({context}) must be >= 1")
        if not 1 <= k_min <= k_max:
            raise ValueError(f"need 1 <= k_min <= k_max, got k_min={k_min}, k_max={k_max}")
        if not 0.0 <= min_valid <= 1.0:
            raise ValueError(f"min_valid must be in [0, 1], got {min_valid}")
        self.cube = cube
        self.tile, self.context = int(tile), int(context)
        self.k_min, self.k_max = int(k_min), int(k_max)
        self.seed, self.min_valid = seed, float(min_valid)
        self.n_samples, self.max_tries = int(n_samples), int(max_tries)
        if block is not None and block < tile:
            raise ValueError(f"block ({block}) must be at least the tile size ({tile})")
        self.block = None if block is None else int(block)
        self.truth = bool(truth)
        self._last_block: tuple[tuple[int, int, int, int], Sampler] | None = None

        ds = cube.ds
        ny, nx = ds.sizes[schema.Y_DIM], ds.sizes[schema.X_DIM]
        if tile > ny or tile > nx:
            raise ValueError(f"tile={tile} is larger than the cube ({ny} x {nx} pixels)")
        #: Bands of every sample, observed or not.
        self.bands: tuple[str, ...] = tuple(schema.BANDS if bands is None else bands)
        if not self.bands:
            raise ValueError("bands must name at least one band")
        self.driver_names = cube.driver_names
        #: Bands the cube never observed (NaN in samples, False in ``band_mask``).
        self.missing_bands: tuple[str, ...] = tuple(missing_bands(ds, self.bands))
        #: Bands the samples read, in :attr:`bands` order.
        self.observed_bands: tuple[str, ...] = tuple(
            observed_bands(ds, self.bands, error=ValueError))
        self.band_mask = np.array([b in self.observed_bands for b in self.bands], dtype=bool)
        self._truth = [schema.truth_name(b) for b in self.bands]
        self._has_truth = truth and all(
            schema.truth_name(b) in ds.data_vars for b in self.observed_bands)
        self._ref = "B04" if "B04" in self.observed_bands else self.observed_bands[0]

        days = cube.days
        day_pos = days.get_indexer(cube.times.normalize())
        #: time indices of the images whose day lies on the daily axis, and that day's index
        self._img = np.flatnonzero(day_pos >= 0)
        self._img_day = day_pos[self._img].astype(np.int64)
        self._doy = cube.times[self._img].day_of_year.to_numpy().astype(np.int64)
        self._days = days.to_numpy()
        n = len(self._img)
        self._targets: list[np.ndarray] = []
        max_len = 0
        for p in range(n):
            k = self._img_day - self._img_day[p]
            q = np.flatnonzero((np.arange(n) > p) & (k >= k_min) & (k <= k_max))
            self._targets.append(q)
            if q.size:
                first = max(0, p - self.context + 1)
                max_len = max(max_len, int(self._img_day[q[-1]] - self._img_day[first] + 1))
        width = max(1, max(q.size for q in self._targets))
        #: the targets of every source date, padded: index (n, width) and where it is real
        self._target_pad = np.zeros((n, width), dtype=np.int64)
        self._target_ok = np.zeros((n, width), dtype=bool)
        for p, q in enumerate(self._targets):
            self._target_pad[p, : q.size] = q
            self._target_ok[p, : q.size] = True
        if not any(q.size for q in self._targets):
            raise ValueError(
                f"no pair of image dates {k_min}..{k_max} days apart within the drivers' days "
                f"({n} usable image dates); widen k_min/k_max or use a longer cube"
            )
        #: Longest drivers sequence any sample can have (for padding batches).
        self.max_drivers_len = max_len
        rx, ry = cube.res_xy
        self._x = np.asarray(ds[schema.X_DIM].values, dtype="float64")
        self._y = np.asarray(ds[schema.Y_DIM].values, dtype="float64")
        self._half = (rx / 2, ry / 2)
        self._reader = WindowReader(ds)
        self._table: TileDrivers | None = None  # whole-cube driver table (in-memory cubes)
        self._valid: np.ndarray | None = None  # summed-area table of valid pixels (in memory)
        self._in_memory = all(
            self._reader.in_memory(v)
            for v in (*self.driver_names, *self.observed_bands, schema.CLOUD_MASK, REGION_MASK)
            if v in ds.variables
        )

    def __len__(self) -> int:
        return self.n_samples

    def __iter__(self) -> Iterator[Sample]:
        """Yield :attr:`n_samples` samples; every iteration repeats the same samples."""
        return self._generate(np.random.default_rng(self.seed), self.n_samples)

    def sample(self, n: int | None = None, *, seed: int | None = None) -> list[Sample]:
        """``n`` samples (default :attr:`n_samples`) from a generator seeded with ``seed``
        (default: the sampler's seed), so the same call gives the same samples."""
        rng = np.random.default_rng(self.seed if seed is None else seed)
        return list(self._generate(rng, self.n_samples if n is None else n))

    # ---------------------------------------------------------------------------------------

    def _window(self, row: int, col: int) -> dict[str, slice]:
        t = self.tile
        return {schema.Y_DIM: slice(row, row + t), schema.X_DIM: slice(col, col + t)}

    def _valid_fraction(self, win: dict[str, slice]) -> np.ndarray:
        """Valid fraction of the tile on every usable image date (reads one band + the mask)."""
        if self._in_memory:
            # Summed-area table of the valid pixels per image date, built once: the count in
            # any window is then four lookups per date.
            if self._valid is None:
                ok = self._valid_pixels({})
                sat = np.zeros((ok.shape[0], ok.shape[1] + 1, ok.shape[2] + 1), np.int32)
                np.cumsum(np.cumsum(ok, axis=1, dtype=np.int32), axis=2, out=sat[:, 1:, 1:])
                self._valid = sat
            rows, cols = win[schema.Y_DIM], win[schema.X_DIM]
            r0, r1, c0, c1 = rows.start, rows.stop, cols.start, cols.stop
            sat = self._valid
            count = sat[:, r1, c1] - sat[:, r0, c1] - sat[:, r1, c0] + sat[:, r0, c0]
            return count / float((r1 - r0) * (c1 - c0))
        return self._valid_pixels(win).mean(axis=(1, 2), dtype="float64")

    def _valid_pixels(self, win: dict[str, slice]) -> np.ndarray:
        """Valid pixels ``(image date, y, x)`` of the window (reference band + masks)."""
        ds, read = self.cube.ds, self._reader
        index = {schema.TIME_DIM: self._img, **win}
        ok = np.isfinite(read.take(self._ref, index))
        if schema.CLOUD_MASK in ds:
            ok &= ~read.take(schema.CLOUD_MASK, index).astype(bool)
        if REGION_MASK in ds:
            ok &= read.take(REGION_MASK, win).astype(bool)[None]
        return ok

    def _pick(self, rng: np.random.Generator) -> tuple[int, int, int, int]:
        ny, nx = self.cube.ds.sizes[schema.Y_DIM], self.cube.ds.sizes[schema.X_DIM]
        for _ in range(self.max_tries):
            row = int(rng.integers(0, ny - self.tile + 1))
            col = int(rng.integers(0, nx - self.tile + 1))
            good = self._valid_fraction(self._window(row, col)) >= self.min_valid
            # sources: good dates with at least one good target date
            has_target = (good[self._target_pad] & self._target_ok).any(axis=1)
            sources = np.flatnonzero(good & has_target)
            if sources.size:
                p = int(sources[int(rng.integers(len(sources)))])
                targets = self._targets[p][good[self._targets[p]]]
                q = int(targets[int(rng.integers(len(targets)))])
                return row, col, p, q
        raise RuntimeError(
            f"no tile with a valid fraction >= {self.min_valid} on a source and a target date "
            f"after {self.max_tries} tries; lower min_valid, widen k_min/k_max or use a "
            "less cloudy cube"
        )

    def _read(self, rng: np.random.Generator) -> Sample:
        return self.read_at(*self._pick(rng))

    def read_at(self, row: int, col: int, p: int, q: int) -> Sample:
        """The sample of the tile at ``(row, col)`` with source image ``p`` and target ``q``
        (indices into the usable image dates), e.g. another sampler's pick read from a
        weather variant of the same world (paired training)."""
        ds = self.cube.ds
        win = self._window(row, col)
        ctx = np.arange(max(0, p - self.context + 1), p + 1)
        tidx = self._img[np.r_[ctx, q]]
        read = self._reader
        index = {schema.TIME_DIM: tidx, **win}
        shape = (len(tidx), self.tile, self.tile)
        obs = np.stack([read.take(b, index) if m else np.full(shape, np.nan, "float32")
                        for b, m in zip(self.bands, self.band_mask)], axis=1).astype("float32")
        # a band the cube never observed does not make a pixel invalid
        valid = np.isfinite(obs if self.band_mask.all() else obs[:, self.band_mask]).all(axis=1)
        if schema.CLOUD_MASK in ds:
            valid &= ~read.take(schema.CLOUD_MASK, index).astype(bool)
        if REGION_MASK in ds:
            valid &= read.take(REGION_MASK, win).astype(bool)[None]
        obs = np.where(valid[:, None], obs, np.float32(np.nan))
        truth = None
        if self._has_truth:
            last = {schema.TIME_DIM: tidx[-1], **win}
            truth = np.stack([read.take(t, last) if t in ds.data_vars
                              else np.full(shape[1:], np.nan, "float32")
                              for t in self._truth]).astype("float32")

        d0, dt, d1 = (int(self._img_day[i]) for i in (ctx[0], p, q))
        drivers = self._drivers(row, col, d0, d1)
        if self.truth and schema.SOIL_MOISTURE in ds:
            sm = read.take(schema.SOIL_MOISTURE, {schema.DAY_DIM: d1, **win}).astype("float32")
        else:
            sm = np.full((self.tile, self.tile), np.nan, dtype="float32")

        offsets = self._img_day[ctx] - dt
        k = d1 - dt
        sample = Sample(
            images=obs[:-1],
            mask=valid[:-1],
            image_offsets=offsets.astype(np.int64),
            doy=self._doy[ctx],
            drivers=drivers,
            t_index=dt - d0,
            k=k,
            target=obs[-1],
            target_mask=valid[-1],
            target_true=truth,
            soil_moisture_target=sm,
            row=row,
            col=col,
            t=self._days[dt],
            band_mask=self.band_mask.copy(),
        )
        self._check(sample)
        return sample

    def _drivers(self, row: int, col: int, d0: int, d1: int) -> np.ndarray:
        """Tile-mean drivers ``(d1 - d0 + 1, V)`` float32 for days ``d0..d1``.

        Equals the tile mean of :func:`drivers_on_pixels` (bilinear from a native met grid,
        broadcast from a series, as-is on pixels) but is computed directly by
        :class:`~kgvsf_explore.cube.regrid.TileDrivers`.
        """
        n_days = d1 - d0 + 1
        if not self.driver_names:
            return np.zeros((n_days, 0), dtype="float32")
        win = self._window(row, col)
        rows, cols = win[schema.Y_DIM], win[schema.X_DIM]
        if self._in_memory:
            # One table over every day and pixel, built on first use; a sample is then a
            # weighted sum. Gap days come out NaN: the per-sample path below names them.
            if self._table is None:
                self._table = TileDrivers(self.cube.ds, self._y, self._x, self.driver_names,
                                          slice(None), reader=self._reader, check=False)
            out = self._table.mean(rows, cols, slice(d0, d1 + 1))
            if np.isfinite(out).all():
                return out
        table = TileDrivers(self.cube.ds, self._y, self._x, self.driver_names,
                            slice(d0, d1 + 1), (rows, cols), reader=self._reader)
        return table.mean(rows, cols)

    def _drivers_regrid(self, row: int, col: int, d0: int, d1: int) -> np.ndarray:
        """Tile-mean drivers through :func:`drivers_on_pixels` (the reference, slower path)."""
        ds = self.cube.ds
        hx, hy = self._half
        xs, ys = self._x[col : col + self.tile], self._y[row : row + self.tile]
        bounds = (xs.min() - hx, ys.min() - hy, xs.max() + hx, ys.max() + hy)
        sub = ds[list(self.driver_names)].assign_coords(
            {schema.Y_DIM: ds[schema.Y_DIM], schema.X_DIM: ds[schema.X_DIM]}
        )
        sub = sub.isel({schema.DAY_DIM: slice(d0, d1 + 1), **self._window(row, col)})
        sub = crop_met_grid(sub, bounds)
        on_pixels = drivers_on_pixels(sub, self.driver_names)
        means = on_pixels.mean((schema.Y_DIM, schema.X_DIM)).compute()
        return np.stack([means[v].values for v in self.driver_names], axis=1).astype("float32")

    def _check(self, s: Sample) -> None:
        """Invariants every sample must satisfy (a failure is a bug, not bad data)."""
        n_ctx = len(s.image_offsets)
        assert 1 <= n_ctx <= self.context, n_ctx
        assert s.images.shape == (n_ctx, len(self.bands), self.tile, self.tile), s.images.shape
        assert s.mask.shape == (n_ctx, self.tile, self.tile)
        assert (s.image_offsets <= 0).all() and s.image_offsets[-1] == 0, "context after t"
        assert (np.diff(s.image_offsets) > 0).all(), "context dates not increasing"
        assert self.k_min <= s.k <= self.k_max and s.k > 0, f"k={s.k} out of bounds"
        assert s.drivers.shape == (s.t_index + s.k + 1, len(self.driver_names)), s.drivers.shape
        assert s.t_index == -int(s.image_offsets[0]), "t_index does not match the context"
        assert s.target.shape == (len(self.bands), self.tile, self.tile)
        assert s.band_mask is None or s.band_mask.shape == (len(self.bands),)

    def _generate(self, rng: np.random.Generator, n: int,
                  block_rng: np.random.Generator | None = None) -> Iterator[Sample]:
        if self.block is None or self._in_memory:
            for _ in range(n):
                yield self._read(rng)
            return
        yield from self._generate_in_blocks(rng, n, block_rng or rng)

    def _generate_in_blocks(self, rng: np.random.Generator, n: int,
                            block_rng: np.random.Generator) -> Iterator[Sample]:
        """``n`` samples (drawn with ``rng``) from random blocks (drawn with ``block_rng``)
        loaded whole (see ``block``). The last block loaded is kept: calls whose
        ``block_rng`` draws the same block reuse it without reading."""
        ny, nx = self.cube.ds.sizes[schema.Y_DIM], self.cube.ds.sizes[schema.X_DIM]
        by, bx = self._block_shape()
        done = failed = 0
        while done < n:
            r0, c0 = self._block_origin(block_rng, ny - by, nx - bx)
            key = (r0, c0, by, bx)
            if self._last_block is None or self._last_block[0] != key:
                self._last_block = key, self._block_sampler(r0, c0, by, bx, n - done)
            inner = self._last_block[1]
            try:
                for sample in inner._generate(rng, n - done):
                    done += 1
                    yield sample._replace(row=sample.row + r0, col=sample.col + c0)
            except RuntimeError:  # no valid tile in this block: try another one
                failed += 1
                if failed > self.max_tries:
                    raise RuntimeError(
                        f"no block of {by} x {bx} pixels with a tile valid >= {self.min_valid} "
                        f"after {self.max_tries} blocks; lower min_valid or use a larger block"
                    ) from None

    def _block_shape(self) -> tuple[int, int]:
        """Block rows and columns: ``block`` rounded up to whole storage chunks."""
        ds = self.cube.ds
        ny, nx = ds.sizes[schema.Y_DIM], ds.sizes[schema.X_DIM]
        cy, cx = self._chunk_yx()
        size = self.block or max(ny, nx)
        by = min(ny, -(-size // cy) * cy)
        bx = min(nx, -(-size // cx) * cx)
        return by, bx

    def _chunk_yx(self) -> tuple[int, int]:
        """Storage (dask) chunk size of the reference band along y and x (1 if unchunked)."""
        chunks = self.cube.ds[self._ref].chunks
        if not chunks:
            return 1, 1
        dims = self.cube.ds[self._ref].dims
        return (int(chunks[dims.index(schema.Y_DIM)][0]),
                int(chunks[dims.index(schema.X_DIM)][0]))

    def _block_origin(self, rng: np.random.Generator, max_r: int, max_c: int) -> tuple[int, int]:
        """A random block origin on the chunk grid (so a block reads whole chunks only)."""
        cy, cx = self._chunk_yx()
        # chunk starts, and the far edge when the grid is not a whole number of blocks
        r = int(rng.integers(0, max_r // cy + 1 + (max_r % cy > 0))) * cy
        c = int(rng.integers(0, max_c // cx + 1 + (max_c % cx > 0))) * cx
        return min(r, max_r), min(c, max_c)

    def _block_sampler(self, r0: int, c0: int, by: int, bx: int, n: int) -> Sampler:
        """A sampler over the block at ``(r0, c0)``, its inputs read in one go."""
        from .reading import reading

        ds = self.cube.ds
        win = {schema.Y_DIM: slice(r0, r0 + by), schema.X_DIM: slice(c0, c0 + bx)}
        hx, hy = self._half
        xs, ys = self._x[win[schema.X_DIM]], self._y[win[schema.Y_DIM]]
        bounds = (xs.min() - hx, ys.min() - hy, xs.max() + hx, ys.max() + hy)
        # what every sample reads is loaded; the truth and soil moisture (one date each per
        # sample) stay lazy
        eager = [v for v in (*self.observed_bands, *self.driver_names, schema.CLOUD_MASK,
                             REGION_MASK) if v in ds.data_vars]
        sub = crop_met_grid(ds.isel(win), bounds)
        with reading(f"the block at row {r0}, col {c0}", ds):
            loaded = sub[eager].load()
        sub = sub.assign({v: loaded[v] for v in eager if v in sub.data_vars})
        return Sampler(Cube(sub, res=self.cube.res_xy), tile=self.tile, context=self.context,
                       k_min=self.k_min, k_max=self.k_max, seed=self.seed,
                       min_valid=self.min_valid, n_samples=n, max_tries=self.max_tries,
                       truth=self.truth, bands=self.bands)


# ------------------------------------------------------------------------------------------
# PyTorch adapter


def _finite_or_zero(a: np.ndarray) -> np.ndarray:
    """``a`` with NaN and +-Inf replaced by 0 (a copy)."""
    return np.where(np.isfinite(a), a, a.dtype.type(0))


def sample_to_tensors(
    sample: Sample, *, context: int | None = None, drivers_len: int | None = None
) -> dict[str, Any]:
    """Convert a :class:`Sample` to a dict of torch tensors for a model.

    NaNs are replaced by 0 only in arrays that come with a mask saying where they were:
    ``images``/``mask``, ``target``/``target_mask``, ``target_true``/``target_mask``,
    ``soil_moisture_target``/``soil_moisture_mask``, and the bands the cube never observed
    (``band_mask`` ``(C,)`` bool, False for them; all True when the sample has no band mask).
    Multiply by (or index with) the masks in the loss, never trust the zeros.

    With ``context``, the context is left-padded to that length (zero images, ``mask`` False,
    ``context_mask`` False, offsets and doy 0); with ``drivers_len``, the drivers are
    right-padded with zeros (``drivers_mask`` False), so ``t_index`` stays valid. Both give
    fixed shapes that the default collate function can batch.
    """
    import torch

    images = _finite_or_zero(sample.images)
    mask = sample.mask.copy()
    offsets, doy = sample.image_offsets, sample.doy
    ctx_mask = np.ones(len(offsets), dtype=bool)
    if context is not None and len(offsets) < context:
        pad = context - len(offsets)
        images = np.concatenate([np.zeros((pad, *images.shape[1:]), "float32"), images])
        mask = np.concatenate([np.zeros((pad, *mask.shape[1:]), bool), mask])
        offsets = np.concatenate([np.zeros(pad, np.int64), offsets])
        doy = np.concatenate([np.zeros(pad, np.int64), doy])
        ctx_mask = np.concatenate([np.zeros(pad, bool), ctx_mask])
    drivers = sample.drivers
    drivers_mask = np.ones(len(drivers), dtype=bool)
    if drivers_len is not None and len(drivers) < drivers_len:
        pad = drivers_len - len(drivers)
        drivers = np.concatenate([drivers, np.zeros((pad, drivers.shape[1]), "float32")])
        drivers_mask = np.concatenate([drivers_mask, np.zeros(pad, bool)])
    sm_mask = np.isfinite(sample.soil_moisture_target)
    n_bands = sample.images.shape[1]
    band_mask = (np.ones(n_bands, dtype=bool) if sample.band_mask is None
                 else np.asarray(sample.band_mask, dtype=bool).copy())
    out: dict[str, Any] = {
        "images": torch.from_numpy(images.astype("float32")),
        "mask": torch.from_numpy(mask),
        "band_mask": torch.from_numpy(band_mask),
        "context_mask": torch.from_numpy(ctx_mask),
        "image_offsets": torch.from_numpy(offsets.astype(np.int64)),
        "doy": torch.from_numpy(doy.astype(np.int64)),
        "drivers": torch.from_numpy(np.ascontiguousarray(drivers, dtype="float32")),
        "drivers_mask": torch.from_numpy(drivers_mask),
        "t_index": torch.tensor(sample.t_index, dtype=torch.int64),
        "k": torch.tensor(sample.k, dtype=torch.int64),
        "target": torch.from_numpy(_finite_or_zero(sample.target)),
        "target_mask": torch.from_numpy(sample.target_mask.copy()),
        "soil_moisture_target": torch.from_numpy(
            _finite_or_zero(sample.soil_moisture_target)
        ),
        "soil_moisture_mask": torch.from_numpy(sm_mask),
        "row": torch.tensor(sample.row, dtype=torch.int64),
        "col": torch.tensor(sample.col, dtype=torch.int64),
        "t": torch.tensor(int(np.datetime64(sample.t, "D").astype(np.int64)), dtype=torch.int64),
    }
    if sample.target_true is not None:
        out["target_true"] = torch.from_numpy(_finite_or_zero(sample.target_true))
    return out


_DATASET_CLASS: type | None = None


def _dataset_class() -> type:
    """Build ``SamplerDataset`` on first use, so importing this module does not import torch."""
    global _DATASET_CLASS
    if _DATASET_CLASS is not None:
        return _DATASET_CLASS
    import torch.utils.data as tud

    class SamplerDataset(tud.IterableDataset):
        """A :class:`torch.utils.data.IterableDataset` of :class:`Sampler` samples as tensors.

        Each item is the dict of :func:`sample_to_tensors`; with ``pad=True`` (default) every
        item has the same shapes (context padded to ``sampler.context``, drivers to
        ``sampler.max_drivers_len``) so ``DataLoader(ds, batch_size=...)`` batches them.

        With a sampler that reads in blocks (``block``, lazy cubes), ``block_reuse`` consecutive
        epochs (batches of :func:`~kgvsf_explore.training.make_loaders`) draw from the same
        block, read once.

        Worker sharding: with ``num_workers > 1`` (or after :meth:`set_epoch`), worker ``i``
        draws from ``np.random.default_rng([seed, epoch, i])`` and yields its share of
        ``sampler.n_samples``, so workers never repeat each other and the run is reproducible.
        In a single process at epoch 0 it yields exactly the sampler's own samples. Inside
        workers dask reads synchronously (its thread pool does not survive ``fork``); every
        start method (fork, spawn, forkserver) works.
        """

        def __init__(self, sampler: Sampler, *, pad: bool = True, block_reuse: int = 1) -> None:
            super().__init__()
            if block_reuse < 1:
                raise ValueError(f"block_reuse must be >= 1, got {block_reuse}")
            self.sampler = sampler
            self.pad = pad
            self.block_reuse = int(block_reuse)
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:
            """Draw different (still reproducible) samples in each epoch."""
            self.epoch = int(epoch)

        def __len__(self) -> int:
            return self.sampler.n_samples

        def __iter__(self) -> Iterator[dict[str, Any]]:
            info = tud.get_worker_info()
            wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
            s = self.sampler
            n = s.n_samples // nw + (1 if wid < s.n_samples % nw else 0)
            if nw == 1 and self.epoch == 0:
                rng = np.random.default_rng(s.seed)
            else:
                rng = np.random.default_rng([int(s.seed), self.epoch, wid])
            context = s.context if self.pad else None
            dlen = s.max_drivers_len if self.pad else None
            block_rng = None
            if s.block is not None:  # `block_reuse` consecutive epochs share their block
                block_rng = np.random.default_rng(
                    [int(s.seed), self.epoch // self.block_reuse, wid, 1])
            samples = s._generate(rng, n, block_rng)
            if info is None:
                for sample in samples:
                    yield sample_to_tensors(sample, context=context, drivers_len=dlen)
                return
            # In a worker process: dask's thread pool does not survive fork() (and the
            # DataLoader already gives the parallelism), so read synchronously.
            import dask

            with dask.config.set(scheduler="synchronous"):
                for sample in samples:
                    yield sample_to_tensors(sample, context=context, drivers_len=dlen)

    # importable (and so picklable, e.g. for spawn-started workers) as sampler.SamplerDataset
    SamplerDataset.__module__ = __name__
    SamplerDataset.__qualname__ = "SamplerDataset"
    _DATASET_CLASS = SamplerDataset
    return SamplerDataset


def __getattr__(name: str) -> Any:
    if name == "SamplerDataset":
        return _dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
