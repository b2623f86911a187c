"""Typed, JSON-serialisable configuration of the KG-VSF network and its pretraining.

``ModelConfig`` fixes the architecture (and travels with the weights, including the
normalisation statistics of the cube it was trained on); ``TrainConfig`` fixes the run. Both have
presets: ``tiny`` (CI: under a minute on 2 CPU cores), ``small`` (the shipped weights: minutes on
CPU) and ``base`` (for a GPU).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .. import schema

#: Pretraining objectives, all on the same backbone (see ``shared/kgvsf-method.md``).
OBJECTIVES: tuple[str, ...] = ("kgvsf", "sm-mr", "mm-mr", "sm-vsf", "mm-vsf", "next-token")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the KG-VSF network.

    Attributes
    ----------
    bands, drivers
        Input vocabulary (names from :mod:`kgvsf_explore.schema`), in this order.
    tile
        Side of the square spatial tile in pixels; must be a multiple of ``patch``.
    patch
        ViT patch side in pixels (tokens per date: ``(tile / patch) ** 2``).
    dim, depth, heads
        Width, number of image-encoder blocks and attention heads.
    seq_depth
        Number of blocks of the temporal (sequence) encoder.
    weather_hidden
        Hidden size of the one-directional LSTM weather encoder.
    pixel_dim
        Per-pixel feature size of the light decoder (part of the pixel embedding).
    context
        Maximum number of context images.
    pixel_residual
        Forecast a per-pixel correction of each pixel's last clear context observation
        (experimental, :class:`~kgvsf_explore.models.heads.PixelResidual`).
    pixel_context
        With ``pixel_residual``: the correction also reads the pixel's own whole context
        series (every context image, its clear flag and age) and the target's day of year,
        the per-pixel inputs a tree peer reads.
    weather_windows
        The weather summary over ``(t, t+k]`` also gets the mean of each normalised driver
        over those days through a linear layer (experimental; the LSTM's states at ``t`` and
        ``t + k`` stay its main input). The window sums a tree peer reads, given to the
        network directly instead of left for the LSTM to integrate.
    k_min, k_max
        Range of forecast steps in days (any integer inside).
    band_mean, band_std, driver_mean, driver_std
        Normalisation statistics (raw units), set from the training cube.
    """

    bands: tuple[str, ...] = schema.BANDS
    drivers: tuple[str, ...] = schema.DRIVERS
    tile: int = 32
    patch: int = 4
    dim: int = 64
    depth: int = 2
    heads: int = 4
    seq_depth: int = 2
    weather_hidden: int = 64
    pixel_dim: int = 16
    context: int = 6
    k_min: int = 1
    k_max: int = 60
    dropout: float = 0.0
    pixel_residual: bool = False
    pixel_context: bool = False
    weather_windows: bool = False
    band_mean: tuple[float, ...] = (0.08, 0.11, 0.11, 0.16, 0.32, 0.25, 0.17)
    band_std: tuple[float, ...] = (0.05, 0.05, 0.07, 0.06, 0.12, 0.08, 0.08)
    driver_mean: tuple[float, ...] = (2.5, 15.0, 3.0, 300.0, 1000.0, 43000.0, 5.0)
    driver_std: tuple[float, ...] = (6.0, 11.0, 10.0, 120.0, 700.0, 7000.0, 10.0)

    def __post_init__(self) -> None:
        if self.tile % self.patch:
            raise ValueError(f"tile ({self.tile}) must be a multiple of patch ({self.patch})")
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        if not 1 <= self.k_min <= self.k_max:
            raise ValueError(f"need 1 <= k_min <= k_max, got {self.k_min}, {self.k_max}")
        if self.pixel_context and not self.pixel_residual:
            raise ValueError("pixel_context needs pixel_residual=True")
        if len(self.band_mean) != len(self.bands) or len(self.band_std) != len(self.bands):
            raise ValueError("band_mean/band_std need one value per band")
        if len(self.driver_mean) != len(self.drivers) or len(self.driver_std) != len(
            self.drivers
        ):
            raise ValueError("driver_mean/driver_std need one value per driver")

    @property
    def n_patches(self) -> int:
        return (self.tile // self.patch) ** 2


@dataclass(frozen=True)
class TrainConfig:
    """One pretraining run.

    Attributes
    ----------
    objective
        One of :data:`OBJECTIVES`.
    phase1_steps, phase2_steps
        Optimiser steps of masked reconstruction and of variable-step forecasting (objectives
        with one phase use ``phase1_steps + phase2_steps`` steps of their single loss, so every
        objective gets the same budget).
    batch_size, lr, weight_decay
        Optimisation.
    eval_every, val_batches, patience
        Validation every ``eval_every`` steps on ``val_batches`` fixed batches; early stopping
        after ``patience`` validations without improvement (0: never).
    mask_ratio
        Share of image patches / driver days / date tokens masked in reconstruction losses.
    seed
        Seeds torch, the samplers and the masks.
    val_year
        Calendar year held out of training samples for validation.
    ndvi_weight
        Weight of an NDVI term added to the forecast loss (our extension, 0: the paper's
        loss): the mean squared NDVI error of the forecast, in units of 0.25 NDVI, so that
        1.0 weighs NDVI like one average band. NDVI is what most users read of a forecast,
        and the all-year reflectance loss is dominated by snow.
    pair_weight
        Weight of the paired-variant loss (our extension, 0: off). Where the training cubes
        include weather variants of a world (same land, other weather: ``--weather-variants``),
        some batches are pairs (a third of them with one variant per world): one tile, start
        date and horizon read from the world and from a variant. The term is the mean squared
        error of the forecast *change* between the two (variant minus world, normalised
        reflectance, plus the NDVI change in units of 0.05 NDVI) against the observed change,
        so the network is taught the size of a weather change directly, the answer a what-if
        question asks for.
    """

    objective: str = "kgvsf"
    phase1_steps: int = 30
    phase2_steps: int = 30
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 0.01
    eval_every: int = 20
    val_batches: int = 2
    patience: int = 0
    mask_ratio: float = 0.5
    seed: int = 0
    val_year: int | None = None
    ndvi_weight: float = 0.0
    pair_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.ndvi_weight < 0:
            raise ValueError(f"ndvi_weight must be >= 0, got {self.ndvi_weight}")
        if self.pair_weight < 0:
            raise ValueError(f"pair_weight must be >= 0, got {self.pair_weight}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {OBJECTIVES}")


@dataclass(frozen=True)
class Preset:
    """A named pair of model and training configurations."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        ModelConfig(tile=16, patch=4, dim=32, depth=1, heads=2, seq_depth=1, weather_hidden=32,
                    pixel_dim=8, context=4),
        TrainConfig(phase1_steps=15, phase2_steps=15, batch_size=4, eval_every=10,
                    val_batches=1),
    ),
    "small": Preset(
        ModelConfig(tile=32, patch=4, dim=64, depth=2, heads=4, seq_depth=2, weather_hidden=64,
                    pixel_dim=16, context=6),
        TrainConfig(phase1_steps=600, phase2_steps=1400, batch_size=16, eval_every=100,
                    val_batches=8, patience=5),
    ),
    "base": Preset(
        ModelConfig(tile=32, patch=4, dim=192, depth=6, heads=6, seq_depth=4,
                    weather_hidden=192, pixel_dim=32, context=8),
        TrainConfig(phase1_steps=5000, phase2_steps=15000, batch_size=64, lr=1e-3,
                    eval_every=500, val_batches=16, patience=8),
    ),
}


def _tuples(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}; expected {sorted(names)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def config_to_json(model: ModelConfig, train: TrainConfig | None = None) -> str:
    """JSON text of a model (and optionally training) configuration."""
    out: dict[str, Any] = {"kgvsf_config_version": 1, "model": asdict(model)}
    if train is not None:
        out["train"] = asdict(train)
    return json.dumps(out, indent=2)


def config_from_json(text: str) -> tuple[ModelConfig, TrainConfig | None]:
    """Inverse of :func:`config_to_json`, with clear errors on unknown keys or versions."""
    data = json.loads(text)
    if data.get("kgvsf_config_version") != 1:
        raise ValueError(
            f"unsupported config version {data.get('kgvsf_config_version')!r} (expected 1)"
        )
    model = ModelConfig(**_tuples(ModelConfig, data["model"]))
    train = TrainConfig(**_tuples(TrainConfig, data["train"])) if "train" in data else None
    return model, train


def preset(name: str, **overrides: Any) -> Preset:
    """A preset by name, with ``TrainConfig`` fields overridden by keyword."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[name]
    return Preset(p.model, replace(p.train, **overrides))
