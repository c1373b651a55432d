"""The search commands' parsers read as data: their argument groups and each flag's row.

Tests check with it that every flag sits in a named group, under the same title in ``nas
search`` and ``gridsearch``. Light, like the parsers: nothing here imports torch.

argparse has no public way to list a parser's groups; ``_action_groups`` and
``_group_actions`` are read here, never changed (sphinx-argparse reads them the same way).
"""
from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass

__all__ = ["COMMANDS", "UNGROUPED", "Group", "parser_of", "groups_of", "ungrouped"]

# command -> (module, function returning its parser, or None: a `nas` subcommand's module)
COMMANDS: dict[str, tuple[str, str | None]] = {
    "nas search": ("nas.commands.search", None),
    "gridsearch": ("gridsearch.cli", "make_parser"),
    "nas train": ("nas.commands.train", None),
}

# flags that may stay in argparse's own "options" bucket: they are about the program, not
# the run (-v and --version sit there in gridsearch, on `nas` itself for its subcommands)
UNGROUPED = frozenset({"help", "config", "verbose", "version"})


@dataclass(frozen=True)
class Group:
    title: str
    description: str | None
    actions: tuple[argparse.Action, ...]


def parser_of(command: str) -> argparse.ArgumentParser:
    """The parser ``command`` parses with, built on its own (``nas search`` as the subparser
    ``nas`` makes, with prog ``nas search``)."""
    from nas.cli import Parser

    module, factory = COMMANDS[command]
    mod = importlib.import_module(module)
    if factory is not None:
        return getattr(mod, factory)()
    p = Parser(prog=command, description=mod.HELP)
    mod.add_arguments(p)
    return p


def _bucket_titles(parser: argparse.ArgumentParser) -> tuple[str | None, str | None]:
    return parser._optionals.title, parser._positionals.title


def groups_of(parser: argparse.ArgumentParser) -> list[Group]:
    """The parser's named groups, in --help's order, each with its flags (positionals and
    the ungrouped bucket left out)."""
    buckets = _bucket_titles(parser)
    return [Group(g.title or "", g.description,
                  tuple(a for a in g._group_actions if a.help != argparse.SUPPRESS))
            for g in parser._action_groups
            if g.title not in buckets and g._group_actions]


def ungrouped(parser: argparse.ArgumentParser) -> list[str]:
    """Flags left in argparse's own bucket, other than :data:`UNGROUPED`."""
    return [a.option_strings[-1] for a in parser._optionals._group_actions
            if a.dest not in UNGROUPED and a.option_strings]
