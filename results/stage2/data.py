"""The stage 2 page's plain data: what :func:`results.stage2.info.stage2_info` computes from a run
folder and every figure module draws (NamedTuples of plain lists). Types only, so that every other
module of the package may import them and none imports another for a type.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ..store import ChoiceVerdict


TARGET_PRODUCT = 2.0  # EfficientNet Eq. 3: alpha * beta^2 * gamma^2 ~= 2


class GridPoints(NamedTuple):
    number: list[int]
    alpha: list[float]
    beta: list[float]
    gamma: list[float]
    accuracy: list[float]
    macs_ratio: list[float]
    product: list[float]


class Surface(NamedTuple):
    """gamma = sqrt(product / (alpha beta^2)); None where gamma < 1."""

    alpha: list[float]
    beta: list[float]
    gamma: list[list[float | None]]  # gamma[j][i] at beta[j], alpha[i]


class Ratio(NamedTuple):
    phi: list[float]
    measured: list[float]  # family MACs / base MACs
    formula: list[float]  # (alpha beta^2 gamma^2)^phi
    two_phi: list[float]  # 2^phi
    paper: list[float | None]  # the paper's B{phi} FLOPS / B0's
    rounding: str | None = None  # the family's depth rounding (family.csv), None before it

    @property
    def vs_nominal(self) -> list[float]:
        """measured / 2^phi: 1 where a member doubles exactly per unit of phi."""
        return [m / t for m, t in zip(self.measured, self.two_phi)]


class Compare(NamedTuple):
    kind: list[str]
    accuracy: list[float]  # the mean over seeds
    macs: list[float]
    label: list[str]
    std: list[float] | None = None  # the seeds' std (compare_single.json), else None
    seeds: list[int] | None = None
    verdict: list[str] | None = None  # against compound ("" for compound itself)


class Finalists(NamedTuple):
    """coefficients.json's finalists: one entry per finalist, best mean first."""

    label: list[str]  # 'alpha 1.2 beta 1.1 gamma 1.15'
    mean: list[float]  # accuracy over its COMPLETE seeds
    std: list[float]  # NaN with fewer than 2 seeds
    grid_accuracy: list[float]  # the grid's own single training
    done: list[int]
    seeds: int
    winner: int | None  # index of the chosen finalist


class FamilyLatency(NamedTuple):
    """family.csv's measured latency (``gridsearch --latency``), the timed members only."""

    phi: list[int]
    name: list[str]
    macs: list[float]
    median_ms: list[float]
    iqr_ms: list[float]  # NaN where family.csv has none
    device: str  # where and how, from coefficients.json's latency ('' when it is not there)


class Stage2Info(NamedTuple):
    coefficients: dict[str, Any] | None
    target_product: float  # alpha * beta^2 * gamma^2 the grid aims at (the paper's 2)
    grid: GridPoints  # COMPLETE compound points
    pending: int  # compound points not complete (running, failed, pruned)
    selected: tuple[float, float, float] | None
    surface: Surface
    ratio: Ratio | None
    compare: Compare | None
    family: list[dict[str, Any]] | None
    finalists: Finalists | None = None
    latency: FamilyLatency | None = None
    # whether the chosen point's lead over the runner-up is within the seeds' noise
    # (coefficients.json's)
    verdict: ChoiceVerdict | None = None
