"""A seed ensemble of KG-VSF networks that answers as one network.

Weights trained with one recipe and different seeds disagree most where the data say least:
the sign of a weak what-if change flips from seed to seed (``docs/model.md``). Averaging the
members' forecasts is the standard remedy (deep ensembles, Lakshminarayanan et al. 2017).
:class:`KGVSFEnsemble` has the inference interface of
:class:`~kgvsf_explore.models.kgvsf.KGVSF` (``encode_context``, ``forecast``, ``embed``,
``embed_last``, ``embed_dim``, ``cfg``, ``objective``), so every path that forecasts or embeds
with one network (``Forecaster``, ``kgvsf forecast``, ``kgvsf calibrate``, ``kgvsf
evaluate-weights``, the dashboard) takes an ensemble folder unchanged
(:func:`~kgvsf_explore.weights.make_ensemble` writes one).

Decisions:

- members must share one :class:`~kgvsf_explore.models.config.ModelConfig` (the same recipe,
  the same normalisation statistics); only the weights differ;
- a forecast is the mean of the members' forecasts (reflectance, before NDVI is computed from
  it);
- an embedding is the members' embeddings side by side (``embed_dim`` is their sum): a head
  fitted on them sees every member, and averaging would mix features that mean different
  things in different networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .kgvsf import KGVSF, ContextState


@dataclass
class EnsembleState:
    """The encoded context of every member (:class:`ContextState` each), handled as one."""

    members: list[ContextState]

    @property
    def objective(self) -> str:
        return self.members[0].objective

    def select(self, i: int) -> EnsembleState:
        """The state of sample ``i`` alone (batch of one)."""
        return EnsembleState([s.select(i) for s in self.members])

    def take(self, idx: Any) -> EnsembleState:
        """The state of the samples ``idx``."""
        return EnsembleState([s.take(idx) for s in self.members])

    def repeat(self, times: int) -> EnsembleState:
        """The same context repeated ``times`` (scenario-major)."""
        return EnsembleState([s.repeat(times) for s in self.members])

    @staticmethod
    def cat(states: Sequence[EnsembleState]) -> EnsembleState:
        """The states of several batches, one after the other."""
        return EnsembleState([ContextState.cat([s.members[m] for s in states])
                              for m in range(len(states[0].members))])


class KGVSFEnsemble(nn.Module):
    """Several KG-VSF networks of one configuration, forecasting as their mean.

    Parameters
    ----------
    members
        Two or more :class:`~kgvsf_explore.models.kgvsf.KGVSF` of equal ``cfg`` and
        objective.

    Raises
    ------
    ValueError
        With fewer than two members, or members whose configuration or objective differ
        (the first differing field is named).
    """

    def __init__(self, members: Sequence[KGVSF]) -> None:
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs two or more members, got {len(members)}")
        first = asdict(members[0].cfg)
        for i, m in enumerate(members[1:], start=1):
            if m.objective != members[0].objective:
                raise ValueError(f"member {i} was trained with objective {m.objective!r}, "
                                 f"member 0 with {members[0].objective!r}")
            other = asdict(m.cfg)
            diff = [k for k in first if first[k] != other.get(k)]
            if diff:
                raise ValueError(
                    f"member {i}'s ModelConfig differs from member 0's in {diff[0]!r}"
                    f"{' (and more)' if len(diff) > 1 else ''}: an ensemble's members share "
                    "one recipe and its normalisation statistics; only the seed may differ")
        self.members = nn.ModuleList(members)
        self.cfg = members[0].cfg
        self.objective = members[0].objective

    def __len__(self) -> int:
        return len(self.members)

    def encode_context(self, batch: dict) -> EnsembleState:
        """Each member's :meth:`~KGVSF.encode_context`."""
        return EnsembleState([m.encode_context(batch) for m in self.members])

    def forecast(self, state: EnsembleState, future: torch.Tensor, ks) -> torch.Tensor:
        """The mean of the members' :meth:`~KGVSF.forecast` (same arguments and shape)."""
        out = None
        for m, s in zip(self.members, state.members, strict=True):
            f = m.forecast(s, future, ks)
            out = f if out is None else out + f
        return out / len(self.members)

    @staticmethod
    def repeat_state(state: EnsembleState, times: int) -> EnsembleState:
        """``state.repeat(times)``."""
        return state.repeat(times)

    @property
    def embed_dim(self) -> int:
        """Features per pixel of :meth:`embed`: the members' side by side."""
        return sum(m.embed_dim for m in self.members)

    def embed(self, batch: dict) -> torch.Tensor:
        """Per-pixel, per-date embeddings ``(B, L, embed_dim, H, W)``, members side by side."""
        return torch.cat([m.embed(batch) for m in self.members], dim=2)

    def embed_last(self, batch: dict, state: EnsembleState | None = None) -> torch.Tensor:
        """The embeddings ``(B, embed_dim, H, W)`` at the last context date."""
        states = state.members if state is not None else [None] * len(self.members)
        return torch.cat([m.embed_last(batch, s)
                          for m, s in zip(self.members, states, strict=True)], dim=1)
