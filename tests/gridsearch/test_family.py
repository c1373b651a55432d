"""The scaled family: the paper's coefficients on EfficientNet-B0, names, the paper table, files."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from gridsearch.family import (FAMILY_COLUMNS, PAPER_FAMILY, check_phis, family_rows,
                               member_name, scale_family, write_family)
from gridsearch.grid import PAPER, Point
from space import compound, count_analytic, count_fvcore, get_model, load_spec


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


def test_family_table_reports_the_measured_ratio_against_two_to_the_phi(b0_family,
                                                                        tmp_path: Path) -> None:
    base, members = b0_family
    write_family(tmp_path, base, members)
    df = pd.read_csv(tmp_path / "family.csv")
    b0_macs = count_analytic(base).macs
    assert list(df["macs_ratio"]) == pytest.approx([m.macs / b0_macs for m in members])
    assert list(df["nominal_ratio"]) == [2.0 ** p for p in range(8)]
    assert list(df["ratio_vs_nominal"]) == pytest.approx(
        [m.macs / b0_macs / 2 ** m.phi for m in members])
    # ceil(1.2 * 1) = 2 doubles B0's one-block stages: B1 measures 2.55x B0, not 2x
    assert round(df["macs_ratio"][1], 3) == 2.553
    assert df["repeats"][1] == "2-3-3-4-4-5-2" and set(df["rounding"]) == {"paper"}


def test_nearest_rounding_lands_nearer_two_to_the_phi_than_the_papers() -> None:
    base = get_model("efficientnet-b0")
    paper = scale_family(base, PAPER, phis=(0, 7))
    nearest = scale_family(base, PAPER, phis=(0, 7), rounding="nearest")
    b0_macs = count_analytic(base).macs

    def off(m):
        return abs(math.log(m.macs / b0_macs / 2 ** m.phi))

    for p, n in zip(paper, nearest):
        assert off(n) <= off(p) + 1e-12  # never farther than the paper's rounding
        depth = 1.2 ** p.phi  # each stage is rounded down or up, never anything else
        for s0, sp, sn in zip(base.stages, p.spec.stages, n.spec.stages):
            assert sn.repeats in (sp.repeats, max(1, math.floor(depth * s0.repeats)))
        # only the repeats move: channels and resolution are the paper member's
        assert [s.out_channels for s in n.spec.stages] == [s.out_channels for s in p.spec.stages]
        assert n.spec.resolution == p.spec.resolution
        assert n.spec.meta["rounding"] == "nearest" and n.macs == count_analytic(n.spec).macs
    # B1: the paper's 2.553x becomes 1.994x; stages 5-7 keep 3, 4 and 1 blocks of B0's 3, 4, 1
    assert round(paper[1].spec.meta["macs_ratio"], 3) == 2.553
    assert round(nearest[1].spec.meta["macs_ratio"], 3) == 1.994
    assert nearest[1].spec.meta["repeats"] == [2, 3, 3, 4, 3, 4, 1]
    assert off(nearest[1]) < off(paper[1]) and off(nearest[3]) < off(paper[3])
    assert nearest[0].spec == paper[0].spec  # phi 0 is B0 either way


def test_paper_rounding_is_the_default_and_unchanged(b0_family) -> None:
    base, members = b0_family
    for m in members:
        assert m.spec.stages == compound(base, 1.2, 1.1, 1.15, m.phi).stages
        assert m.spec.meta["rounding"] == "paper"
    with pytest.raises(KeyError, match="unknown rounding 'up'; known: nearest, paper"):
        scale_family(base, PAPER, phis=(0, 1), rounding="up")


def test_phi_limit_is_the_largest_phi_whose_network_fits() -> None:
    from gridsearch.family import check_scale, phi_limit
    from space import build_bytes

    b0 = get_model("efficientnet-b0")
    memory = 2 ** 30
    limit, why = phi_limit(b0, PAPER, memory=memory)
    assert build_bytes(compound(b0, PAPER.alpha, PAPER.beta, PAPER.gamma, limit)) <= memory
    assert build_bytes(compound(b0, PAPER.alpha, PAPER.beta, PAPER.gamma, limit + 1)) > memory
    assert f"building the phi-{limit + 1} network" in why and "1 GiB" in why
    assert phi_limit(b0, PAPER, memory=None)[0] == 995  # without memory: the overflow bound
    check_scale(b0, PAPER, limit, family=(0, limit), times_family=True, memory=memory)
    with pytest.raises(ValueError, match=f"`phi <= {limit}` must hold"):
        check_scale(b0, PAPER, limit + 0.5, family=(0, 1), times_family=False, memory=memory)
    # members are built only when timed; else they need only finite numbers
    check_scale(b0, PAPER, 1, family=(0, 30), times_family=False, memory=memory)
    with pytest.raises(ValueError, match=f"--family 0-30: `HI <= {limit}` must hold"):
        check_scale(b0, PAPER, 1, family=(0, 30), times_family=True, memory=memory)
