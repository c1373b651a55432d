"""The (alpha, beta, gamma) grid of stage 2 (EfficientNet Sec. 3.3, Eq. 3): pure enumeration.

"STEP 1: we first fix phi = 1, assuming twice more resources available, and do a small grid
search of alpha, beta, gamma based on Equation 2 and 3." Eq. 3 asks alpha * beta^2 * gamma^2 ~= 2
with alpha, beta, gamma >= 1. Here each coefficient runs over a closed range on a step grid, and
the grid's constraint (:data:`CONSTRAINTS`) says which points are kept:

- ``measured`` (the default): the scaled base's *measured* MACs ratio to the base (the analytic
  count, which equals fvcore) lies within ``tolerance`` of ``2^phi``, relatively:
  ``|ratio / 2^phi - 1| <= tolerance``. Channel and repeat rounding move the measured ratio far
  from the formula (EfficientNet-B0 with the paper's point measures 2.55 at phi 1), so the formula
  alone keeps points from 1.87x to 4.48x (benchmarks/BENCHMARKS_gridsearch.md).
- ``formula``: ``|alpha * beta^2 * gamma^2 - 2| <= tolerance`` (absolute), the paper's Eq. 3.

Grid values are computed from integer step counts and rounded to 10 decimals, so ``1 + 3 * 0.05``
is exactly the float ``1.15`` a user would type (not ``1.1500000000000001``). The constraint is
checked with a slack of :data:`EPS` so a point lying exactly on the tolerance boundary is kept
whatever the last bit of its float product says. Enumeration never visits the whole cube: for
each (alpha, beta) it solves the constraint for gamma's index range, so fine steps stay fast.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

from space.registry import Registry

TARGET_PRODUCT = 2.0  # Eq. 3: each unit of phi doubles the multiply-adds
EPS = 1e-9  # float slack on the tolerance check (grid products are multiples of step^5 apart)
MAX_AXIS_VALUES = 100_000
DIGITS = 10


@dataclass(frozen=True)
class Point:
    """One set of compound-scaling coefficients."""

    alpha: float
    beta: float
    gamma: float

    @property
    def product(self) -> float:
        """alpha * beta^2 * gamma^2: the multiply-add growth per unit of phi before rounding."""
        return self.alpha * self.beta ** 2 * self.gamma ** 2


PAPER = Point(1.2, 1.1, 1.15)  # the paper's grid-search result at phi = 1


@dataclass(frozen=True)
class Grid:
    """The grid to search: a closed range per coefficient, one step, and the tolerance."""

    alpha_range: tuple[float, float] = (1.0, 2.0)
    beta_range: tuple[float, float] = (1.0, 1.5)
    gamma_range: tuple[float, float] = (1.0, 1.5)
    step: float = 0.05
    tolerance: float = 0.1
    target: float = TARGET_PRODUCT
    constraint: str = "measured"

    def __post_init__(self) -> None:
        CONSTRAINTS.get(self.constraint)  # an unknown name lists the known ones
        for name in ("alpha_range", "beta_range", "gamma_range"):
            value = getattr(self, name)
            object.__setattr__(self, name, _check_range(name, value))
        if not _is_number(self.step) or not self.step > 0 or not math.isfinite(self.step):
            raise ValueError(f"`step > 0` must hold, but got step={self.step!r}; "
                             f"pass e.g. --step 0.05")
        if not _is_number(self.tolerance) or not self.tolerance > 0 \
                or not math.isfinite(self.tolerance):
            raise ValueError(f"`tolerance > 0` must hold, but got tolerance={self.tolerance!r}; "
                             f"pass e.g. --tolerance 0.1")
        for name in ("alpha_range", "beta_range", "gamma_range"):
            n = _count(*getattr(self, name), self.step)
            if n > MAX_AXIS_VALUES:
                raise ValueError(f"--step {self.step:g} puts {n} values on {name} (at most "
                                 f"{MAX_AXIS_VALUES}); pass a larger --step such as 0.05")

    def axis(self, name: str) -> tuple[float, ...]:
        """The values of ``alpha``, ``beta`` or ``gamma`` on this grid."""
        lo, hi = getattr(self, f"{name}_range")
        return axis_values(lo, hi, self.step)

    @property
    def points_total(self) -> int:
        return math.prod(len(self.axis(n)) for n in ("alpha", "beta", "gamma"))

    def keeps(self, point: Point) -> bool:
        """Whether ``point`` satisfies the formula, ``|alpha beta^2 gamma^2 - target| <=
        tolerance``."""
        return abs(point.product - self.target) <= self.tolerance + EPS

    def keeps_ratio(self, ratio: float, phi: float) -> bool:
        """Whether a measured MACs ratio lies within ``tolerance`` of ``target^phi``
        (relatively)."""
        return abs(ratio / self.target ** phi - 1.0) <= self.tolerance + EPS

    def to_dict(self) -> dict[str, object]:
        return {"alpha_range": list(self.alpha_range), "beta_range": list(self.beta_range),
                "gamma_range": list(self.gamma_range), "step": self.step,
                "tolerance": self.tolerance, "target": self.target,
                "constraint": self.constraint}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Grid:
        d = dict(d)
        d.setdefault("constraint", "formula")  # saved before the measured constraint existed
        for name in ("alpha_range", "beta_range", "gamma_range"):
            if name in d:
                d[name] = tuple(d[name])  # type: ignore[arg-type]
        return cls(**d)  # type: ignore[arg-type]


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_range(name: str, value: object) -> tuple[float, float]:
    flag = "--" + name.replace("_", "-")
    if not isinstance(value, (tuple, list)) or len(value) != 2 \
            or not all(_is_number(v) and math.isfinite(v) for v in value):
        raise ValueError(f"{flag} must be two numbers LO,HI, but got {value!r}; "
                         f"pass e.g. {flag} 1,1.5")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ValueError(f"{flag} {lo:g},{hi:g} is inverted: `LO <= HI` must hold; "
                         f"pass e.g. {flag} {hi:g},{lo:g}")
    if lo < 1:
        raise ValueError(f"{flag} {lo:g},{hi:g}: `LO >= 1` must hold (EfficientNet Eq. 3: "
                         f"alpha, beta, gamma >= 1); pass e.g. {flag} 1,{max(hi, 1):g}")
    return lo, hi


def _count(lo: float, hi: float, step: float) -> int:
    return math.floor((hi - lo) / step + EPS) + 1


def axis_values(lo: float, hi: float, step: float) -> tuple[float, ...]:
    """``lo, lo + step, ...`` up to ``hi`` inclusive (``hi`` itself when it is on the grid),
    each rounded to 10 decimals so that grid values are the floats a user types."""
    if not step > 0:
        raise ValueError(f"`step > 0` must hold, but got step={step!r}; pass e.g. --step 0.05")
    return tuple(round(lo + i * step, DIGITS) for i in range(_count(lo, hi, step)))


def _gamma_candidates(grid: Grid, gammas: tuple[float, ...], ab2: float) -> range:
    """Indices into ``gammas`` that can satisfy the constraint for a given alpha * beta^2,
    widened by one on each side; the exact check is :meth:`Grid.keeps`."""
    lo_sq = max(grid.target - grid.tolerance, 0.0) / ab2
    hi_sq = (grid.target + grid.tolerance) / ab2
    g0 = gammas[0]
    lo = math.ceil((math.sqrt(lo_sq) - g0) / grid.step) - 1
    hi = math.floor((math.sqrt(hi_sq) - g0) / grid.step) + 1
    return range(max(lo, 0), min(hi, len(gammas) - 1) + 1)


def iter_points(grid: Grid) -> Iterator[Point]:
    """The points the formula keeps, ordered by alpha, then beta, then gamma."""
    gammas = grid.axis("gamma")
    for a in grid.axis("alpha"):
        for b in grid.axis("beta"):
            for i in _gamma_candidates(grid, gammas, a * b * b):
                p = Point(a, b, gammas[i])
                if grid.keeps(p):
                    yield p


# What a constraint is given: the measured MACs ratio of a point at phi (None when the
# constraint needs no measurement), and phi.
Measure = Callable[[Point], float]


@dataclass(frozen=True)
class Enumeration:
    """What the grid and the constraint leave; ``ratios`` are the kept points' measured MACs
    ratios where the constraint measured them (else empty)."""

    grid: Grid
    points_total: int
    points: tuple[Point, ...]
    ratios: tuple[float, ...] = ()
    phi: float = 1.0

    @property
    def points_kept(self) -> int:
        return len(self.points)

    def summary(self) -> dict[str, object]:
        return {"alpha_range": list(self.grid.alpha_range),
                "beta_range": list(self.grid.beta_range),
                "gamma_range": list(self.grid.gamma_range), "step": self.grid.step,
                "constraint": self.grid.constraint, "goal_ratio": self.goal_ratio,
                "points_total": self.points_total, "points_kept": self.points_kept}

    @property
    def goal_ratio(self) -> float:
        """The MACs ratio the constraint aims at: ``target^phi`` (2^phi)."""
        return self.grid.target ** self.phi

    def describe(self) -> str:
        """'|alpha*beta^2*gamma^2 - 2| <= 0.1' or 'measured MACs ratio within 10% of 2'."""
        g = self.grid
        if g.constraint == "formula":
            return f"|alpha*beta^2*gamma^2 - {g.target:g}| <= {g.tolerance:g}"
        return (f"measured MACs ratio within {g.tolerance:.0%} of {g.target:g}^{self.phi:g} = "
                f"{self.goal_ratio:.4g}")


def nearest(grid: Grid) -> tuple[Point, float]:
    """The grid point whose product is closest to the target, and its distance."""
    best: tuple[Point, float] | None = None
    gammas = grid.axis("gamma")
    for a in grid.axis("alpha"):
        for b in grid.axis("beta"):
            ab2 = a * b * b
            g = math.sqrt(grid.target / ab2)
            # the product grows with gamma, so the nearest gamma is next to the clamped solution
            i = min(max(round((g - gammas[0]) / grid.step), 0), len(gammas) - 1)
            for j in {max(i - 1, 0), i, min(i + 1, len(gammas) - 1)}:
                p = Point(a, b, gammas[j])
                d = abs(p.product - grid.target)
                if best is None or d < best[1]:
                    best = (p, d)
    if best is None:  # unreachable: every axis holds at least its LO
        raise ValueError(f"grid {grid} has no points")
    return best


def _formula(grid: Grid, *, measure: Measure | None, phi: float) -> Enumeration:
    points = tuple(iter_points(grid))
    if not points:
        p, d = nearest(grid)
        raise ValueError(
            f"--tolerance {grid.tolerance:g} leaves no point of the {grid.points_total}-point "
            f"grid with |alpha*beta^2*gamma^2 - {grid.target:g}| <= tolerance; the nearest is "
            f"alpha={p.alpha:g} beta={p.beta:g} gamma={p.gamma:g} at {d:.4g}: pass "
            f"--tolerance {math.ceil(d * 1e4) / 1e4:g} or more, a finer --step, or wider ranges")
    return Enumeration(grid=grid, points_total=grid.points_total, points=points, phi=phi)


def _measured(grid: Grid, *, measure: Measure | None, phi: float) -> Enumeration:
    """Every point whose measured ratio is within tolerance of ``target^phi``. The measured
    ratio never falls as gamma grows (a larger input never has fewer multiply-adds), so each
    (alpha, beta) stops at the first gamma beyond the upper bound."""
    if measure is None:
        raise TypeError("the measured constraint needs measure=, the measured MACs ratio of a "
                        "point (gridsearch.measure.MacsRatio)")
    goal = grid.target ** phi
    points: list[Point] = []
    ratios: list[float] = []
    best: tuple[Point, float, float] | None = None  # nearest point, relative distance, ratio
    for a in grid.axis("alpha"):
        for b in grid.axis("beta"):
            for c in grid.axis("gamma"):
                p = Point(a, b, c)
                r = measure(p)
                d = abs(r / goal - 1.0)
                if best is None or d < best[1]:
                    best = (p, d, r)
                if grid.keeps_ratio(r, phi):
                    points.append(p)
                    ratios.append(r)
                elif r > goal:
                    break
    if not points:
        p, d, r = best  # type: ignore[misc]  # every axis holds at least its LO
        raise ValueError(
            f"--tolerance {grid.tolerance:g} leaves no point of the {grid.points_total}-point "
            f"grid whose measured MACs ratio is within {grid.tolerance:.0%} of {goal:.4g}; the "
            f"nearest is alpha={p.alpha:g} beta={p.beta:g} gamma={p.gamma:g} at x{r:.4g} "
            f"({d:.1%} off): pass --tolerance {math.ceil(d * 1e4) / 1e4:g} or more, a finer "
            f"--step, wider ranges, or --constraint formula")
    return Enumeration(grid=grid, points_total=grid.points_total, points=tuple(points),
                       ratios=tuple(ratios), phi=phi)


# How a grid keeps its points: name -> enumerate(grid, measure=, phi=) -> Enumeration.
CONSTRAINTS: Registry[Callable[..., Enumeration]] = Registry("constraint")
CONSTRAINTS.add("measured", _measured)
CONSTRAINTS.add("formula", _formula)


def enumerate_grid(grid: Grid, *, measure: Measure | None = None,
                   phi: float = 1.0) -> Enumeration:
    """Every point ``grid``'s constraint keeps, ordered by alpha, then beta, then gamma;
    raises ValueError when it keeps none. The measured constraint needs ``measure``, the
    measured MACs ratio of a point at ``phi``."""
    return CONSTRAINTS.get(grid.constraint)(grid, measure=measure, phi=phi)
