from __future__ import annotations

import json

import optuna
import pytest

from space import SpecError, get_model
from space.search_space import CONV_OPS, DIMENSIONS, load_space, shipped_spaces, space_from_dict


def test_shipped_spaces():
    assert {"mnasnet", "efficientnet"} <= set(shipped_spaces())


@pytest.mark.parametrize("model", ["efficientnet-b0", "mnasnet-a1"])
def test_efficientnet_space_contains_b0_and_a1_exactly(model):
    sp = load_space("efficientnet")
    spec = get_model(model)
    params = sp.encode(spec)
    assert params is not None
    rebuilt = sp.to_spec(params)
    assert rebuilt.stages == spec.stages
    assert rebuilt.stem == spec.stem and rebuilt.head_channels == spec.head_channels
    assert rebuilt.activation == spec.activation


def test_non_members_are_rejected():
    assert load_space("efficientnet").encode(get_model("resnet-50")) is None
    assert load_space("mnasnet").encode(get_model("efficientnet-b0")) is None


def test_mnasnet_space_follows_the_mobilenet_v2_skeleton():
    sp = load_space("mnasnet")
    skeleton = [(s.channels, s.repeats, s.stride) for s in sp.stages]
    assert skeleton == [(16, 1, 1), (24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2),
                        (320, 1, 1)]
    assert sp.stem == 32 and sp.head == 1280
    assert set(sp.stages[0].choices["op"]) == {"conv", "dsconv", "mbconv3", "mbconv6"}


def test_space_size_nominal_and_distinct():
    sp = load_space("mnasnet")
    nominal, distinct = sp.size()
    # 4 ops x 2 kernels x 2 SE x 2 skip x 3 filters x 3 layers = 288 per stage, 7 stages.
    assert nominal == 288 ** 7
    assert 0 < distinct < nominal


def test_params_to_spec_is_deterministic_and_named_stably():
    sp = load_space("mnasnet")
    a = optuna.trial.FixedTrial({f"s{i}_{d}": sp.stages[i].choices[d][-1]
                                 for i in range(len(sp.stages)) for d in DIMENSIONS})
    params = sp.sample(a)
    assert sorted(params) == sorted(f"s{i}_{d}" for i in range(7) for d in DIMENSIONS)
    s1, s2 = sp.to_spec(params), sp.to_spec(dict(params))
    assert s1 == s2 and s1.arch_hash() == s2.arch_hash()
    # last choices: mbconv6, k5, se .25, skip none, filters 1.25, layers +1
    st = s1.stages[3]
    assert (st.block, st.expand_ratio, st.kernel, st.se_ratio, st.skip, st.out_channels,
            st.repeats, st.stride) == ("mbconv", 6.0, 5, 0.25, "none", 80, 5, 2)


def test_layers_never_drop_a_stage():
    sp = load_space("mnasnet")
    params = {f"s{i}_{d}": sp.stages[i].choices[d][0] for i in range(7) for d in DIMENSIONS}
    spec = sp.to_spec(params)  # layers -1 everywhere
    assert [s.repeats for s in spec.stages] == [1, 1, 2, 3, 2, 2, 1]
    assert [s.stride for s in spec.stages] == [1, 2, 2, 2, 1, 2, 1]


def test_random_samples_always_make_valid_specs():
    sp = load_space("efficientnet")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(50):
        t = study.ask()
        spec = sp.to_spec(sp.sample(t))
        assert sp.encode(spec) is not None
        study.tell(t, 0.0)


def test_a_user_space_file(tmp_path):
    f = tmp_path / "tiny.yaml"
    f.write_text("""
name: tiny
stem: 8
head: 32
activation: [relu, silu]
choices: {op: [dsconv, mbconv3], kernel: [3], se_ratio: [0.0], skip: [identity], filters: [1.0],
          layers: [0, 1]}
stages:
  - [8, 1, 1]
  - {channels: 16, repeats: 1, stride: 2, choices: {filters: [0.5, 1.0]}}
""")
    sp = load_space(f)
    assert sp.size() == (2 * (2 * 2) * (2 * 2 * 2), 2 * (2 * 2) * (2 * 2 * 2))
    j = tmp_path / "tiny.json"
    j.write_text(json.dumps(sp.to_dict()))
    assert load_space(j) == sp


@pytest.mark.parametrize("patch, message", [
    ({"stages": []}, "stages must be a non-empty list"),
    ({"choices": {"kernel": [4]}}, "invalid kernel"),
    ({"choices": {"op": ["sepconv"]}}, "known ops: conv, dsconv"),
    ({"choices": {"depth": [1]}}, "choices.depth is not a dimension"),
    ({"stages": [[16, 1, 3]]}, "stages[0].stride must be 1 or 2"),
    ({"colour": "red"}, "colour is not a known key"),
    ({"activation": "gelu"}, "activation must be among"),
])
def test_bad_space_files_name_the_problem(patch, message):
    base = load_space("mnasnet").to_dict()
    base.update(patch)
    with pytest.raises(SpecError) as e:
        space_from_dict(base, source="my.yaml")
    assert message in str(e.value) and "my.yaml" in str(e.value)


def test_unknown_space_name_lists_the_shipped_ones():
    with pytest.raises(KeyError, match="mnasnet"):
        load_space("nasnet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_space("missing.yaml")


def test_conv_ops_cover_the_mnasnet_op_set():
    assert {CONV_OPS.get(o)[0] for o in CONV_OPS} == {"conv", "dsconv", "mbconv"}
