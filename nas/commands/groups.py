"""A parser's argument groups read as data: the groups ``--help`` prints, each with its flags.

Tests check with it that every flag of ``nas search`` and ``gridsearch`` sits in a named group,
under the same title in both (issue 25); scripts/flag_tables.py writes the README's flag tables
from it. Light, like the parsers.

argparse has no public way to list a parser's groups; ``_action_groups``, ``_group_actions``
and the two default buckets are read here, never changed (sphinx-argparse reads them the same
way).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

__all__ = ["UNGROUPED", "Group", "groups_of", "ungrouped"]

# flags that may stay in argparse's own "options" bucket: they are about the program, not
# the run (-v and --version sit there in gridsearch, on `nas` itself for its subcommands)
UNGROUPED = frozenset({"help", "config", "verbose", "version"})


@dataclass(frozen=True)
class Group:
    title: str
    description: str | None
    actions: tuple[argparse.Action, ...]


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
