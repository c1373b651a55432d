"""Export to timm arch_def strings and the official TF EfficientNet block strings."""
from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from space.builder import BLOCKS
from space.export import (FORMATS, TF_BLOCKS, TIMM_BLOCKS, export_text, export_timm,
                          tf_block_strings, timm_block_string)
from space.spec import ArchSpec, StageSpec, StemSpec
from space.zoo import get_model, list_models

# REFERENCE.md, "B0 blocks": the official efficientnet_builder strings.
B0_TF = ["r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25",
         "r2_k5_s22_e6_i24_o40_se0.25", "r3_k3_s22_e6_i40_o80_se0.25",
         "r3_k5_s11_e6_i80_o112_se0.25", "r4_k5_s22_e6_i112_o192_se0.25",
         "r1_k3_s11_e6_i192_o320_se0.25"]
# timm's own arch_defs (timm/models/efficientnet.py), token for token.
# _gen_efficientnet: B0..B7 all build from this one, scaled by channel/depth multipliers.
TIMM_EFFICIENTNET = [["ds_r1_k3_s1_e1_c16_se0.25"], ["ir_r2_k3_s2_e6_c24_se0.25"],
                     ["ir_r2_k5_s2_e6_c40_se0.25"], ["ir_r3_k3_s2_e6_c80_se0.25"],
                     ["ir_r3_k5_s1_e6_c112_se0.25"], ["ir_r4_k5_s2_e6_c192_se0.25"],
                     ["ir_r1_k3_s1_e6_c320_se0.25"]]
TIMM_MNASNET_A1 = [["ds_r1_k3_s1_e1_c16_noskip"], ["ir_r2_k3_s2_e6_c24"],  # _gen_mnasnet_a1
                   ["ir_r3_k5_s2_e3_c40_se0.25"], ["ir_r4_k3_s2_e6_c80"],
                   ["ir_r2_k3_s1_e6_c112_se0.25"], ["ir_r3_k5_s2_e6_c160_se0.25"],
                   ["ir_r1_k3_s1_e6_c320"]]
TIMM_MNASNET_B1 = [["ds_r1_k3_s1_c16_noskip"], ["ir_r3_k3_s2_e3_c24"],  # _gen_mnasnet_b1
                   ["ir_r3_k5_s2_e3_c40"], ["ir_r3_k5_s2_e6_c80"], ["ir_r2_k3_s1_e6_c96"],
                   ["ir_r4_k5_s2_e6_c192"], ["ir_r1_k3_s1_e6_c320"]]
TIMM_MOBILENET_V2 = [["ds_r1_k3_s1_c16"], ["ir_r2_k3_s2_e6_c24"],  # _gen_mobilenet_v2
                     ["ir_r3_k3_s2_e6_c32"], ["ir_r4_k3_s2_e6_c64"], ["ir_r3_k3_s1_e6_c96"],
                     ["ir_r3_k3_s2_e6_c160"], ["ir_r1_k3_s1_e6_c320"]]
TIMM_MOBILENET_V1 = [["dsa_r1_k3_s1_c64"], ["dsa_r2_k3_s2_c128"],  # _gen_mobilenet_v1
                     ["dsa_r2_k3_s2_c256"], ["dsa_r6_k3_s2_c512"], ["dsa_r2_k3_s2_c1024"]]
# EfficientNet-B7 worked out by hand from B0 with the official width 2.0, depth 3.1
# (channels x2, repeats ceil(r x 3.1)): what timm builds from TIMM_EFFICIENTNET with
# channel_multiplier=2.0, depth_multiplier=3.1.
B7_TIMM = [["ds_r4_k3_s1_e1_c32_se0.25"], ["ir_r7_k3_s2_e6_c48_se0.25"],
           ["ir_r7_k5_s2_e6_c80_se0.25"], ["ir_r10_k3_s2_e6_c160_se0.25"],
           ["ir_r10_k5_s1_e6_c224_se0.25"], ["ir_r13_k5_s2_e6_c384_se0.25"],
           ["ir_r4_k3_s1_e6_c640_se0.25"]]
# (width, depth) timm's efficientnet_b0..b7 pass as channel_multiplier, depth_multiplier.
TIMM_MULTIPLIERS = {"b0": (1.0, 1.0), "b1": (1.0, 1.1), "b2": (1.1, 1.2), "b3": (1.2, 1.4),
                    "b4": (1.4, 1.8), "b5": (1.6, 2.2), "b6": (1.8, 2.6), "b7": (2.0, 3.1)}
# Which timm prefix each block type gets (mbconv: 'ds' when it has no expansion conv).
PREFIX = {"mbconv": "ir", "dsconv": "ds", "dsa": "dsa", "conv": "cn", "bottleneck": "bot"}


def test_b0_tf_block_strings_are_exactly_the_official_ones() -> None:
    assert tf_block_strings(get_model("efficientnet-b0")) == B0_TF
    assert export_text(get_model("efficientnet-b0"), "tf") == "\n".join(B0_TF)


def test_efficientnets_mnasnet_a1_and_mobilenet_v1_equal_timms_arch_defs_token_for_token() -> None:
    assert export_timm(get_model("efficientnet-b0")).to_dict()["arch_def"] == TIMM_EFFICIENTNET
    assert export_timm(get_model("mnasnet-a1")).to_dict()["arch_def"] == TIMM_MNASNET_A1
    assert export_timm(get_model("mobilenet-v1")).to_dict()["arch_def"] == TIMM_MOBILENET_V1
    assert export_timm(get_model("efficientnet-b7")).to_dict()["arch_def"] == B7_TIMM


def _without_ds_e1(arch_def: list[list[str]]) -> list[list[str]]:
    return [[b.replace("_e1_", "_") if b.startswith("ds_") else b for b in stage]
            for stage in arch_def]


@pytest.mark.parametrize("name, timm_arch_def", [("mnasnet-b1", TIMM_MNASNET_B1),
                                                 ("mobilenet-v2", TIMM_MOBILENET_V2)])
def test_mnasnet_b1_and_mobilenet_v2_differ_from_timm_only_by_the_ignored_ds_e1(
        name: str, timm_arch_def: list[list[str]]) -> None:
    # timm leaves e1 out of these two models' ds strings; its decoder ignores e for ds.
    ours = export_timm(get_model(name)).to_dict()["arch_def"]
    assert ours != timm_arch_def
    assert _without_ds_e1(ours) == timm_arch_def


def _scale_timm_string(block: str, width: float, depth: float) -> str:
    """timm's build-time scaling of one single-block stage string: c by round_chs_fn (the
    official round_filters: divisor 8, at most 10% down), r by ceil(r x depth)."""
    prefix, *opts = block.split("_")
    out = []
    for opt in opts:
        if opt.startswith("c") and opt[1:].isdigit():
            c = int(opt[1:]) * width
            new = max(8, int(c + 4) // 8 * 8)
            opt = f"c{new + 8 if new < 0.9 * c else new}"
        elif opt.startswith("r") and opt[1:].isdigit():
            opt = f"r{math.ceil(int(opt[1:]) * depth)}"
        out.append(opt)
    return "_".join([prefix, *out])


@pytest.mark.parametrize("variant", list(TIMM_MULTIPLIERS))
def test_every_efficientnet_equals_timms_b0_arch_def_with_its_multipliers(variant: str) -> None:
    width, depth = TIMM_MULTIPLIERS[variant]
    expected = [[_scale_timm_string(b, width, depth) for b in stage]
                for stage in TIMM_EFFICIENTNET]
    timm = export_timm(get_model(f"efficientnet-{variant}")).to_dict()
    assert timm["arch_def"] == expected
    # timm rounds the stem (32) and head (1280) with the same round_chs_fn
    assert timm["stem_size"] == int(_scale_timm_string("x_c32", width, 1)[3:])
    assert timm["num_features"] == int(_scale_timm_string("x_c1280", width, 1)[3:])


@pytest.mark.parametrize("variant", list(TIMM_MULTIPLIERS))
def test_timms_decoder_builds_the_same_blocks_from_our_export(variant: str) -> None:
    builder = pytest.importorskip(
        "timm.models._efficientnet_builder",
        reason="timm is not installed (not a dependency); the literal arch_defs above are "
               "checked without it")
    width, depth = TIMM_MULTIPLIERS[variant]
    ours = builder.decode_arch_def(
        export_timm(get_model(f"efficientnet-{variant}")).to_dict()["arch_def"])
    theirs = builder.decode_arch_def(TIMM_EFFICIENTNET, depth_multiplier=depth)
    round_chs = builder.round_channels
    for stage_ours, stage_theirs in zip(ours, theirs, strict=True):
        assert len(stage_ours) == len(stage_theirs)
        for a, b in zip(stage_ours, stage_theirs):
            assert a == {**b, "out_chs": round_chs(b["out_chs"], width)}


def test_tf_strings_of_a_scaled_model_and_of_mnasnet() -> None:
    # B7 in TF's notation: input channels chain from the stem (64) through every stage.
    b7 = tf_block_strings(get_model("efficientnet-b7"))
    assert b7[0] == "r4_k3_s11_e1_i64_o32_se0.25"
    assert b7[-1] == "r4_k3_s11_e6_i384_o640_se0.25"
    a1 = tf_block_strings(get_model("mnasnet-a1"))
    assert a1[0] == "r1_k3_s11_e1_i32_o16_noskip"  # dsconv: MBConv with expansion 1
    assert a1[2] == "r3_k5_s22_e3_i24_o40_se0.25"


def _decode(block_string: str) -> tuple[str, dict[str, str]]:
    """timm's option grammar: type, then options each a key letter(s) and a value."""
    prefix, *opts = block_string.split("_")
    decoded = {}
    for opt in opts:
        if opt in ("noskip", "skip"):
            decoded[opt] = ""
            continue
        key, value = re.fullmatch(r"(se|[a-z])(.+)", opt).groups()
        decoded[key] = value
    return prefix, decoded


def _check_timm_string(stage: StageSpec) -> None:
    prefix, opts = _decode(timm_block_string(stage))
    expected_prefix = PREFIX[stage.block]
    if stage.block == "mbconv" and stage.expand_ratio == 1:
        expected_prefix = "ds"
    assert prefix == expected_prefix
    assert int(opts["r"]) == stage.repeats
    assert int(opts["k"]) == stage.kernel
    assert int(opts["s"]) == stage.stride
    assert int(opts["c"]) == stage.out_channels
    assert float(opts.get("e", "1")) == stage.expand_ratio
    assert float(opts.get("se", "0")) == stage.se_ratio
    if prefix in ("cn", "dsa"):  # timm's default for these: no residual
        assert ("skip" in opts) == (stage.skip == "identity")
    else:
        assert ("noskip" in opts) == (stage.skip == "none")


@pytest.mark.parametrize("name", list_models())
def test_timm_strings_decode_back_to_the_zoo_stages(name: str) -> None:
    spec = get_model(name)
    timm = export_timm(spec)
    assert len(timm.arch_def) == len(spec.stages)
    for stage, strings in zip(spec.stages, timm.arch_def):
        assert strings == (timm_block_string(stage),)
        _check_timm_string(stage)
    json.dumps(timm.to_dict())  # plain JSON data


@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_timm_strings_decode_back_to_random_stages(arch_specs, data) -> None:
    for stage in data.draw(arch_specs).stages:
        _check_timm_string(stage)


def test_every_block_type_has_a_timm_formatter() -> None:
    assert sorted(TIMM_BLOCKS.names()) == sorted(BLOCKS.names())
    assert set(TF_BLOCKS.names()) == {"mbconv", "dsconv"}


@pytest.mark.parametrize("stage, expected", [
    (StageSpec("mbconv", 2, 5, 2, 40, 6, 0.25), "ir_r2_k5_s2_e6_c40_se0.25"),
    (StageSpec("mbconv", 1, 3, 1, 16, 1, 0.25), "ds_r1_k3_s1_e1_c16_se0.25"),
    (StageSpec("mbconv", 1, 3, 1, 16, 2.5, 0.125, "none"), "ir_r1_k3_s1_e2.5_c16_se0.125_noskip"),
    (StageSpec("dsconv", 1, 3, 1, 16, skip="none"), "ds_r1_k3_s1_e1_c16_noskip"),
    (StageSpec("dsa", 2, 3, 2, 128, skip="none"), "dsa_r2_k3_s2_c128"),
    (StageSpec("dsa", 1, 3, 1, 128), "dsa_r1_k3_s1_c128_skip"),
    (StageSpec("conv", 1, 3, 1, 24), "cn_r1_k3_s1_c24_skip"),
    (StageSpec("conv", 1, 1, 1, 24, skip="none"), "cn_r1_k1_s1_c24"),
    (StageSpec("bottleneck", 3, 3, 1, 256, 0.25), "bot_r3_k3_s1_e0.25_c256"),
    (StageSpec("bottleneck", 3, 3, 2, 256, 0.25, 0.25, "none"),
     "bot_r3_k3_s2_e0.25_c256_se0.25_noskip"),
])
def test_timm_block_strings_by_hand(stage: StageSpec, expected: str) -> None:
    assert timm_block_string(stage) == expected


def test_timm_arch_def_keeps_the_stem_and_head() -> None:
    d = export_timm(get_model("resnet-50")).to_dict()
    assert (d["stem_size"], d["stem_kernel"], d["stem_stride"], d["stem_maxpool"]) == (
        64, 7, 2, True)
    assert d["num_features"] is None and d["act_layer"] == "relu"
    assert d["arch_def"][1] == ["bot_r4_k3_s2_e0.25_c512"]
    b3 = export_timm(get_model("efficientnet-b3")).to_dict()
    assert (b3["stem_size"], b3["num_features"], b3["drop_rate"], b3["drop_path_rate"],
            b3["resolution"]) == (40, 1536, 0.3, 0.2, 300)


@pytest.mark.parametrize("block", ["dsa", "conv", "bottleneck"])
def test_tf_strings_refuse_non_mbconv_blocks_with_the_fix(block: str) -> None:
    stages = (StageSpec("mbconv", 1, 3, 1, 16), StageSpec(block, 1, 3, 2, 24,
                                                          0.25 if block == "bottleneck" else 1))
    spec = ArchSpec("mixed", StemSpec(32), stages)
    with pytest.raises(ValueError) as info:
        tf_block_strings(spec)
    assert str(info.value) == (
        f"stages[1].block must be one of mbconv, dsconv for TF EfficientNet block strings "
        f"(they describe MBConv blocks only), but got {block!r} in 'mixed'; export it with "
        f"format 'timm' or 'json' instead")


def test_formats_table_and_cli_choices_agree() -> None:
    from nas.commands.export import FORMAT_NAMES

    assert tuple(FORMATS.names()) == FORMAT_NAMES
    spec = get_model("mnasnet-b1")
    assert ArchSpec.from_json(export_text(spec, "json")) == spec
    assert json.loads(export_text(spec, "timm")) == export_timm(spec).to_dict()
    with pytest.raises(KeyError, match="unknown export format 'onnx'; known: json, tf, timm"):
        export_text(spec, "onnx")
