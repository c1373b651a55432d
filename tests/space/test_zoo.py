"""The zoo against REFERENCE.md: exact parameter counts, timm's GMACs, the official B-table."""
from __future__ import annotations

import pytest

from space.builder import build
from space.counting import count_analytic
from space.scaling import round_filters
from space.zoo import EFFICIENTNET_PARAMS, ZOO, get_model, list_models

# torchvision's parameter counts (REFERENCE.md); MobileNetV1 from Keras' trainable count.
PARAMS = {
    "efficientnet-b0": 5_288_548, "efficientnet-b1": 7_794_184, "efficientnet-b2": 9_109_994,
    "efficientnet-b3": 12_233_232, "efficientnet-b4": 19_341_616,
    "efficientnet-b5": 30_389_784, "efficientnet-b6": 43_040_704,
    "efficientnet-b7": 66_347_960, "mnasnet-b1": 4_383_312, "mobilenet-v2": 3_504_872,
    "resnet-50": 25_557_032, "mobilenet-v1": 4_231_976,
}
# timm's GMACs at native resolution (fvcore-counted); the analytic count equals fvcore's
# (tests/space/test_counting.py), so the whole B-series is checked here in microseconds.
TIMM_GMACS = {"efficientnet-b0": 0.40, "efficientnet-b1": 0.71, "efficientnet-b2": 1.02,
              "efficientnet-b3": 1.87, "efficientnet-b4": 4.49, "efficientnet-b5": 10.46,
              "efficientnet-b6": 19.4, "efficientnet-b7": 38.33}
NATIVE_RESOLUTION = {f"efficientnet-{v}": p[2] for v, p in EFFICIENTNET_PARAMS.items()}


def test_zoo_lists_the_reference_models() -> None:
    assert list_models() == [f"efficientnet-b{i}" for i in range(8)] + [
        "mnasnet-a1", "mnasnet-b1", "mobilenet-v1", "mobilenet-v2", "resnet-50"]
    assert len(ZOO) == 13


@pytest.mark.parametrize("name", list_models())
def test_zoo_spec_is_named_after_its_key_and_fresh(name: str) -> None:
    spec = get_model(name)
    assert spec.name == name
    assert get_model(name) == spec and get_model(name) is not spec


@pytest.mark.parametrize("name, params", sorted(PARAMS.items()))
def test_params_match_the_reference_exactly(name: str, params: int) -> None:
    assert count_analytic(get_model(name)).params == params


def test_built_b0_params_match_torchvision_and_keras() -> None:
    model = build(get_model("efficientnet-b0"))
    assert sum(p.numel() for p in model.parameters()) == 5_288_548
    # Keras shows 5,330,571 = trainable + 42,023 non-trainable: the BN running mean and var,
    # plus its input Normalization layer's mean (3), variance (3) and count (1).
    bn_stats = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert 5_288_548 + bn_stats + 3 + 3 + 1 == 5_330_571


def test_mnasnet_a1_params_and_gmacs_round_to_timm() -> None:
    # timm publishes semnasnet_100 to two decimals: 3.89M params, 0.32 GMACs (ours: 0.3247)
    counts = count_analytic(get_model("mnasnet-a1"))
    assert round(counts.params / 1e6, 2) == 3.89
    assert round(counts.gmacs, 2) == 0.32


@pytest.mark.parametrize("name, gmacs", sorted(TIMM_GMACS.items()))
def test_gmacs_at_native_resolution_within_1_percent_of_timm(name: str, gmacs: float) -> None:
    spec = get_model(name)
    assert spec.resolution == NATIVE_RESOLUTION.get(name, 224)
    assert count_analytic(spec).gmacs == pytest.approx(gmacs, rel=0.01)


@pytest.mark.parametrize("variant", sorted(EFFICIENTNET_PARAMS))
def test_b_series_follows_the_official_table(variant: str) -> None:
    width, depth, resolution, dropout = EFFICIENTNET_PARAMS[variant]
    spec = get_model(f"efficientnet-{variant}")
    b0 = get_model("efficientnet-b0")
    assert (spec.resolution, spec.dropout, spec.drop_connect) == (resolution, dropout, 0.2)
    assert spec.stem.channels == round_filters(32, width)
    assert spec.head_channels == round_filters(1280, width)
    assert [s.kernel for s in spec.stages] == [s.kernel for s in b0.stages]
    assert [s.stride for s in spec.stages] == [s.stride for s in b0.stages]
    assert spec.activation == "silu" and spec.bn_eps == 1e-3 and spec.bn_momentum == 0.01


def test_b7_by_hand() -> None:
    spec = get_model("efficientnet-b7")
    # width 2.0: channels double exactly; depth 3.1: ceil(3.1 * (1, 2, 2, 3, 3, 4, 1))
    assert [s.out_channels for s in spec.stages] == [32, 48, 80, 160, 224, 384, 640]
    assert [s.repeats for s in spec.stages] == [4, 7, 7, 10, 10, 13, 4]
    assert (spec.stem.channels, spec.head_channels) == (64, 2560)


def test_mnasnet_a1_follows_the_paper() -> None:
    spec = get_model("mnasnet-a1")
    got = [(s.block, s.repeats, s.kernel, s.stride, s.out_channels, s.expand_ratio, s.se_ratio)
           for s in spec.stages]
    assert got == [("dsconv", 1, 3, 1, 16, 1, 0), ("mbconv", 2, 3, 2, 24, 6, 0),
                   ("mbconv", 3, 5, 2, 40, 3, 0.25), ("mbconv", 4, 3, 2, 80, 6, 0),
                   ("mbconv", 2, 3, 1, 112, 6, 0.25), ("mbconv", 3, 5, 2, 160, 6, 0.25),
                   ("mbconv", 1, 3, 1, 320, 6, 0)]
    assert (spec.stem.channels, spec.head_channels, spec.activation) == (32, 1280, "relu")


def test_unknown_model_lists_the_zoo() -> None:
    with pytest.raises(KeyError) as info:
        get_model("efficientnet-b8")
    assert info.value.args[0].startswith(
        "unknown zoo model 'efficientnet-b8'; known: efficientnet-b0, efficientnet-b1")
