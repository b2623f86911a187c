"""The KG-VSF network, its configuration and the pretraining objectives."""

from .config import OBJECTIVES, PRESETS, ModelConfig, Preset, TrainConfig, preset
from .ensemble import EnsembleState, KGVSFEnsemble
from .kgvsf import KGVSF, ContextState, masked_mse
from .objectives import CAUSAL, USES_WEATHER, phase_schedule

__all__ = [
    "CAUSAL",
    "KGVSF",
    "OBJECTIVES",
    "PRESETS",
    "USES_WEATHER",
    "ContextState",
    "EnsembleState",
    "KGVSFEnsemble",
    "ModelConfig",
    "Preset",
    "TrainConfig",
    "masked_mse",
    "phase_schedule",
    "preset",
]
