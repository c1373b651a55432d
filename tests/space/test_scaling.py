"""Compound scaling: the official rounding rules on hand-worked cases, and alpha^phi etc. on B0.

round_filters (REFERENCE.md): f *= width; new = max(8, int(f + 4) // 8 * 8); if new < 0.9 * f:
new += 8. round_repeats: ceil(depth * repeats).
"""
from __future__ import annotations

import math

import pytest

from space.counting import count_analytic
from space.scaling import (check_coefficients, compound, flops_factor, max_phi, round_filters,
                           round_repeats, scale)
from space.zoo import get_model


@pytest.mark.parametrize("channels, width, expected", [
    (32, 1.1, 32),     # f = 35.2; int(39.2) // 8 * 8 = 32; 32 >= 0.9 * 35.2 = 31.68
    (16, 1.4, 24),     # f = 22.4; int(26.4) = 26 -> 24; 24 >= 20.16
    (40, 1.1, 48),     # f = 44.0; int(48.0) -> 48 (B2's third stage)
    (112, 1.1, 120),   # f = 123.2; int(127.2) = 127 -> 120 (B2's fifth stage)
    (1280, 1.1, 1408),  # f = 1408; int(1412) -> 1408 (B2's head)
    (320, 1.8, 576),   # f = 576; int(580) -> 576 (B6's last stage)
    (320, 2.0, 640),   # f = 640 exactly
    (4, 0.5, 8),       # f = 2; int(6) // 8 * 8 = 0 -> max(8, 0) = 8: never below the divisor
    (3, 2.0, 8),       # f = 6; int(10) -> 8 = max(8, 8); 8 >= 5.4
])
def test_round_filters_by_hand(channels: int, width: float, expected: int) -> None:
    assert round_filters(channels, width) == expected


@pytest.mark.parametrize("channels, width, without_rule, expected", [
    # f = 35.9; int(39.9) // 8 * 8 = 32, which is 10.9% below f (< 0.9 * f = 32.31): + 8 = 40
    (359, 0.1, 32, 40),
    # f = 9.9; int(13.9) -> 8 = max(8, 8); 8 < 0.9 * 9.9 = 8.91: + 8 = 16
    (9, 1.1, 8, 16),
])
def test_round_filters_never_rounds_down_by_more_than_10_percent(
        channels: int, width: float, without_rule: int, expected: int) -> None:
    f = channels * width
    assert max(8, int(f + 4) // 8 * 8) == without_rule < 0.9 * f
    assert round_filters(channels, width) == expected


def test_round_filters_width_one_is_the_identity() -> None:
    # Scaling by 1 leaves a spec unchanged, even for channel counts that are not multiples of 8.
    assert [round_filters(c, 1.0) for c in (10, 17, 32)] == [10, 17, 32]


@pytest.mark.parametrize("repeats, depth, expected", [
    (1, 1.1, 2),    # ceil(1.1)
    (2, 1.1, 3),    # ceil(2.2)
    (3, 1.2, 4),    # ceil(3.6)
    (5, 1.4, 7),    # 1.4 * 5 == 7.0 in floating point: stays 7
    (4, 3.1, 13),   # ceil(12.4): B7's sixth stage
    (3, 1.0, 3),
    (1, 2.0, 2),
])
def test_round_repeats_is_ceil(repeats: int, depth: float, expected: int) -> None:
    assert round_repeats(repeats, depth) == expected


def test_scale_b0_to_b2_by_hand() -> None:
    b0 = get_model("efficientnet-b0")
    before = b0.to_dict()
    b2 = scale(b0, depth=1.2, width=1.1)
    assert b0.to_dict() == before  # scaling is arithmetic on a new spec
    assert [s.out_channels for s in b2.stages] == [16, 24, 48, 88, 120, 208, 352]
    assert [s.repeats for s in b2.stages] == [2, 3, 3, 4, 4, 5, 2]  # ceil(1.2 * (1,2,2,3,3,4,1))
    assert (b2.stem.channels, b2.head_channels) == (32, 1408)
    assert b2.resolution == 224  # resolution factor 1
    assert b2.name == "efficientnet-b0-d1.2-w1.1-r1"
    assert b2.meta["scaled_from"] == "efficientnet-b0"
    assert scale(b0, resolution=1.15).resolution == 258  # round(257.6)
    assert scale(b0).arch_hash() == b0.arch_hash()


@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 0}, "`depth > 0` must hold, but got depth=0"),
    ({"width": -1.0}, "`width > 0` must hold, but got width=-1.0"),
    ({"resolution": float("nan")}, "`resolution > 0` must hold, but got resolution=nan"),
    ({"width": "2"}, "`width > 0` must hold, but got width='2'"),
])
def test_scale_rejects_bad_factors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        scale(get_model("efficientnet-b0"), **kwargs)


def test_compound_b0_is_valid_for_phi_0_to_7_and_doubles_macs_per_step() -> None:
    b0 = get_model("efficientnet-b0")
    alpha, beta, gamma = 1.2, 1.1, 1.15
    specs = [compound(b0, alpha, beta, gamma, phi) for phi in range(8)]
    assert specs[0].arch_hash() == b0.arch_hash()  # phi = 0 changes nothing
    for phi, spec in enumerate(specs):
        spec.validate()
        assert spec.resolution == round(224 * gamma ** phi)
        assert spec.meta["compound"] == {"alpha": alpha, "beta": beta, "gamma": gamma, "phi": phi}
        assert spec.name == f"efficientnet-b0-phi{phi}"
    macs = [count_analytic(s).macs for s in specs]
    steps = [b / a for a, b in zip(macs, macs[1:])]
    # alpha * beta^2 * gamma^2 = 1.92 per unit of phi before rounding (the paper: about 2)
    assert all(1.6 <= r <= 2.6 for r in steps), steps
    assert macs[-1] / macs[0] == pytest.approx(flops_factor(alpha, beta, gamma) ** 7, rel=0.3)
    depths = [s.num_blocks for s in specs]
    assert depths == sorted(depths) and depths[-1] > 3 * depths[0]


def test_flops_factor() -> None:
    assert flops_factor(1.2, 1.1, 1.15) == pytest.approx(1.2 * 1.21 * 1.3225)
    assert math.isclose(flops_factor(1.2, 1.1, 1.15), 1.92, abs_tol=0.01)


@pytest.mark.parametrize("coefficients, message", [
    ((0.9, 1.1, 1.15, 1), "`alpha >= 1` must hold (EfficientNet Eq. 3), but got alpha=0.9"),
    ((1.2, 0.5, 1.15, 1), "`beta >= 1` must hold (EfficientNet Eq. 3), but got beta=0.5"),
    ((1.2, 1.1, float("nan"), 1), "`gamma >= 1` must hold (EfficientNet Eq. 3), but got gamma=nan"),
    ((1.2, True, 1.15, 1), "`beta >= 1` must hold (EfficientNet Eq. 3), but got beta=True"),
    ((1.2, 1.1, 1.15, -1), "`phi >= 0` must hold, but got phi=-1; pass e.g. --phi 1"),
])
def test_compound_rejects_bad_coefficients_with_the_rule(coefficients, message: str) -> None:
    with pytest.raises(ValueError) as info:
        compound(get_model("efficientnet-b0"), *coefficients)
    assert str(info.value) == message


def test_max_phi_is_where_the_nominal_two_to_the_phi_stops_being_finite() -> None:
    # 2^1023 is the largest power of two a float holds; times B0's 401.7M MACs it must stay
    # finite too: 2^995 x 4.0e8 = 1.6e308 < 1.8e308 = float max < 2^996 x 4.0e8.
    assert max_phi(1.2, 1.1, 1.15) == 1023
    assert max_phi(1.0, 1.0, 1.0) == 1023
    b0 = get_model("efficientnet-b0")
    assert max_phi(1.2, 1.1, 1.15, spec=b0, macs=401_659_392) == 995
    assert 2.0 ** 995 * 401_659_392 < float("inf")
    assert 2.0 ** 996 * 401_659_392 == float("inf")


def test_max_phi_follows_the_fastest_growing_dimension() -> None:
    # alpha 10: 10^phi x 4 repeats (B0's most) must stay below 1.8e308, so phi <= 307
    b0 = get_model("efficientnet-b0")
    assert max_phi(10.0, 1.0, 1.0, spec=b0) == 307
    assert 10.0 ** 307 * 4 < float("inf") and 10.0 ** 308 * 4 == float("inf")
    # width and resolution count twice in the MACs growth alpha beta^2 gamma^2: 100^2 = 1e4,
    # and (1e4)^77 = 1e308 < 1.8e308 < 1e312, before 100^phi x 1920 channels overflows (152)
    assert max_phi(1.0, 100.0, 1.0, spec=b0) == 77
    assert max_phi(1.0, 1.0, 100.0, spec=b0) == 77


@pytest.mark.parametrize("phi", [1e9, 1024, float("inf")])
def test_a_phi_that_would_overflow_is_refused_with_the_range(phi: float) -> None:
    with pytest.raises(ValueError) as info:
        check_coefficients(1.2, 1.1, 1.15, phi)
    assert str(info.value) == (
        f"`phi <= 1023` must hold for alpha=1.2, beta=1.1, gamma=1.15: a larger phi overflows "
        f"the scaled depth, width, resolution or MACs, but got phi={phi:g}; pass a phi in "
        f"0..1023, e.g. --phi 1 (the paper's B0..B7 are phi 0..7)")
    with pytest.raises(ValueError, match=r"`phi <= 1023` must hold .* MACs of efficientnet-b0"):
        compound(get_model("efficientnet-b0"), 1.2, 1.1, 1.15, phi)


def test_the_largest_phi_still_scales() -> None:
    check_coefficients(1.2, 1.1, 1.15, 1023)
    spec = get_model("mobilenet-v1")  # smallest repeats/channels in the zoo: cheap to make
    limit = max_phi(1.0, 1.0, 1.05, spec=spec)
    big = compound(spec, 1.0, 1.0, 1.05, limit)  # resolution only: a spec, not a huge net
    assert big.resolution == round(spec.resolution * 1.05 ** limit)
    with pytest.raises(ValueError, match=f"`phi <= {limit}` must hold"):
        compound(spec, 1.0, 1.0, 1.05, limit + 1)
