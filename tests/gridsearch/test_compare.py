"""--compare-single's pieces: single coefficients solved for a measured ratio, and the seeds'
statistics (Welch's t and Student's t p-values against worked numbers)."""
from __future__ import annotations

import math

import pytest

from gridsearch.compare import compare_rows, summarize, t_sf_two_sided, verdict, welch
from gridsearch.grid import PAPER, Point
from gridsearch.measure import MacsRatio, solve_single
from space import get_model


@pytest.mark.parametrize("t, df", [(12.7062, 1), (2.776445, 4), (2.228139, 10), (1.959964, 1e9)])
def test_student_t_p_values_match_the_tables(t: float, df: float) -> None:
    # two-sided 5% critical values of Student's t (any statistics table)
    assert t_sf_two_sided(t, df) == pytest.approx(0.05, abs=2e-6)
    assert t_sf_two_sided(-t, df) == pytest.approx(0.05, abs=2e-6)


def test_student_t_edges() -> None:
    assert t_sf_two_sided(0.0, 3) == 1.0 and t_sf_two_sided(math.inf, 3) == 0.0
    assert t_sf_two_sided(1.0, 1) == pytest.approx(0.5)  # Cauchy: P(|T| >= 1) = 1/2
    with pytest.raises(ValueError, match="df > 0"):
        t_sf_two_sided(1.0, 0)


def test_welch_worked_by_hand() -> None:
    # means 2 and 5.5, variances 1 and 5/3: se^2 = 1/3 + 5/12 = 3/4, t = -3.5 / sqrt(3/4),
    # df = (3/4)^2 / ((1/3)^2 / 2 + (5/12)^2 / 3) = 4.9592
    a, b = summarize([1, 2, 3]), summarize([4, 5, 6, 7])
    assert (a.n, a.mean, a.std) == (3, 2.0, 1.0)
    assert b.std == pytest.approx(math.sqrt(5 / 3))
    w = welch(a, b)
    assert w.diff == -3.5 and w.t == pytest.approx(-3.5 / math.sqrt(0.75))
    assert w.df == pytest.approx(0.5625 / (1 / 18 + 25 / 432))
    assert 0.009 < w.p < 0.011
    assert verdict(w, "depth") == "depth-only is better beyond the noise (p = 0.01 < 0.05)"
    assert welch(summarize([0.5]), b) is None
    assert verdict(None, "width").startswith("cannot tell")
    assert verdict(welch(summarize([1, 3]), summarize([2, 4])), "width").startswith(
        "within the noise")


def test_compare_rows_test_each_single_variant_against_compound() -> None:
    rows = compare_rows({"compound": [0.80, 0.82, 0.81], "depth": [0.70, 0.71, 0.72],
                         "width": [0.81, 0.80]}, {"depth": {"macs": 5}})
    assert [r["kind"] for r in rows] == ["compound", "depth", "width"]
    assert rows[0]["accuracy_mean"] == pytest.approx(0.81) and "verdict" not in rows[0]
    assert rows[1]["macs"] == 5 and rows[1]["diff_vs_compound"] == pytest.approx(0.10)
    assert rows[1]["verdict"].startswith("compound is better beyond the noise")
    assert rows[2]["verdict"].startswith("within the noise") and rows[2]["seeds"] == 2


@pytest.mark.parametrize("kind", ["depth", "width", "resolution"])
def test_solved_single_point_is_the_nearest_on_its_axis(kind: str) -> None:
    b0 = get_model("efficientnet-b0")
    ratio = MacsRatio(b0, 1.0)
    goal = ratio(PAPER)
    solved = solve_single(ratio, kind, goal)
    axis = {"depth": "alpha", "width": "beta", "resolution": "gamma"}[kind]
    c = getattr(solved.point, axis)
    assert c > 1 and sorted((solved.point.alpha, solved.point.beta, solved.point.gamma))[:2] == [
        1.0, 1.0]
    assert solved.ratio == ratio(solved.point) and solved.error == solved.ratio / goal - 1
    # brute force on a 1e-3 grid of the coefficient: nothing lands nearer the goal
    scan = [ratio(Point(*(1 + i / 1000 if n == axis else 1.0
                          for n in ("alpha", "beta", "gamma")))) for i in range(0, 2000)]
    assert abs(solved.ratio / goal - 1) <= min(abs(r / goal - 1) for r in scan) + 1e-12
    assert abs(solved.error) <= 0.1  # B0 is fine-grained enough on every axis


def test_solving_needs_a_positive_phi_and_a_known_kind() -> None:
    b0 = get_model("efficientnet-b0")
    with pytest.raises(ValueError, match="phi > 0"):
        solve_single(MacsRatio(b0, 0.0), "depth", 2.0)
    with pytest.raises(ValueError, match="unknown single-dimension kind 'channels'"):
        solve_single(MacsRatio(b0, 1.0), "channels", 2.0)
