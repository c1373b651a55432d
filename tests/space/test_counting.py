"""Counting: the analytic counter equals fvcore exactly (hand-worked nets, random specs, the zoo),
fvcore's totals match timm's published GMACs, and what fvcore skips is reported, not hidden."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from space.builder import build
from space.counting import Counts, count, count_analytic, count_fvcore, stage_table
from space.spec import ArchSpec, StageSpec, StemSpec
from space.zoo import get_model, list_models

# Elementwise ops fvcore leaves uncounted (REFERENCE.md, fvcore conventions): zero in both
# counters. Anything else showing up uncounted would be real work fvcore silently dropped.
ZERO_COST_OPS = {"aten::silu_", "aten::silu", "aten::sigmoid", "aten::mul", "aten::add",
                 "aten::add_", "aten::relu_", "aten::relu", "aten::hardtanh_",
                 "aten::hardswish_", "aten::max_pool2d"}

# timm's GMACs at native resolution (REFERENCE.md), fvcore-counted.
TIMM_GMACS = {"efficientnet-b0": 0.40, "efficientnet-b1": 0.71, "efficientnet-b2": 1.02,
              "efficientnet-b3": 1.87, "efficientnet-b4": 4.49, "efficientnet-b5": 10.46,
              "efficientnet-b6": 19.4, "efficientnet-b7": 38.33}
SLOW_FVCORE = {"efficientnet-b4", "efficientnet-b5", "efficientnet-b6", "efficientnet-b7"}


def _both(spec: ArchSpec, resolution: int | None = None) -> tuple[Counts, Counts]:
    return count_analytic(spec, resolution), count_fvcore(spec, resolution)


# ----------------------------------------------------------------------------- by hand
def test_one_conv_stage_by_hand() -> None:
    spec = ArchSpec("hand-conv", stem=StemSpec(4, kernel=3, stride=2),
                    stages=(StageSpec("conv", 1, 3, 1, 8, skip="none"),), head_channels=None,
                    in_channels=3, num_classes=2, resolution=8)
    # stem: 3x3 s2 conv 3->4 on 8x8 gives 4x4; BN(4) in eval counts 2 per output element
    stem_macs = 4 * 3 * 3 * 3 * (4 * 4) + 2 * 4 * (4 * 4)
    stem_params = 4 * 3 * 3 * 3 + 2 * 4
    # stage: 3x3 s1 conv 4->8 on 4x4, BN(8)
    conv_macs = 8 * 4 * 3 * 3 * (4 * 4) + 2 * 8 * (4 * 4)
    conv_params = 8 * 4 * 3 * 3 + 2 * 8
    # no head conv: global pool reads 8x4x4, FC 8->2 with bias (bias adds params, not MACs)
    head_macs = 8 * 4 * 4 + 8 * 2
    head_params = 8 * 2 + 2
    expected = Counts(params=stem_params + conv_params + head_params,
                      macs=stem_macs + conv_macs + head_macs, resolution=8)
    assert (expected.params, expected.macs) == (438, 6864)
    analytic, fv = _both(spec)
    assert analytic == expected
    assert (fv.params, fv.macs) == (expected.params, expected.macs)


def test_mbconv_with_se_and_head_by_hand() -> None:
    spec = ArchSpec("hand-mbconv", stem=StemSpec(8, kernel=3, stride=2),
                    stages=(StageSpec("mbconv", 1, 3, 1, 8, expand_ratio=2, se_ratio=0.25),),
                    head_channels=16, in_channels=3, num_classes=10, resolution=8)
    hw = 4 * 4  # after the stride-2 stem
    stem = (8 * 3 * 9 * hw + 2 * 8 * hw, 8 * 3 * 9 + 2 * 8)
    mid, squeeze = 8 * 2, max(1, int(8 * 0.25))  # squeeze from the block's input channels: 2
    expand = (mid * 8 * hw + 2 * mid * hw, mid * 8 + 2 * mid)
    depthwise = (mid * 1 * 9 * hw + 2 * mid * hw, mid * 9 + 2 * mid)
    # SE: pool reads mid x 4 x 4; two 1x1 convs with bias on a 1x1 map
    se = (mid * hw + mid * squeeze + squeeze * mid,
          mid * squeeze + squeeze + squeeze * mid + mid)
    project = (8 * mid * hw + 2 * 8 * hw, 8 * mid + 2 * 8)  # residual add: not counted
    head = (16 * 8 * hw + 2 * 16 * hw, 16 * 8 + 2 * 16)
    classifier = (16 * hw + 16 * 10, 16 * 10 + 10)
    parts = (stem, expand, depthwise, se, project, head, classifier)
    expected_macs, expected_params = sum(p[0] for p in parts), sum(p[1] for p in parts)
    assert (expected_params, expected_macs) == (1124, 14688)
    analytic, fv = _both(spec)
    assert (analytic.params, analytic.macs) == (expected_params, expected_macs)
    assert (fv.params, fv.macs) == (expected_params, expected_macs)


def test_resnet_bottleneck_with_maxpool_and_projection_by_hand() -> None:
    spec = ArchSpec("hand-bottleneck", stem=StemSpec(4, kernel=7, stride=2, maxpool=True),
                    stages=(StageSpec("bottleneck", 1, 3, 2, 8, expand_ratio=0.25),),
                    head_channels=None, activation="relu", in_channels=3, num_classes=3,
                    resolution=16)
    stem = (4 * 3 * 49 * 64 + 2 * 4 * 64, 4 * 3 * 49 + 2 * 4)  # 7x7 s2: 16 -> 8x8
    # max-pool 3x3 s2 p1: 8 -> 4, free. Bottleneck width 8 * 0.25 = 2.
    reduce = (2 * 4 * 16 + 2 * 2 * 16, 2 * 4 + 2 * 2)  # 1x1 on 4x4
    spatial = (2 * 2 * 9 * 4 + 2 * 2 * 4, 2 * 2 * 9 + 2 * 2)  # 3x3 s2: 4 -> 2x2
    restore = (8 * 2 * 4 + 2 * 8 * 4, 8 * 2 + 2 * 8)  # 1x1 on 2x2
    shortcut = (8 * 4 * 4 + 2 * 8 * 4, 8 * 4 + 2 * 8)  # 1x1 s2 projection, 4 -> 2x2
    classifier = (8 * 4 + 8 * 3, 8 * 3 + 3)
    parts = (stem, reduce, spatial, restore, shortcut, classifier)
    expected_macs, expected_params = sum(p[0] for p in parts), sum(p[1] for p in parts)
    assert (expected_params, expected_macs) == (755, 38872)
    analytic, fv = _both(spec)
    assert (analytic.params, analytic.macs) == (expected_params, expected_macs)
    assert (fv.params, fv.macs) == (expected_params, expected_macs)
    assert fv.uncounted_ops["aten::max_pool2d"] == 1


# ----------------------------------------------------------------------------- random specs
@settings(max_examples=50, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_analytic_equals_fvcore_on_random_specs(arch_specs, data) -> None:
    spec = data.draw(arch_specs)
    analytic, fv = _both(spec)
    assert analytic.params == fv.params
    assert analytic.macs == fv.macs
    assert set(fv.uncounted_ops) <= ZERO_COST_OPS


# ----------------------------------------------------------------------------- the zoo
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FVCORE else n for n in list_models()])
def test_zoo_analytic_equals_fvcore_at_native_resolution(name: str) -> None:
    spec = get_model(name)
    analytic, fv = _both(spec)
    assert (analytic.params, analytic.macs) == (fv.params, fv.macs)
    assert set(fv.uncounted_ops) <= ZERO_COST_OPS
    if name in TIMM_GMACS:
        assert fv.gmacs == pytest.approx(TIMM_GMACS[name], rel=0.01)


@pytest.mark.parametrize("name, published", [
    ("mnasnet-b1", "0.31"), ("mobilenet-v2", "0.30"), ("resnet-50", "4.09"),
    ("mnasnet-a1", "0.312"),  # the MnasNet paper: 312M multiply-adds
])
def test_published_gmacs_without_batch_norm(name: str, published: str) -> None:
    # torchvision's GFLOPS and the MnasNet paper count convs, linear and pooling but not
    # batch-norm; fvcore's per-operator split lets us compare like with like, to the digits
    # published.
    from fvcore.nn import FlopCountAnalysis

    model = build(get_model(name), seed=0).eval()
    with torch.no_grad():
        fca = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))
        fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = fca.by_operator()
        without_bn = fca.total() - by_op["batch_norm"]
    assert f"{without_bn / 1e9:.{len(published.split('.')[1])}f}" == published
    assert by_op["batch_norm"] > 0  # and our totals do include it, as timm's do


def test_b0_uncounted_ops_are_reported_with_counts() -> None:
    fv = count_fvcore(get_model("efficientnet-b0"), 32)
    # SiLU: stem + head + 15 expansion convs + 16 depthwise convs + 16 SE = 49;
    # one sigmoid and one mul per SE (16); one add per identity residual (9).
    assert fv.uncounted_ops == {"aten::silu_": 49, "aten::sigmoid": 16, "aten::mul": 16,
                                "aten::add": 9}


# ----------------------------------------------------------------------------- stage table
@pytest.mark.parametrize("name, resolution", [
    ("efficientnet-b0", 45), ("resnet-50", 37), ("mobilenet-v1", 33), ("mnasnet-a1", 64)])
def test_stage_table_sizes_match_the_built_network(name: str, resolution: int) -> None:
    spec = get_model(name)
    rows = stage_table(spec, resolution)
    assert [r["stage"] for r in rows] == ["stem"] + [str(i) for i in range(len(spec.stages))] \
        + ["head"]
    total = count_analytic(spec, resolution)
    assert sum(int(r["params"]) for r in rows) == total.params
    assert sum(int(r["macs"]) for r in rows) == total.macs
    model = build(spec).eval()
    sizes = []
    x = model.stem(torch.zeros(1, 3, resolution, resolution))
    sizes.append(x.shape[-1])
    for stage in model.stages:
        x = stage(x)
        sizes.append(x.shape[-1])
    assert [r["out_size"] for r in rows[:-1]] == sizes
    assert [r["out_channels"] for r in rows[1:-1]] == [s.out_channels for s in spec.stages]


def test_stage_rows_count_their_own_blocks() -> None:
    spec = get_model("efficientnet-b0")
    rows = stage_table(spec)
    assert rows[0]["params"] == 32 * 3 * 9 + 2 * 32  # stem conv + BN
    assert rows[-1]["params"] == 1280 * 320 + 2 * 1280 + 1280 * 1000 + 1000  # head + FC


# ----------------------------------------------------------------------------- API
def test_count_dispatches_by_method_and_rejects_unknown_ones() -> None:
    spec = get_model("mobilenet-v2")
    assert count(spec, 32) == count_analytic(spec, 32)
    fv = count(spec, 32, method="fvcore")
    assert (fv.params, fv.macs) == (count_analytic(spec, 32).params, count_analytic(spec, 32).macs)
    with pytest.raises(KeyError, match="unknown counting method 'flops'; known: analytic, fvcore"):
        count(spec, method="flops")


@pytest.mark.parametrize("resolution", [7, 0, -224, 224.0, True, "224"])
def test_bad_resolution_is_rejected_with_the_rule(resolution) -> None:
    spec = get_model("efficientnet-b0")
    with pytest.raises(ValueError, match="`resolution >= 8` must hold, but got resolution="):
        count_analytic(spec, resolution)


def test_counts_units_and_default_resolution() -> None:
    c = count_analytic(get_model("efficientnet-b0"))
    assert c.resolution == 224
    assert c.gmacs == pytest.approx(0.401659392)
    assert c.mparams == pytest.approx(5.288548)
    assert c.params == count_analytic(get_model("efficientnet-b0"), 32).params


# --------------------------------------------------------------------------- build_bytes
def test_build_bytes_by_hand_on_a_one_stage_net() -> None:
    """Weights x 4 bytes plus 3 x the widest map, float32: a 3x3 stem 1->8 at stride 2 on 16 px
    (an 8x8 map of 8 channels = 512), then one MBConv stage (expand 4: 32 channels inside, at
    the block's 8x8 input = 2048, the widest) repeated 3 times."""
    from space.counting import build_bytes

    spec = ArchSpec(name="hand", stem=StemSpec(8), stages=(StageSpec("mbconv", 3, 3, 1, 8, 4.0,
                                                                      0.0),),
                    head_channels=None, in_channels=1, num_classes=10, resolution=16)
    assert build_bytes(spec) == 4 * (count_analytic(spec).params + 3 * 32 * 8 * 8)


def test_build_bytes_never_walks_an_astronomical_spec() -> None:
    """Repeats and channels beyond any machine are counted from the spec in a moment (the
    blocks after a stage's first are identical), and agree with walking them where both can."""
    from space import compound
    from space.counting import build_bytes

    b0 = get_model("efficientnet-b0")
    for phi in (0, 3):
        s = compound(b0, 1.2, 1.1, 1.15, phi)
        assert build_bytes(s) >= 4 * count_analytic(s).params
        assert build_bytes(s) - 4 * count_analytic(s).params < 4 * count_analytic(s).params
    huge = compound(b0, 1.2, 1.1, 1.15, 900)  # ~1e71 layers per stage
    assert build_bytes(huge) > 2 ** 200
