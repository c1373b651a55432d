"""What both search commands share (nas.commands.common): one rungs rule, stage 2's own help
texts without argparse's private parts, and the Stage protocol's declared members."""
from __future__ import annotations

import argparse

import pytest

from gridsearch import cli as gridsearch_cli
from nas.commands import common
from nas.commands import search as search_cmd
from nas.proxy import ProxyConfig


@pytest.mark.parametrize("given,epochs", [
    ({"rungs": "1,3,9"}, 9),
    ({"rungs": "1,3", "epochs": 5}, 5),
    ({}, None),
])
def test_the_top_rung_is_the_epochs_unless_given(given, epochs) -> None:
    given = dict(given)
    common.rungs_set_epochs(given)
    assert given.get("epochs") == epochs


def test_both_commands_use_the_one_rungs_flag() -> None:
    assert common.RUNGS_FLAG in search_cmd.FLAGS and common.RUNGS_FLAG in gridsearch_cli.FLAGS
    assert common.RUNGS_FLAG.parse("1,3") == (1, 3)


def test_zero_means_none_for_timeout_and_grad_clip() -> None:
    timeout = next(f for f in search_cmd.FLAGS if f.dest == "timeout")
    clip = next(f for f in common.PROXY_FLAGS if f.dest == "grad_clip")
    assert timeout.parse(0) is None and clip.parse(0) is None and clip.parse(2.0) == 2.0


def _help_of(parser: argparse.ArgumentParser, flag: str) -> str:
    text = " ".join(parser.format_help().split())
    return text[text.index(f"{flag} "):]


def test_a_command_replaces_proxy_help_texts_by_dest() -> None:
    p = argparse.ArgumentParser()
    common.add_proxy_arguments(p, ProxyConfig(), helps={"epochs": "epochs per point (default 1)"})
    assert _help_of(p, "--epochs EPOCHS").startswith("--epochs EPOCHS epochs per point")
    assert _help_of(gridsearch_cli.make_parser(), "--epochs EPOCHS").startswith(
        "--epochs EPOCHS proxy training epochs per point (default 1)")


def test_a_misspelt_dest_is_refused() -> None:
    with pytest.raises(KeyError, match="epoch"):
        common.add_proxy_arguments(argparse.ArgumentParser(), ProxyConfig(),
                                   helps={"epoch": "typo"})


def test_stages_declare_enqueued_only() -> None:
    from gridsearch.search import Stage2
    from nas.engine.trial import Stage
    from nas.search import Stage1

    assert Stage.__annotations__["enqueued_only"] in (bool, "bool")
    assert (Stage1.enqueued_only, Stage2.enqueued_only) == (False, True)
