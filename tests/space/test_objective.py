from __future__ import annotations

import pytest

from space.objective import Objective, make_objective, parse_macs


@pytest.mark.parametrize("text", ["400M", "0.4G", "4e8", "400000000", "400m", " 400M ", "0.4g",
                                  "400e6", "4E8", "0.4B"])
def test_parse_macs_accepts_the_documented_forms(text):
    assert parse_macs(text) == 400_000_000


@pytest.mark.parametrize("text", ["", "abc", "400X", "-400M", "0", "4e8M5", "M", "400 MM", "1e-9"])
def test_parse_macs_rejects_anything_else_with_the_fix(text):
    with pytest.raises(ValueError) as e:
        parse_macs(text)
    assert "--target-flops" in str(e.value)


def test_soft_reward_on_worked_numbers():
    obj = make_objective(400_000_000)  # a = b = -0.07
    # At the target the factor is 1.
    assert obj.reward(0.75, 400_000_000) == pytest.approx(0.75)
    # Half the MACs: 0.5^-0.07 = 1.049717...
    assert obj.reward(0.75, 200_000_000) == pytest.approx(0.75 * 1.0497166836230674, rel=1e-12)
    # Twice the MACs: 2^-0.07 = 0.952638...
    assert obj.reward(0.75, 800_000_000) == pytest.approx(0.75 * 0.9526379980439373, rel=1e-12)


def test_soft_reward_prefers_smaller_models_at_equal_accuracy():
    obj = make_objective(400_000_000)
    assert obj.reward(0.8, 300_000_000) > obj.reward(0.8, 400_000_000) > obj.reward(0.8, 500_000_000)


def test_hard_constraint_is_flat_from_its_floor_to_t_and_steep_on_both_sides():
    obj = make_objective(400_000_000, constraint="hard")
    assert (obj.a, obj.b, obj.floor) == (0.0, -1.0, 0.7)
    assert obj.reward(0.8, 280_000_000) == pytest.approx(0.8)  # the floor, 0.7 T
    assert obj.reward(0.8, 400_000_000) == pytest.approx(0.8)  # T
    # below the floor the reward falls as MACs / (0.7 T): 100 / 280 of it
    assert obj.reward(0.8, 100_000_000) == pytest.approx(0.8 * 100 / 280)
    assert obj.reward(0.8, 800_000_000) == pytest.approx(0.4)  # (800/400)^-1
    # the floor is the hard constraint's only: soft keeps its savings reward
    assert make_objective(400_000_000).floor == 0.0


def test_a_b_overrides_and_validation():
    obj = make_objective(1_000, constraint="soft", a=-0.1, b=-0.5)
    assert obj.exponent(1_000) == -0.1 and obj.exponent(1_001) == -0.5
    with pytest.raises(ValueError, match="positive exponent rewards bigger"):
        Objective(400_000_000, a=0.07, b=0.07)
    with pytest.raises(KeyError, match="hard, soft"):
        make_objective(400_000_000, constraint="medium")
    with pytest.raises(ValueError, match="target > 0"):
        Objective(0)


def test_the_latency_objective_is_the_same_formula_in_ms():
    from space.objective import METRICS, parse_latency

    soft = make_objective(20.0, metric="latency")
    assert soft.target_macs is None and soft.to_dict()["metric"] == "latency"
    assert soft.reward(0.75, 20.0) == pytest.approx(0.75)
    assert soft.reward(0.75, 10.0) == pytest.approx(0.75 * 1.0497166836230674, rel=1e-12)
    hard = make_objective(20.0, constraint="hard", metric="latency")
    assert hard.reward(0.8, 14.0) == pytest.approx(0.8)  # the floor, 0.7 T
    assert hard.reward(0.8, 7.0) == pytest.approx(0.8 * 7 / 14)
    assert hard.reward(0.8, 40.0) == pytest.approx(0.4)
    assert METRICS.get("latency").parse("1500us") == pytest.approx(1.5)
    assert parse_latency("0.02s") == pytest.approx(20.0)
    with pytest.raises(ValueError, match="pass e.g. --target-latency 20ms"):
        Objective(0.0, metric="latency")
    with pytest.raises(KeyError, match="latency, macs"):
        Objective(1.0, metric="watts")
    with pytest.raises(ValueError, match="`latency > 0` must hold"):
        soft.reward(0.5, 0.0)
