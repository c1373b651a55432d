"""The stage 1 page's plain data: what :func:`results.stage1.info.stage1_info` computes from a run
folder and every figure module draws (NamedTuples of plain lists, checked by tests without a
browser). Types only, so that every other module of the package may import them and none of them
imports another for a type.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from ..html import finite
from ..store import ChoiceVerdict


class Points(NamedTuple):
    number: list[int]
    accuracy: list[float]
    macs: list[int]
    latency_ms: list[float]  # predicted from the run's latency table; NaN in a MACs-only run
    reward: list[float]
    node: list[str]  # where the trial ran (a Ray node id with --backend ray)
    arch: list[str]  # one-line architecture (hover text)


class IsoCurve(NamedTuple):
    reward: float
    cost: list[float]  # on the axis of the run's metric: MACs, or ms
    accuracy: list[float]  # ACC with reward(ACC, cost) == reward (space.objective)


class Progress(NamedTuple):
    number: list[int]  # COMPLETE trials in trial order
    best_by_number: list[float]
    elapsed_s: list[float]  # the same trials in order of completion, seconds since the start
    best_by_time: list[float]


class ChoiceGrid(NamedTuple):
    dimension: str
    stages: list[str]
    values: list[str]
    counts: list[list[int]]  # counts[value][stage]: top trials taking the value in the stage


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


class Finalists(NamedTuple):
    """A run's finalists as :func:`results.stage1.finalists.read_finalists` reads them."""

    rows: list[Finalist]  # summary.json's order: best mean first, complete ones first
    seeds: int  # seeds planned per finalist
    b0: int | None  # the finalist chosen as B0 (summary.json's best), None until chosen
    verdict: ChoiceVerdict | None  # whether B0's lead stands out of the seeds' noise
    source: str  # results.stage1.finalists.FROM_SUMMARY or FROM_TRIALS; '' (no finalists)


class Timed(NamedTuple):
    """A network timed end to end on the device at the end of the run: B0 or a finalist."""

    trial: int  # its search trial
    role: str  # "B0" or "finalist"
    accuracy: float  # the mean over its seeds (a finalist), else the search's accuracy
    accuracy_std: float  # over its seeds (n - 1); NaN for fewer than two
    seeds: int  # runs the accuracy is the mean of
    predicted_ms: float  # from the run's latency table (the trial's latency_ms)
    measured_ms: float  # end to end (best.json); NaN until the run has timed it
    arch: str

    @property
    def error(self) -> float:
        """measured / predicted - 1 (NaN until measured)."""
        if finite(self.measured_ms) and finite(self.predicted_ms) and self.predicted_ms > 0:
            return self.measured_ms / self.predicted_ms - 1
        return math.nan


class TableFacts(NamedTuple):
    """The latency table the run predicted with (its entries stay in the file)."""

    fingerprint: str  # space.latency.LatencyTable.fingerprint: one fingerprint, one prediction
    space: str
    resolution: int
    entries: int
    overhead_ms: float
    source: str  # the file it was read from, or the study attribute


class LatencyInfo(NamedTuple):
    device: dict[str, Any]  # how the table was timed: cpu, torch, threads, batch, runtime, clock
    table: TableFacts | None  # None where the run folder holds no table
    timed: list[Timed]  # B0 first, then the other finalists
    measured_device: dict[str, Any] | None  # where B0 was timed (best.json), None before then


class Stage1Info(NamedTuple):
    target_macs: int | None  # T in MACs; None when the run's target is a latency
    a: float
    b: float
    points: Points  # COMPLETE trials
    pruned: Points  # PRUNED trials with the accuracy they were stopped at
    front: list[int]  # indices into points, cheapest first by front_metric
    iso: list[IsoCurve]  # on the axis of the run's metric
    accuracy_range: tuple[float, float]
    progress: Progress
    top: list[dict[str, Any]]  # the top trials: number, reward, accuracy, macs, params, arch
    choices: list[ChoiceGrid]
    best_stages: list[dict[str, Any]]  # space.counting.stage_table rows of the best
    finalists: list[Finalist] = []  # summary.json's order: best mean first (complete first)
    finalist_seeds: int = 0  # seeds planned per finalist
    floor: float = 0.0  # the hard constraint's floor, a fraction of T (space.objective)
    metric: str = "macs"  # the objective's cost (space.objective.METRICS): "macs" or "latency"
    target: float = 0.0  # T in the metric's unit (MACs, or ms)
    front_metric: str = "macs"  # the cost the Pareto front is over: the run's second objective
    latency: LatencyInfo | None = None  # a run that predicts latency: device, table, B0 timed
    # whether B0's lead over the runner-up is within the seeds' noise (summary.json's)
    verdict: ChoiceVerdict | None = None
    # where the finalists' mean and std come from (results.stage1.finalists): summary.json,
    # the trial table (the labelled fallback), or '' (no finalists)
    finalists_from: str = ""
    b0: int | None = None  # the finalist the run chose as B0 (summary.json's best)
