"""The flag tables in README.md and docs/*.md are written from the parsers (issue 25):
``python -m scripts.flag_tables`` writes them between ``<!-- flags: COMMAND -->`` markers, and
these tests fail when a file and the parsers disagree, saying which command fixes it. Each
command's tables may sit in README.md or in a docs/ page; every file with markers is checked."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from nas.commands.groups import groups_of
from scripts import flag_tables as doc

ROOT = Path(__file__).resolve().parents[1]


def test_every_marked_file_matches_the_parsers() -> None:
    files = doc.marked_files(ROOT)
    assert files, "no README.md or docs/*.md holds a <!-- flags: COMMAND --> block"
    stale = doc.write_tables(files, check=True)
    assert stale == [], (f"flag tables differ from the parsers in {[str(p) for p in stale]}; "
                         f"run: {doc.FIX}")


def _block(command: str) -> str | None:
    """``command``'s table block, in README.md or whichever docs/ page holds it."""
    for path in doc.marked_files(ROOT):
        m = re.search(rf"<!-- flags: {command} -->\n(.*?)<!-- /flags -->", path.read_text(),
                      re.S)
        if m:
            return m.group(1)
    return None


@pytest.mark.parametrize("command", list(doc.COMMANDS))
def test_the_docs_show_every_flag_with_an_example(command) -> None:
    block = _block(command)
    assert block is not None, f"no README.md or docs/*.md holds <!-- flags: {command} -->"
    rows = [r for r in block.splitlines() if r.startswith("| `")]
    flags = [a for g in groups_of(doc.parser_of(command)) for a in g.actions
             if a.option_strings]
    assert len(rows) == len(flags)
    for action, row in zip(flags, rows):
        assert f"`{next(o for o in action.option_strings if o.startswith('--'))}" in row
        assert row.rstrip(" |").endswith("`") and f"`{command} " in row  # the example


def test_a_stale_table_is_found_and_rewritten(tmp_path) -> None:
    page = tmp_path / "docs" / "cli.md"
    page.parent.mkdir()
    page.write_text("# gridsearch\n\n<!-- flags: gridsearch -->\nSTALE-TABLE\n<!-- /flags -->"
                    "\n\nend\n")
    (tmp_path / "README.md").write_text("no markers here\n")
    assert doc.marked_files(tmp_path) == [page]
    assert doc.main(["--check", str(page)]) == 1  # stale: nothing changed
    assert "STALE-TABLE" in page.read_text()
    assert doc.main([str(page)]) == 0
    text = page.read_text()
    assert "STALE-TABLE" not in text and text.endswith("<!-- /flags -->\n\nend\n")
    assert "| `--phi PHI` | 1: twice the MACs |" in text
    assert doc.main(["--check", str(page)]) == 0


def test_check_names_the_fix(tmp_path, capsys) -> None:
    page = tmp_path / "a.md"
    page.write_text("<!-- flags: nas train -->\n<!-- /flags -->\n")
    assert doc.main(["--check", str(page)]) == 1
    assert f"run: {doc.FIX}" in capsys.readouterr().err


def test_an_unknown_command_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="no such command; known: nas search"):
        doc.render("<!-- flags: nas serch -->\n<!-- /flags -->")


@pytest.mark.parametrize("help_text, meaning, default", [
    ("total trials (default 60)", "total trials", "60"),
    ("stop after S seconds (default 600; 0 = no limit)", "stop after S seconds (0 = no limit)",
     "600"),
    ("the base (default efficientnet-b0; see nas list), a spec", "the base (see nas list), a spec",
     "efficientnet-b0"),
    ("torch threads per trial", "torch threads per trial", ""),
    ("x (default: all cores)", "x", "all cores"),
])
def test_the_default_comes_from_the_help_text(help_text, meaning, default) -> None:
    assert doc._split_default(help_text) == (meaning, default)


def test_a_flag_without_an_example_is_named() -> None:
    p = argparse.ArgumentParser()
    g = p.add_argument_group("g")
    action = g.add_argument("--no-such-flag-anywhere", help="x")
    with pytest.raises(KeyError, match="gridsearch --no-such-flag-anywhere has no example"):
        doc.flag_row("gridsearch", action)


def test_cells_escape_pipes_emphasis_and_tags() -> None:
    p = argparse.ArgumentParser()
    action = p.add_argument("--phi", help="a|b, alpha*beta^2, family/b<phi>.json, 0 <= x")
    row = doc.flag_row("gridsearch", action)
    assert "a\\|b, alpha\\*beta^2, family/b&lt;phi>.json, 0 <= x" in row
