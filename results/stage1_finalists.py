"""One row of a stage-1 run's finalists table (:class:`Finalist`): what the dashboard's
finalists section and its latency section (:mod:`results.stage1_latency`) both read, in a
module of its own so that neither dashboard module imports the other for it."""
from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["Finalist"]


class Finalist(NamedTuple):
    trial: int  # the source search trial
    arch: str
    macs: int | None
    search_reward: float  # the search's own score (NaN when unknown)
    seeds: list[int]  # seed indices of the COMPLETE runs
    rewards: list[float]  # their rewards, in seed order
    mean: float
    std: float  # sample std (n - 1); NaN for fewer than two
    complete: bool  # every planned seed finished
    accuracies: list[float] = []  # the accuracy of each of those runs, in seed order
    accuracy_mean: float = math.nan
    accuracy_std: float = math.nan  # sample std (n - 1); NaN for fewer than two
