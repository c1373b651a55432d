"""space.latency: the table's keys cover every member of each shipped space, and a prediction is
the sum of the spec's entries plus the fitted overhead (arithmetic only; no timing here)."""
from __future__ import annotations

import pytest

from space.builder import block_args
from space.latency import (LatencyKey, LatencyTable, LatencyTableError, MissingEntryError,
                           fit_overhead, load_table, parse_latency, predict_ms, random_params,
                           save_table, space_keys, spec_keys)
from space.search_space import load_space, shipped_spaces
from space.spec import ArchSpec, StageSpec, StemSpec
from space.zoo import ZOO, get_model

DEVICE = {"device": "cpu", "cpu": "test cpu", "torch": "0", "threads": 1, "batch": 1,
          "runtime": "torch"}


@pytest.mark.parametrize("name", shipped_spaces())
@pytest.mark.parametrize("resolution", [224, 96])
def test_space_keys_cover_every_block_of_random_members(name, resolution) -> None:
    space = load_space(name)
    keys = {str(k) for k in space_keys(space, resolution)}
    seen: set[str] = set()
    for seed in range(300):
        spec = space.to_spec(random_params(space, seed=seed))
        member = [str(k) for k in spec_keys(spec, resolution)]
        assert set(member) <= keys, sorted(set(member) - keys)[:3]
        seen.update(member)
    # The enumeration is not padded: random members meet most of it (the rest are rare combos).
    assert len(seen) > 0.5 * len(keys)


@pytest.mark.parametrize("name", shipped_spaces())
def test_space_keys_cover_every_stage_choice_after_every_input_width(name) -> None:
    # Exhaustive per stage: each stage choice, after each choice of the stage before it.
    space = load_space(name)
    keys = {str(k) for k in space_keys(space, 128)}
    base = random_params(space, seed=0)
    for i in range(1, len(space.stages)):
        before = list(space._stage_combos(i - 1))[::7]
        for combo in list(space._stage_combos(i))[::5]:
            for prev in before[:4]:
                spec = space.to_spec({**base, **prev, **combo})
                assert {str(k) for k in spec_keys(spec, 128)} <= keys


def test_zoo_members_of_a_space_predict_without_a_missing_key() -> None:
    space = load_space("efficientnet")
    members = [n for n in ZOO.names() if space.contains(get_model(n))]
    assert {"efficientnet-b0", "mnasnet-a1"} <= set(members)
    keys = {str(k) for k in space_keys(space, 224)}
    table = LatencyTable("efficientnet", 224, DEVICE, {k: 1.0 for k in keys}, overhead_ms=0.5)
    for n in members:
        spec = get_model(n)
        assert predict_ms(table, spec) == pytest.approx(len(spec_keys(spec)) + 0.5)


def _two_block_spec() -> ArchSpec:
    return ArchSpec(name="two", stem=StemSpec(8), head_channels=32, activation="relu",
                    num_classes=10, resolution=32,
                    stages=(StageSpec("mbconv", 1, 3, 2, 16, expand_ratio=3.0, se_ratio=0.25),
                            StageSpec("dsconv", 1, 5, 1, 16)))


def test_a_two_block_spec_predicts_the_sum_of_its_entries() -> None:
    spec = _two_block_spec()
    keys = spec_keys(spec)
    # stem 32 -> 16 px; block 1 at 16 px (stride 2) -> 8 px; block 2 at 8 px; head at 8 px.
    assert [(k.kind, k.block, k.size, k.in_channels, k.out_channels) for k in keys] == [
        ("stem", "conv", 32, 3, 8), ("block", "mbconv", 16, 8, 16),
        ("block", "dsconv", 8, 16, 16), ("head", "conv", 8, 16, 32)]
    assert keys[2].residual and not keys[1].residual  # same shape, skip=identity: residual
    entries = {str(keys[0]): 0.25, str(keys[1]): 1.5, str(keys[2]): 2.0, str(keys[3]): 0.125,
               "block:conv:k3:e1:se0:nores:relu:i8:o8:s1:r4:x0": 100.0}  # not in the spec
    table = LatencyTable("hand", 32, DEVICE, entries, overhead_ms=0.75)
    assert predict_ms(table, spec, overhead=False) == 3.875
    assert predict_ms(table, spec) == 3.875 + 0.75


def test_a_missing_entry_names_the_key() -> None:
    spec = _two_block_spec()
    keys = spec_keys(spec)
    table = LatencyTable("hand", 32, DEVICE, {str(k): 1.0 for k in keys[:-1]})
    with pytest.raises(MissingEntryError, match="head:conv"):
        predict_ms(table, spec)


def test_skip_identity_on_a_shape_changing_block_is_the_same_entry_as_no_skip() -> None:
    a, b = (ArchSpec(name="x", stem=StemSpec(8), num_classes=10, resolution=32,
                     stages=(StageSpec("mbconv", 1, 3, 2, 16, expand_ratio=6.0, skip=s),))
            for s in ("identity", "none"))
    assert spec_keys(a) == spec_keys(b)
    assert not block_args(a)[0].has_residual


def test_keys_round_trip_through_their_string_form() -> None:
    for key in space_keys(load_space("mnasnet"), 64)[::50]:
        assert LatencyKey.parse(str(key)) == key


def test_fit_overhead_recovers_a_constant_offset_exactly() -> None:
    sums = [3.0, 5.0, 11.0]
    assert fit_overhead(sums, [s + 0.4 for s in sums]) == pytest.approx(0.4)
    # relative weighting: one slow network does not dominate the fit
    c = fit_overhead([1.0, 100.0], [1.2, 110.0])
    assert 0.2 < c < 0.3
    with pytest.raises(ValueError):
        fit_overhead([], [])


@pytest.mark.parametrize("text,ms", [("20ms", 20.0), ("1500us", 1.5), ("0.02s", 20.0),
                                     ("20", 20.0), (" 2.5 ms", 2.5), ("1e3us", 1.0)])
def test_parse_latency(text, ms) -> None:
    assert parse_latency(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["0", "0ms", "20 parsecs", "-5ms", "ms", "", "inf", "20 m"])
def test_parse_latency_rejects_bad_input(text) -> None:
    with pytest.raises(ValueError, match="--target-latency"):
        parse_latency(text)


def test_table_file_round_trip_and_checks(tmp_path) -> None:
    keys = space_keys(load_space("mnasnet"), 64)
    table = LatencyTable("mnasnet", 64, DEVICE, {str(k): 0.5 for k in keys}, overhead_ms=0.1,
                         meta={"repeats": 1})
    save_table(table, tmp_path / "t.json")
    back = load_table(tmp_path / "t.json")
    assert back == table
    back.check(space="mnasnet", device=DEVICE)
    with pytest.raises(LatencyTableError, match="space 'mnasnet', not 'efficientnet'"):
        back.check(space="efficientnet")
    with pytest.raises(LatencyTableError, match="threads 1 .here 4."):
        back.check(device={**DEVICE, "threads": 4})


@pytest.mark.parametrize("content,match", [
    ("{not json", "not valid JSON"),
    ("[]", "JSON object"),
    ('{"schema": 1, "space": "mnasnet", "resolution": 64, "device": {}}', "'entries'"),
    ('{"schema": 9, "space": "mnasnet", "resolution": 64, "device": {}, "entries": {}}', "schema"),
    ('{"schema": 1, "space": "m", "resolution": 64, "device": {}, "entries": {"x": 1}}', "key"),
    ('{"schema": 1, "space": "m", "resolution": 64, "device": {}, "entries": '
     '{"block:conv:k3:e1:se0:nores:relu:i8:o8:s1:r4:x0": -1}}', "non-negative"),
])
def test_a_broken_table_file_is_a_clear_error(tmp_path, content, match) -> None:
    (tmp_path / "t.json").write_text(content)
    with pytest.raises(LatencyTableError, match=match):
        load_table(tmp_path / "t.json")
