"""Measured MACs ratios of scaled bases, and single coefficients solved for a ratio.

Stage 2's measured constraint (:data:`gridsearch.grid.CONSTRAINTS`) and ``--compare-single``
compare networks by what they really cost, not by Eq. 3's formula: the ratio is the analytic
multiply-add count (:func:`space.count_analytic`, which equals fvcore's total exactly, see
tests/space/test_counting.py) of ``compound(base, alpha, beta, gamma, phi)`` over the base's.
A count takes ~0.2 ms on EfficientNet-B0, so a whole default grid (2,541 points) is measured in
under a second.

The single-dimension scalings of the paper's Fig. 3 / Table 3 are compared with the compound
point at the *same measured MACs*: :func:`solve_single` finds the one coefficient (alpha alone,
beta alone or gamma alone) whose measured ratio is nearest the compound point's. Repeats,
channels and resolution are rounded to whole numbers, so the ratio is a step function of the
coefficient; the solver returns the coefficient at the start of the nearest step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from space import ArchSpec, compound, count_analytic

from .grid import Point

__all__ = ["SINGLE_AXES", "MacsRatio", "Solved", "solve_single"]

# kind -> which coefficient it scales (the others stay 1)
SINGLE_AXES = {"depth": "alpha", "width": "beta", "resolution": "gamma"}
MAX_MULTIPLIER = 1e6  # beyond this a base cannot reach the ratio (it is refused, not looped)
DIGITS = 6


@dataclass
class MacsRatio:
    """``ratio(point)``: the measured MACs of ``base`` compound-scaled by ``point`` at ``phi``,
    over the base's (analytic count, cached per point)."""

    base: ArchSpec
    phi: float
    _base_macs: int = field(init=False)
    _cache: dict[Point, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._base_macs = count_analytic(self.base).macs

    def macs(self, point: Point) -> int:
        if point not in self._cache:
            spec = compound(self.base, point.alpha, point.beta, point.gamma, self.phi)
            self._cache[point] = count_analytic(spec).macs
        return self._cache[point]

    def __call__(self, point: Point) -> float:
        return self.macs(point) / self._base_macs


class Solved(NamedTuple):
    """A single-dimension point solved for a goal ratio: its coefficients, its measured ratio,
    and the relative distance to the goal."""

    kind: str
    point: Point
    ratio: float
    error: float  # ratio / goal - 1


def _point(kind: str, c: float) -> Point:
    axis = SINGLE_AXES[kind]
    return Point(*(c if n == axis else 1.0 for n in ("alpha", "beta", "gamma")))


def solve_single(ratio: MacsRatio, kind: str, goal: float) -> Solved:
    """The ``kind``-only point (``depth``: alpha, ``width``: beta, ``resolution``: gamma; the
    others 1) whose measured ratio is nearest ``goal`` (ties: the smaller network).

    The measured ratio never falls as one coefficient grows, so bisection finds the first
    coefficient at or above ``goal`` and the step just below it; each is moved to the start of
    its step, rounded up to 6 decimals, and the nearer one is returned."""
    if kind not in SINGLE_AXES:
        raise ValueError(f"unknown single-dimension kind {kind!r}; known: "
                         f"{', '.join(SINGLE_AXES)}")
    if ratio.phi <= 0:
        raise ValueError(f"`phi > 0` must hold to scale one dimension alone, but got "
                         f"phi={ratio.phi:g}; pass e.g. --phi 1")
    if not goal >= 1:
        raise ValueError(f"`goal >= 1` must hold (a scaled base never shrinks), but got "
                         f"goal={goal!r}")

    def at(c: float) -> float:
        return ratio(_point(kind, c))

    hi = 2.0
    while at(hi) < goal:
        hi *= 2
        if hi ** ratio.phi > MAX_MULTIPLIER:
            raise ValueError(f"{kind} alone cannot reach a MACs ratio of {goal:.4g} on "
                             f"{ratio.base.name} (x{at(hi):.4g} at coefficient {hi:g})")
    above = _first_at_least(at, 1.0, hi, goal)
    candidates = [above]
    if above > 1.0:
        below = _first_at_least(at, 1.0, above, at(_prev(above)))
        candidates.insert(0, below)
    best = min(candidates, key=lambda c: abs(at(c) / goal - 1.0))  # the smaller one on ties
    r = at(best)
    return Solved(kind=kind, point=_point(kind, best), ratio=r, error=r / goal - 1.0)


def _prev(c: float) -> float:
    return max(1.0, c - 10.0 ** -DIGITS)


def _first_at_least(at, lo: float, hi: float, goal: float) -> float:
    """The smallest coefficient in [lo, hi] on the 6-decimal grid with ``at(c) >= goal``
    (``at(hi) >= goal`` must hold)."""
    if at(lo) >= goal:
        return lo
    scale = 10 ** DIGITS
    i, j = math.floor(lo * scale), math.ceil(hi * scale)  # at(i) < goal <= at(j)
    while j - i > 1:
        m = (i + j) // 2
        if at(m / scale) >= goal:
            j = m
        else:
            i = m
    return round(j / scale, DIGITS)
