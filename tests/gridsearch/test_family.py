"""The scaled family: the paper's coefficients on EfficientNet-B0, names, the paper table, files."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from gridsearch.family import (FAMILY_COLUMNS, PAPER_FAMILY, check_phis, family_rows,
                               member_name, scale_family, write_family)
from gridsearch.grid import PAPER, Point
from space import count_analytic, count_fvcore, get_model, load_spec


@pytest.fixture(scope="module")
def b0_family():
    base = get_model("efficientnet-b0")
    return base, scale_family(base, PAPER, phis=(0, 7))


def test_paper_coefficients_double_macs_per_phi(b0_family) -> None:
    base, members = b0_family
    macs = [m.macs for m in members]
    assert macs[0] == count_analytic(base).macs
    steps = [b / a for a, b in zip(macs, macs[1:])]
    # 1.2 * 1.1^2 * 1.15^2 = 1.92 per phi before rounding; ceil(1.2 * repeats) makes B1 2.55x
    assert all(1.6 < s < 2.6 for s in steps), steps
    assert 1.8 < math.prod(steps) ** (1 / 7) < 2.05
    assert macs[7] / macs[0] == pytest.approx(PAPER.product ** 7, rel=0.1)


def test_family_specs_are_rounded_and_carry_counts(b0_family) -> None:
    base, members = b0_family
    assert [m.spec.resolution for m in members] == [round(224 * 1.15 ** p) for p in range(8)]
    for m in members:
        counts = count_analytic(m.spec)
        assert (m.params, m.macs) == (counts.params, counts.macs)
        assert m.spec.meta["compound"] == {"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "phi": m.phi}
        assert all(s.out_channels % 8 == 0 for s in m.spec.stages)
        assert [s.repeats for s in m.spec.stages] == [
            math.ceil(s.repeats * 1.2 ** m.phi) if m.phi else s.repeats for s in base.stages]
    b1 = members[1].spec
    # round_filters(c, 1.1) by hand: max(8, int(1.1 c + 4) // 8 * 8), +8 if that is < 0.99 c
    assert b1.stem.channels == 32 and b1.head_channels == 1408
    assert [s.out_channels for s in b1.stages] == [16, 24, 48, 88, 120, 208, 352]


@pytest.mark.slow
def test_family_counts_equal_fvcore(b0_family) -> None:
    _, members = b0_family
    fv = count_fvcore(members[1].spec)  # traces B1 at 258 px
    assert (fv.params, fv.macs) == (members[1].params, members[1].macs)


def test_names_never_collide_with_a_different_zoo_model() -> None:
    b0 = get_model("efficientnet-b0")
    assert member_name(b0, 0, b0) == "efficientnet-b0"  # phi 0 is B0 itself
    scaled = scale_family(b0, PAPER, phis=(1, 1))[0].spec
    assert scaled.name == "efficientnet-b1-compound"  # not the official, hand-set B1
    nas_b0 = b0.replace(name="nas-b0")
    assert member_name(nas_b0, 3) == "nas-b3"
    assert member_name(get_model("mobilenet-v2"), 2) == "mobilenet-v2-b2"


def test_family_table_beside_the_paper_only_for_b0(b0_family, tmp_path: Path) -> None:
    base, members = b0_family
    rows = family_rows(base, members)
    assert [r["paper_name"] for r in rows] == [f"B{i}" for i in range(8)]
    assert rows[7]["paper_macs"] == 37e9 and rows[4]["paper_resolution"] == 380
    paths = write_family(tmp_path, base, members)
    assert [p.name for p in paths] == [f"b{i}.json" for i in range(8)]
    assert load_spec(tmp_path / "family" / "b3.json") == members[3].spec
    df = pd.read_csv(tmp_path / "family.csv")
    assert list(df.columns) == FAMILY_COLUMNS
    assert list(df["macs"]) == [m.macs for m in members]
    assert list(df["paper_params"]) == [PAPER_FAMILY[i].params for i in range(8)]

    mv2 = get_model("mobilenet-v2")
    other = family_rows(mv2, scale_family(mv2, Point(1.2, 1.1, 1.15), phis=(0, 1)))
    assert all(r["paper_name"] is None and math.isnan(r["paper_macs"]) for r in other)


@pytest.mark.parametrize("phis", [(3, 1), (-1, 2), (0.5, 2), "0-7"])
def test_bad_family_ranges(phis) -> None:
    with pytest.raises(ValueError, match="--family"):
        check_phis(phis)


def test_a_family_beyond_the_largest_finite_phi_is_refused_before_scaling() -> None:
    b0 = get_model("efficientnet-b0")
    macs = count_analytic(b0).macs
    assert check_phis((0, 995), point=PAPER, base=b0, macs=macs) == (0, 995)
    with pytest.raises(ValueError) as info:
        check_phis((0, 996), point=PAPER, base=b0, macs=macs)
    assert str(info.value) == (
        "--family 0-996: `HI <= 995` must hold for alpha=1.2, beta=1.1, gamma=1.15 (a larger "
        "phi overflows the scaled depth, width, resolution or MACs of efficientnet-b0); pass "
        "e.g. --family 0-7")
    with pytest.raises(ValueError, match="`HI <= 995` must hold"):
        scale_family(b0, PAPER, phis=(0, 5000))
