"""Every flag of ``nas search`` and ``gridsearch`` sits in a named argument group, and a flag
both commands have sits under the same group title in each (issue 25: --help reads as a table
of contents, the same one in both stages)."""
from __future__ import annotations

import pytest

from nas.commands import common
from nas.commands.groups import groups_of, ungrouped
from scripts.flag_tables import parser_of

SEARCHES = ("nas search", "gridsearch")
SHARED_TITLES = (common.GROUP_TARGET, common.GROUP_SEARCH, common.GROUP_LADDER,
                 common.GROUP_PROXY, common.GROUP_LATENCY, common.GROUP_BACKEND,
                 common.GROUP_RUN)


def _title_of_each_flag(command: str) -> dict[str, str]:
    return {option: g.title for g in groups_of(parser_of(command))
            for a in g.actions for option in a.option_strings}


@pytest.mark.parametrize("command", SEARCHES)
def test_no_flag_is_left_ungrouped(command) -> None:
    p = parser_of(command)
    assert ungrouped(p) == []
    grouped = {a.dest for g in groups_of(p) for a in g.actions}
    assert {"target_flops" if command == "nas search" else "phi", "epochs", "backend",
            "out", "latency_threads", "rungs"} <= grouped


def test_nas_train_groups_its_flags_too() -> None:
    p = parser_of("nas train")
    assert ungrouped(p) == []
    titles = {o: g.title for g in groups_of(p) for a in g.actions for o in a.option_strings}
    assert titles["--device"] == titles["--threads"] == common.GROUP_BACKEND


@pytest.mark.parametrize("command", SEARCHES)
def test_each_command_has_the_shared_groups(command) -> None:
    titles = [g.title for g in groups_of(parser_of(command))]
    assert len(titles) == len(set(titles)), titles  # one group per title
    assert set(SHARED_TITLES) <= set(titles)


def test_a_shared_flag_sits_under_the_same_title_in_both_commands() -> None:
    stage1, stage2 = (_title_of_each_flag(c) for c in SEARCHES)
    shared = sorted(set(stage1) & set(stage2))
    assert len(shared) > 30  # the proxy, latency, backend and run-folder flags, and more
    differ = {f: (stage1[f], stage2[f]) for f in shared if stage1[f] != stage2[f]}
    assert differ == {}
    assert stage1["--rungs"] == stage2["--finalists"] == common.GROUP_LADDER
    assert stage1["--device"] == stage2["--threads"] == common.GROUP_BACKEND


def test_the_check_sees_a_flag_left_ungrouped() -> None:
    p = parser_of("gridsearch")
    p.add_argument("--stray", help="added without a group")
    assert ungrouped(p) == ["--stray"]
