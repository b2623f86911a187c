"""Scorecards: trained weights against the baselines a user would pick instead.

:func:`evaluate_weights` (``kgvsf evaluate-weights``) scores weights on a cube, task by task
(forecast, gap filling, crop type, soil moisture, what-if), beside persistence, day-of-year
climatology, linear interpolation, gradient-boosted trees and random forests
(:mod:`kgvsf_explore.evaluation.peers`), every method on the same cases.
"""

from .rows import BINS, GROWING_SEASON, Row
from .run import PEERS, TASK_NAMES, Scorecard, evaluate_weights

__all__ = ["BINS", "GROWING_SEASON", "PEERS", "Row", "Scorecard", "TASK_NAMES",
           "evaluate_weights"]
