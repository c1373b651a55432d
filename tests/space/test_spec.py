"""ArchSpec: validation with field paths, JSON round-trips, a stable name-independent hash."""
from __future__ import annotations

import copy
import dataclasses
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from space.spec import (SCHEMA_VERSION, ArchSpec, SpecError, StageSpec, StemSpec, load_spec,
                        save_spec, spec_from_dict)
from space.zoo import get_model, list_models

B0_HASH = "48b8fd56e288"  # pinned: run folders and trial de-duplication are keyed by it


@pytest.mark.parametrize("name", list_models())
def test_zoo_json_round_trip_is_identity(name: str) -> None:
    spec = get_model(name)
    back = ArchSpec.from_json(spec.to_json())
    assert back == spec
    assert back.to_dict() == spec.to_dict()  # meta too, which == ignores
    assert back.arch_hash() == spec.arch_hash()
    assert json.loads(back.to_json())["schema_version"] == SCHEMA_VERSION


@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_random_spec_json_round_trip_is_identity(arch_specs, data) -> None:
    spec = data.draw(arch_specs)
    back = ArchSpec.from_json(spec.to_json(indent=None))
    assert back == spec
    assert back.to_dict() == spec.to_dict()
    assert back.arch_hash() == spec.arch_hash()


def test_save_and_load_spec(tmp_path) -> None:
    spec = get_model("mnasnet-a1")
    path = save_spec(spec, tmp_path / "sub" / "a1.json")
    assert path.read_text().endswith("\n")
    assert load_spec(path) == spec
    assert not list(tmp_path.glob("sub/*.tmp"))


def test_arch_hash_is_pinned_and_ignores_name_and_meta() -> None:
    b0 = get_model("efficientnet-b0")
    assert b0.arch_hash() == B0_HASH
    assert re.fullmatch(r"[0-9a-f]{12}", b0.arch_hash())
    renamed = b0.replace(name="my-net", meta={"origin": "search", "trial": 7})
    assert renamed.arch_hash() == B0_HASH


def test_equal_specs_hash_equal_whatever_the_number_type() -> None:
    # 6 and 6.0 build the same network; they once hashed differently (JSON "6" vs "6.0").
    b0 = get_model("efficientnet-b0")
    as_ints = b0.replace(
        stages=tuple(dataclasses.replace(s, expand_ratio=int(s.expand_ratio)) for s in b0.stages),
        dropout=0.2, bn_momentum=0.01)
    as_floats = b0.replace(
        stages=tuple(dataclasses.replace(s, expand_ratio=float(s.expand_ratio))
                     for s in b0.stages))
    assert as_ints == as_floats
    assert as_ints.arch_hash() == as_floats.arch_hash() == B0_HASH
    assert as_ints.to_json() == as_floats.to_json()
    assert StageSpec("mbconv", 1, 3, 1, 8, 6).expand_ratio == 6.0
    assert isinstance(StageSpec("mbconv", 1, 3, 1, 8, 6).expand_ratio, float)


@pytest.mark.parametrize("change", [
    lambda s: s.replace(resolution=240),
    lambda s: s.replace(num_classes=10),
    lambda s: s.replace(in_channels=1),
    lambda s: s.replace(head_channels=None),
    lambda s: s.replace(activation="relu"),
    lambda s: s.replace(dropout=0.3),
    lambda s: s.replace(stem=StemSpec(32, maxpool=True)),
    lambda s: s.replace(stages=(dataclasses.replace(s.stages[0], kernel=5),) + s.stages[1:]),
    lambda s: s.replace(stages=(dataclasses.replace(s.stages[0], skip="none"),) + s.stages[1:]),
    lambda s: s.replace(stages=s.stages[:-1]),
], ids=["resolution", "num_classes", "in_channels", "head", "activation", "dropout", "maxpool",
        "kernel", "skip", "depth"])
def test_arch_hash_changes_with_the_architecture(change) -> None:
    b0 = get_model("efficientnet-b0")
    assert change(b0).arch_hash() != B0_HASH


def test_spec_is_frozen_and_with_task_returns_a_new_spec() -> None:
    b0 = get_model("efficientnet-b0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        b0.resolution = 32  # type: ignore[misc]
    small = b0.with_task(in_channels=1, num_classes=10, resolution=32)
    assert (small.in_channels, small.num_classes, small.resolution) == (1, 10, 32)
    assert (b0.in_channels, b0.num_classes, b0.resolution) == (3, 1000, 224)
    assert small.stages == b0.stages
    assert isinstance(small.stages, tuple)
    assert ArchSpec("x", StemSpec(8), [StageSpec("conv", 1, 3, 1, 8)]).stages[0].block == "conv"


def _b0_dict() -> dict:
    return copy.deepcopy(get_model("efficientnet-b0").to_dict())


def _set(path: str, value):
    def edit(d: dict) -> dict:
        *parents, last = path.split(".")
        node = d
        for p in parents:
            m = re.fullmatch(r"(\w+)\[(\d+)\]", p)
            node = node[m.group(1)][int(m.group(2))] if m else node[p]
        node[last] = value
        return d
    return edit


def _delete(path: str):
    def edit(d: dict) -> dict:
        if path.startswith("stages[0]."):
            del d["stages"][0][path.split(".")[1]]
        else:
            del d[path]
        return d
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set("stages[3].kernel", 4), "stages[3].kernel must be odd, got 4"),
    (_set("stages[0].stride", 3), "stages[0].stride must be 1 or 2, got 3"),
    (_set("stages[2].block", "foo"),
     "stages[2].block must be one of mbconv, dsconv, dsa, conv, bottleneck, got 'foo'"),
    (_set("stages[1].repeats", 0), "stages[1].repeats must be >= 1, got 0"),
    (_set("stages[1].repeats", True), "stages[1].repeats must be an integer, got True"),
    (_set("stages[1].repeats", 2.0), "stages[1].repeats must be an integer, got 2.0"),
    (_set("stages[4].se_ratio", 1.5), "stages[4].se_ratio must be in [0.0, 1.0], got 1.5"),
    (_set("stages[1].skip", "pool"), "stages[1].skip must be one of identity, none, got 'pool'"),
    (_set("stages[1].colour", 1), "stages[1].colour is not a known field; known fields: "),
    (_set("colour", "red"), "colour is not a known field; known fields: activation, "),
    (_set("stem.dilation", 2), "stem.dilation is not a known field"),
    (_set("stem.kernel", 2), "stem.kernel must be odd, got 2"),
    (_set("stem.maxpool", "yes"), "stem.maxpool must be true or false, got 'yes'"),
    (_delete("stem"), "stem is required but missing"),
    (_delete("stages[0].kernel"), "stages[0].kernel is required but missing"),
    (_set("schema_version", 2), "schema_version must be 1 (this version of efficientnas), got 2"),
    (_set("stages", []), "stages must hold at least one stage, got []"),
    (_set("stages", {}), "stages must be a list, got {}"),
    (_set("head_channels", 0), "head_channels must be >= 1, got 0"),
    (_set("activation", "gelu"), "activation must be one of relu, relu6, silu, swish, "),
    (_set("resolution", 4), "resolution must be >= 8, got 4"),
    (_set("resolution", -224), "resolution must be >= 8, got -224"),
    (_set("name", ""), "name must be a non-empty string, got ''"),
    (_set("meta", [1]), "meta must be a JSON object, got [1]"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_invalid_dict_names_the_field(edit, message: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict(edit(_b0_dict()))
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("stage, message", [
    (StageSpec("dsconv", 1, 3, 1, 8, expand_ratio=6), "stages[0].expand_ratio must be 1 for block "
                                                      "'dsconv', got 6.0"),
    (StageSpec("bottleneck", 1, 3, 1, 8, expand_ratio=4),
     "stages[0].expand_ratio must be <= 1 for block 'bottleneck' (ResNet: 0.25), got 4.0"),
    (StageSpec("mbconv", 1, 3, 1, 8, expand_ratio=0), "stages[0].expand_ratio must be in (0.0, "),
])
def test_constructing_an_invalid_spec_raises(stage: StageSpec, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        ArchSpec("x", StemSpec(8), (stage,))


@pytest.mark.parametrize("text, message", [
    ("{", "spec is not valid JSON: "),
    ("[1, 2]", "spec must be a JSON object, got 'list'"),
    ('{"name": "x", "stem": {"channels": 8}, "stages": [7]}', "stages[0] must be a JSON object"),
])
def test_invalid_json_text(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        ArchSpec.from_json(text)


def test_load_spec_errors_name_the_file_and_the_field(tmp_path) -> None:
    d = _b0_dict()
    d["stages"][3]["kernel"] = 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert str(info.value) == f"{bad}: stages[3].kernel must be odd, got 4"

    broken = tmp_path / "broken.json"
    broken.write_text('{"name": ')
    with pytest.raises(SpecError, match=re.escape(f"{broken}: spec is not valid JSON")):
        load_spec(broken)

    with pytest.raises(SpecError, match="cannot read spec file .*missing.json"):
        load_spec(tmp_path / "missing.json")
