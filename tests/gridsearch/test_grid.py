"""The (alpha, beta, gamma) grid: worked cases and an exact brute-force check of both constraints
(the formula alpha*beta^2*gamma^2 ~= 2, and the measured MACs ratio ~= 2^phi)."""
from __future__ import annotations

from fractions import Fraction
from itertools import product

import pytest

from gridsearch.grid import PAPER, Grid, Point, axis_values, enumerate_grid, nearest
from gridsearch.measure import MacsRatio
from space import ArchSpec, StageSpec, StemSpec, compound, count_analytic, count_fvcore, get_model


def F(**kw) -> Grid:
    """A grid under the formula constraint."""
    return Grid(constraint="formula", **kw)


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
    e = enumerate_grid(F(step=0.5, tolerance=0.25))
    assert e.points_total == 12
    assert e.points == (Point(1.0, 1.0, 1.5), Point(1.0, 1.5, 1.0), Point(2.0, 1.0, 1.0))
    assert enumerate_grid(F(step=0.5, tolerance=1e-6)).points == (Point(2.0, 1.0, 1.0),)


def test_default_grid_keeps_the_papers_point() -> None:
    e = enumerate_grid(F())
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
    F(),
    F(tolerance=0.05),
    F(tolerance=1e-6),
    F(step=0.1, tolerance=0.2),
    F(step=0.02, tolerance=0.03, alpha_range=(1.0, 1.6)),
    F(step=0.25, tolerance=0.5, alpha_range=(1.0, 3.0), beta_range=(1.0, 2.0),
      gamma_range=(1.0, 2.0)),
    F(step=0.05, tolerance=0.1, beta_range=(1.1, 1.1)),
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
    ({"tolerance": -0.1}, "tolerance > 0"),
    ({"tolerance": 0.0}, "tolerance > 0"),
    ({"tolerance": float("nan")}, "tolerance > 0"),
    ({"step": 1e-7}, "larger --step"),
])
def test_bad_grids_say_rule_value_and_fix(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        Grid(**kwargs)
    assert "pass" in str(info.value)


def test_a_tolerance_that_keeps_nothing_names_the_nearest_point() -> None:
    # products on {1, 1.5}^3 by hand: 1, 1.5, 2.25 (twice), 3.375 ...: 2.25 is nearest to 2
    grid = F(step=0.5, tolerance=0.2, alpha_range=(1.0, 1.5))
    p, d = nearest(grid)
    assert (p, d) == (Point(1.0, 1.0, 1.5), 0.25)
    with pytest.raises(ValueError, match=r"nearest is alpha=1 beta=1 gamma=1.5 at 0.25: pass "
                                         r"--tolerance 0.25"):
        enumerate_grid(grid)


def test_grid_round_trips_through_a_dict() -> None:
    g = Grid(step=0.1, tolerance=0.2, alpha_range=(1.0, 1.5))
    assert Grid.from_dict(g.to_dict()) == g and g.constraint == "measured"
    assert Grid.from_dict(F().to_dict()) == F()
    old = {k: v for k, v in g.to_dict().items() if k != "constraint"}
    assert Grid.from_dict(old).constraint == "formula"  # saved before the measured constraint


def test_an_unknown_constraint_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown constraint 'flops'; known: formula, measured"):
        Grid(constraint="flops")


# ----------------------------------------------------------------------------- measured
TINY = ArchSpec(name="tiny-b0", stem=StemSpec(8),
                stages=(StageSpec("mbconv", 1, 3, 1, 8, 1.0, 0.25),
                        StageSpec("mbconv", 2, 3, 2, 16, 3.0, 0.25)),
                head_channels=32, in_channels=1, num_classes=10, resolution=32)


def test_measured_worked_example_keeps_exactly_the_points_within_tolerance() -> None:
    # {1, 1.5, 2} x {1, 1.5} x {1, 1.5} on the tiny base at phi 1. The measured ratios, counted
    # by hand from the analytic counter (which equals fvcore, checked below), are:
    ratio = MacsRatio(TINY, 1.0)
    base = count_analytic(TINY).macs
    by_hand = {p: count_analytic(compound(TINY, p.alpha, p.beta, p.gamma, 1.0)).macs / base
               for p in (Point(a, b, c) for a in (1.0, 1.5, 2.0) for b in (1.0, 1.5)
                         for c in (1.0, 1.5))}
    assert {p: ratio(p) for p in by_hand} == by_hand
    # The formula keeps (1, 1, 1.5), (1, 1.5, 1) and (2, 1, 1) at 2.25, 2.25 and 2 (tolerance
    # 0.25). Measured: resolution round(32 * 1.5) = 48 gives 2.2471; channels 8/16/32 -> 16/24/48
    # give 2.4535; repeats (1, 2) -> (2, 4) give 1.9311, and (1.5, 1, 1) -> (2, 3) gives 1.5287,
    # which the formula (product 1.5) drops but 23.6% off 2 is within 0.25.
    rounded = {p: round(r, 4) for p, r in by_hand.items() if r < 3}
    assert rounded == {Point(1.0, 1.0, 1.0): 1.0, Point(1.0, 1.0, 1.5): 2.2471,
                       Point(1.0, 1.5, 1.0): 2.4535, Point(1.5, 1.0, 1.0): 1.5287,
                       Point(2.0, 1.0, 1.0): 1.9311}
    for tol, kept in [
        (0.1, [Point(2.0, 1.0, 1.0)]),
        (0.15, [Point(1.0, 1.0, 1.5), Point(2.0, 1.0, 1.0)]),
        (0.23, [Point(1.0, 1.0, 1.5), Point(1.0, 1.5, 1.0), Point(2.0, 1.0, 1.0)]),
        (0.25, [Point(1.0, 1.0, 1.5), Point(1.0, 1.5, 1.0), Point(1.5, 1.0, 1.0),
                Point(2.0, 1.0, 1.0)]),
    ]:
        e = enumerate_grid(Grid(step=0.5, tolerance=tol), measure=ratio, phi=1.0)
        assert list(e.points) == kept
        assert set(kept) == {p for p, r in by_hand.items() if abs(r / 2 - 1) <= tol}
        assert e.ratios == tuple(by_hand[p] for p in kept)
        assert e.summary()["constraint"] == "measured" and e.summary()["goal_ratio"] == 2.0


@pytest.mark.parametrize("grid, phi", [
    (Grid(), 1.0),
    (Grid(tolerance=0.03), 1.0),
    (Grid(step=0.1, tolerance=0.1, alpha_range=(1.0, 1.5)), 2.0),
], ids=str)
def test_measured_constraint_equals_brute_force_over_the_cube(grid: Grid, phi: float) -> None:
    b0 = get_model("efficientnet-b0")
    ratio = MacsRatio(b0, phi)
    goal = 2.0 ** phi
    exact = [Point(a, b, c) for a in grid.axis("alpha") for b in grid.axis("beta")
             for c in grid.axis("gamma")
             if abs(ratio(Point(a, b, c)) / goal - 1) <= grid.tolerance]
    e = enumerate_grid(grid, measure=ratio, phi=phi)
    assert list(e.points) == exact  # the early stop along gamma drops nothing
    assert all(abs(r / goal - 1) <= grid.tolerance for r in e.ratios)


def test_measured_default_grid_on_b0_is_tighter_than_the_formula() -> None:
    b0 = get_model("efficientnet-b0")
    ratio = MacsRatio(b0, 1.0)
    measured = enumerate_grid(Grid(), measure=ratio)
    formula = enumerate_grid(F())
    assert all(1.8 - 1e-9 <= r <= 2.2 + 1e-9 for r in measured.ratios)
    assert max(ratio(p) for p in formula.points) > 3  # the formula keeps 3x networks
    assert PAPER in formula.points and PAPER not in measured.points  # B1 measures 2.55x
    assert ratio(PAPER) == pytest.approx(2.5532, abs=1e-4)


def test_measured_ratio_is_fvcores() -> None:
    p = Point(1.5, 1.0, 1.5)
    spec = compound(TINY, p.alpha, p.beta, p.gamma, 1.0)
    assert MacsRatio(TINY, 1.0)(p) == count_fvcore(spec).macs / count_fvcore(TINY).macs


def test_a_measured_tolerance_that_keeps_nothing_names_the_nearest_point() -> None:
    ratio = MacsRatio(TINY, 1.0)
    with pytest.raises(ValueError, match=r"leaves no point of the 12-point grid whose measured "
                                         r"MACs ratio is within 1% of 2; the nearest is "
                                         r"alpha=2 beta=1 gamma=1 at x1.931 \(3.4% off\): "
                                         r"pass --tolerance 0.0345"):
        enumerate_grid(Grid(step=0.5, tolerance=0.01), measure=ratio)
    with pytest.raises(TypeError, match="needs measure="):
        enumerate_grid(Grid())
