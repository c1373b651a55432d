"""The accuracy/MACs Pareto front on hand-made points, ties and duplicates included."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from results.pareto import dominates, pareto_front


def test_front_of_hand_made_points_cheapest_first():
    pts = [(0.90, 400), (0.70, 100), (0.80, 300), (0.75, 350), (0.85, 250)]
    # (0.80, 300) loses to (0.85, 250); (0.75, 350) to both
    assert pareto_front(pts) == [1, 4, 0]


def test_equal_macs_keeps_only_the_most_accurate():
    assert pareto_front([(0.8, 200), (0.9, 200), (0.7, 100)]) == [2, 1]


def test_equal_accuracy_keeps_only_the_cheapest():
    assert pareto_front([(0.9, 300), (0.9, 200), (0.6, 100)]) == [2, 1]


def test_duplicates_on_the_front_are_all_kept():
    assert pareto_front([(0.9, 200), (0.5, 100), (0.9, 200)]) == [1, 0, 2]


def test_dominated_duplicates_are_all_dropped():
    assert pareto_front([(0.5, 300), (0.9, 200), (0.5, 300)]) == [1]


def test_all_points_equal_are_all_on_the_front():
    assert pareto_front([(0.5, 7)] * 4) == [0, 1, 2, 3]


def test_one_point_and_no_points():
    assert pareto_front([(0.1, 5)]) == [0]
    assert pareto_front([]) == []


def test_a_chain_where_each_point_dominates_the_next():
    assert pareto_front([(0.9 - 0.1 * i, 100 + i) for i in range(5)]) == [0]


@pytest.mark.parametrize("bad", [(math.nan, 100), (0.5, math.inf), (0.5, math.nan)])
def test_non_finite_points_are_an_error(bad):
    with pytest.raises(ValueError, match="point 1 is"):
        pareto_front([(0.5, 100), bad])


def test_dominates_needs_one_strict_improvement():
    assert dominates((0.9, 100), (0.8, 100))
    assert dominates((0.8, 90), (0.8, 100))
    assert not dominates((0.8, 100), (0.8, 100))
    assert not dominates((0.9, 200), (0.8, 100))


# Small integer grids force many ties and duplicates.
points = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 6)), max_size=25)


@settings(max_examples=200, deadline=None)
@given(points)
def test_front_matches_the_definition(pts):
    front = pareto_front(pts)
    expect = [i for i, p in enumerate(pts) if not any(dominates(q, p) for q in pts)]
    assert sorted(front) == expect
    assert [pts[i][1] for i in front] == sorted(pts[i][1] for i in front)
