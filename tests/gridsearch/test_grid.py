"""The (alpha, beta, gamma) grid: worked cases and an exact brute-force check of the constraint."""
from __future__ import annotations

from fractions import Fraction
from itertools import product

import pytest

from gridsearch.grid import PAPER, Grid, Point, axis_values, enumerate_grid, nearest


def test_axis_values_are_the_floats_a_user_types() -> None:
    values = axis_values(1.0, 1.5, 0.05)
    assert len(values) == 11
    assert values[3] == 1.15 and repr(values[3]) == "1.15"
    assert values[-1] == 1.5
    assert axis_values(1.0, 2.0, 0.05)[4] == 1.2
    assert axis_values(1.0, 1.52, 0.1) == (1.0, 1.1, 1.2, 1.3, 1.4, 1.5)  # HI off the grid
    assert axis_values(1.3, 1.3, 0.05) == (1.3,)  # LO == HI fixes the coefficient


def test_worked_case_by_hand() -> None:
    # axes {1, 1.5, 2} x {1, 1.5} x {1, 1.5}; products worked out by hand: only
    # (1, 1, 1.5) = 2.25, (1, 1.5, 1) = 2.25 (both exactly on the tolerance boundary) and
    # (2, 1, 1) = 2 lie within 0.25 of 2; the next nearest, (1.5, 1, 1) = 1.5, does not.
    e = enumerate_grid(Grid(step=0.5, tolerance=0.25))
    assert e.points_total == 12
    assert e.points == (Point(1.0, 1.0, 1.5), Point(1.0, 1.5, 1.0), Point(2.0, 1.0, 1.0))
    assert enumerate_grid(Grid(step=0.5, tolerance=0.0)).points == (Point(2.0, 1.0, 1.0),)


def test_default_grid_keeps_the_papers_point() -> None:
    e = enumerate_grid(Grid())
    assert e.points_total == 21 * 11 * 11
    assert PAPER in e.points
    assert PAPER.product == pytest.approx(1.92027)
    assert list(e.points) == sorted(e.points, key=lambda p: (p.alpha, p.beta, p.gamma))


def _exact_kept(grid: Grid) -> set[tuple[Fraction, Fraction, Fraction]]:
    """Brute force over the whole cube in exact rational arithmetic."""
    def axis(lo: float, hi: float) -> list[Fraction]:
        lo_f, step = Fraction(str(lo)), Fraction(str(grid.step))
        n = int((Fraction(str(hi)) - lo_f) / step)
        return [lo_f + i * step for i in range(n + 1)]

    target, tol = Fraction(str(grid.target)), Fraction(str(grid.tolerance))
    return {(a, b, g) for a, b, g in product(axis(*grid.alpha_range), axis(*grid.beta_range),
                                             axis(*grid.gamma_range))
            if abs(a * b * b * g * g - target) <= tol}


@pytest.mark.parametrize("grid", [
    Grid(),
    Grid(tolerance=0.05),
    Grid(tolerance=0.0),
    Grid(step=0.1, tolerance=0.2),
    Grid(step=0.02, tolerance=0.03, alpha_range=(1.0, 1.6)),
    Grid(step=0.25, tolerance=0.5, alpha_range=(1.0, 3.0), beta_range=(1.0, 2.0),
         gamma_range=(1.0, 2.0)),
    Grid(step=0.05, tolerance=0.1, beta_range=(1.1, 1.1)),
], ids=str)
def test_kept_points_are_exactly_those_within_tolerance(grid: Grid) -> None:
    exact = _exact_kept(grid)
    if not exact:
        with pytest.raises(ValueError, match="leaves no point"):
            enumerate_grid(grid)
        return
    e = enumerate_grid(grid)
    got = {(Fraction(str(p.alpha)), Fraction(str(p.beta)), Fraction(str(p.gamma)))
           for p in e.points}
    assert got == exact  # every kept point satisfies it, and none that does is dropped
    assert len(e.points) == len(got)  # no duplicates
    assert all(abs(p.product - grid.target) <= grid.tolerance + 1e-9 for p in e.points)


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha_range": (2.0, 1.0)}, "inverted"),
    ({"beta_range": (0.9, 1.5)}, "LO >= 1"),
    ({"gamma_range": (1.0,)}, "two numbers"),
    ({"step": 0.0}, "step > 0"),
    ({"step": -0.05}, "step > 0"),
    ({"tolerance": -0.1}, "tolerance >= 0"),
    ({"step": 1e-7}, "larger --step"),
])
def test_bad_grids_say_rule_value_and_fix(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        Grid(**kwargs)
    assert "pass" in str(info.value)


def test_a_tolerance_that_keeps_nothing_names_the_nearest_point() -> None:
    # products on {1, 1.5}^3 by hand: 1, 1.5, 2.25 (twice), 3.375 ...: 2.25 is nearest to 2
    grid = Grid(step=0.5, tolerance=0.2, alpha_range=(1.0, 1.5))
    p, d = nearest(grid)
    assert (p, d) == (Point(1.0, 1.0, 1.5), 0.25)
    with pytest.raises(ValueError, match=r"nearest is alpha=1 beta=1 gamma=1.5 at 0.25: pass "
                                         r"--tolerance 0.25"):
        enumerate_grid(grid)


def test_grid_round_trips_through_a_dict() -> None:
    g = Grid(step=0.1, tolerance=0.2, alpha_range=(1.0, 1.5))
    assert Grid.from_dict(g.to_dict()) == g
