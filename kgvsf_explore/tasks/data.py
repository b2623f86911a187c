"""Fixed sets of task samples from a cube: context, drivers, labels and the split's pixel mask.

A :class:`TaskData` holds ``N`` tiles as one batch of tensors (what
:func:`~kgvsf_explore.cube.sampler.sample_to_tensors` gives, stacked) plus what the tasks label
with: crop type, soil moisture on day ``t`` and ``t + k``, the cloud-free truth at ``t + k``
and at a hidden context date, the pixels of the split's field group, and driver summaries.
Samples are drawn by :class:`~kgvsf_explore.cube.sampler.Sampler` from each year of a part (or a
window of months of it), seeded, so every encoder sees exactly the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import schema
from ..cube.cube import Cube
from ..cube.sampler import Sampler, sample_to_tensors
from ..models.config import ModelConfig
from .split import FieldYearSplit

__all__ = ["TaskData", "draw", "driver_features", "subset"]

#: Fixed driver normalisation of the task inputs (the ModelConfig defaults), so every encoder's
#: head gets identical driver features.
_DRV = ModelConfig()
PAST_DAYS = 30


def driver_features(drivers: torch.Tensor, t_index: torch.Tensor, k: torch.Tensor | None
                    ) -> torch.Tensor:
    """Driver summaries every head receives, ``(B, F)``.

    The normalised mean of each driver over the last ``PAST_DAYS`` days up to ``t``; with ``k``
    also their mean over ``(t, t + k]``, the total rain of that period (per 100 mm) and ``k / 60``.
    """
    mean = torch.tensor(_DRV.driver_mean, dtype=torch.float32)
    std = torch.tensor(_DRV.driver_std, dtype=torch.float32)
    d = (drivers.float() - mean) / std
    b, n_days, _ = d.shape
    day = torch.arange(n_days)[None, :]
    ti = t_index.long()[:, None]
    past = ((day <= ti) & (day > ti - PAST_DAYS)).float()
    out = [(d * past[..., None]).sum(1) / past.sum(1, keepdim=True).clamp_min(1)]
    if k is not None:
        fut = ((day > ti) & (day <= ti + k.long()[:, None])).float()
        out.append((d * fut[..., None]).sum(1) / fut.sum(1, keepdim=True).clamp_min(1))
        iprcp = list(_DRV.drivers).index("prcp")
        out.append((drivers[..., iprcp].float() * fut).sum(1, keepdim=True) / 100.0)
        out.append(k.float()[:, None] / 60.0)
    return torch.cat(out, 1)


@dataclass
class TaskData:
    """``N`` task samples as tensors.

    Attributes
    ----------
    batch
        Model inputs and targets, batched (see ``sample_to_tensors``).
    crop
        ``(N, H, W)`` crop-type codes.
    part_pixels
        ``(N, H, W)`` pixels of the part's field group (labels usable by this part).
    sm_t, sm_tk
        ``(N, H, W)`` soil moisture on day ``t`` and ``t + k`` (m3/m3).
    truth_tk
        ``(N, C, H, W)`` cloud-free reflectance at ``t + k``.
    gap, truth_gap
        Index of the hidden context date (or None) and its cloud-free reflectance.
    info
        Provenance (years, seed, sample count).
    """

    batch: dict[str, torch.Tensor]
    crop: torch.Tensor
    part_pixels: torch.Tensor
    sm_t: torch.Tensor
    sm_tk: torch.Tensor
    truth_tk: torch.Tensor
    gap: int | None = None
    truth_gap: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.crop.shape[0])

    def features(self, future: bool) -> torch.Tensor:
        """Driver features of the samples (see :func:`driver_features`)."""
        b = self.batch
        return driver_features(b["drivers"], b["t_index"], b["k"] if future else None)


def subset(data: TaskData, idx: torch.Tensor | np.ndarray) -> TaskData:
    """The samples ``idx`` of ``data``."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    tg = None if data.truth_gap is None else data.truth_gap[idx]
    return TaskData({k: v[idx] for k, v in data.batch.items()}, data.crop[idx],
                    data.part_pixels[idx], data.sm_t[idx], data.sm_tk[idx], data.truth_tk[idx],
                    data.gap, tg, data.info)


def _truth(ds, times: pd.DatetimeIndex, day: pd.Timestamp, rows: slice, cols: slice,
           bands: tuple[str, ...]) -> np.ndarray:
    i = int(np.argmin(np.abs((times - day).days)))
    sub = ds[[schema.truth_name(b) for b in bands]].isel(
        {schema.TIME_DIM: i, schema.Y_DIM: rows, schema.X_DIM: cols})
    return np.stack([np.asarray(sub[schema.truth_name(b)].values, "float32") for b in bands])


def draw(cube: Cube, split: FieldYearSplit, part: str, cfg: ModelConfig, n: int, seed: int, *,
         months: tuple[int, int] | None = None, gap: bool = False,
         k_range: tuple[int, int] | None = None) -> TaskData:
    """Draw ``n`` samples of ``part`` (``"finetune"`` or ``"test"``) of ``split``.

    Parameters
    ----------
    cube
        The evaluation cube (needs the ``*_true`` bands: a simulated world).
    split
        Field and year split.
    part
        Which part; samples come from its years only (shared evenly between them).
    cfg
        Tile, context length and horizon range of the encoders.
    n
        Number of samples.
    seed
        Sampler seed.
    months
        Keep ``t`` (and the target) within these months of each year, e.g. ``(6, 9)``.
    gap
        Hide context date ``context - 2`` (images zeroed, mask False) and keep its truth; only
        samples with at least three context dates are kept.
    k_range
        Horizon range (default the model's).
    """
    ds = cube.ds
    k_min, k_max = k_range or (cfg.k_min, cfg.k_max)
    years = split.years(part)
    per_year = [n // len(years) + (1 if i < n % len(years) else 0) for i in range(len(years))]
    pixels = split.pixels(part)
    times = cube.times.normalize()
    samples, extra = [], []
    for i, (year, m) in enumerate(zip(years, per_year)):
        a, b = (f"{year}-{months[0]:02d}-01", (pd.Timestamp(f"{year}-{months[1]:02d}-01")
                + pd.offsets.MonthEnd(0)).date().isoformat()) if months else (
            f"{year}-01-01", f"{year}-12-31")
        sampler = Sampler(cube.sel_time(a, b), tile=cfg.tile, context=cfg.context, k_min=k_min,
                          k_max=k_max, seed=int(np.random.SeedSequence([seed, i]).generate_state(
                              1)[0]), n_samples=4 * m if gap else m)
        got = 0
        for s in sampler:
            if gap and len(s.image_offsets) < 3:
                continue
            samples.append(s)
            extra.append(year)
            got += 1
            if got == m:
                break
        if got < m:
            raise ValueError(f"only {got} of {m} samples with three context dates in {year}")
    tiles = [sample_to_tensors(s, context=cfg.context,
                               drivers_len=max(len(x.drivers) for x in samples))
             for s in samples]
    batch = {k: torch.stack([t[k] for t in tiles]) for k in tiles[0]}
    crop, part_px, sm_t, truth_gap = [], [], [], []
    g = cfg.context - 2 if gap else None
    for s in samples:
        rows, cols = slice(s.row, s.row + cfg.tile), slice(s.col, s.col + cfg.tile)
        crop.append(np.asarray(schema.crop_map(ds, pd.Timestamp(s.t).year).values[rows, cols]))
        part_px.append(pixels[rows, cols])
        day = pd.Timestamp(s.t)
        sm_t.append(np.asarray(ds[schema.SOIL_MOISTURE].sel({schema.DAY_DIM: day}).values[
            rows, cols], "float32"))
        if gap:
            gap_day = day + pd.Timedelta(days=int(s.image_offsets[-2]))
            truth_gap.append(_truth(ds, times, gap_day, rows, cols, cfg.bands))
    if gap:
        batch["images"][:, g] = 0.0
        batch["mask"][:, g] = False
    if "target_true" not in batch:
        raise ValueError("the downstream tasks need a simulated cube with *_true bands")
    return TaskData(
        batch=batch,
        crop=torch.from_numpy(np.stack(crop).astype(np.int64)),
        part_pixels=torch.from_numpy(np.stack(part_px)),
        sm_t=torch.from_numpy(np.stack(sm_t)),
        sm_tk=batch["soil_moisture_target"].float(),
        truth_tk=batch["target_true"].float(),
        gap=g,
        truth_gap=torch.from_numpy(np.stack(truth_gap)) if gap else None,
        info={"part": part, "years": list(years), "n": len(samples), "seed": seed,
              "months": months, "year_of_sample": extra},
    )
