"""The flag tables of ``nas search``, ``gridsearch`` and ``nas train``, written from their
parsers into markdown, so the README and docs/ pages cannot drift from ``--help`` (issue 25).

One table per argument group (flag, default, meaning, example), between markers in any markdown
file::

    <!-- flags: nas search -->
    (written here)
    <!-- /flags -->

    python -m scripts.flag_tables            # rewrite the tables in README.md and docs/*.md
    python -m scripts.flag_tables --check    # exit 1, naming the files, where a table is stale

The default and the meaning come from the flag's help text (its ``(default ...)``), the example
from :data:`EXAMPLES`. Here, not in ``nas/``, because it reads both stages' parsers and ``nas``
never imports ``gridsearch`` (tests/test_layering.py).
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path
from typing import Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file: this checkout's packages, not an installed copy
    sys.path.insert(0, str(ROOT))

from nas.commands.groups import groups_of  # noqa: E402

__all__ = ["COMMANDS", "EXAMPLES", "PREFIX", "parser_of", "flag_row", "tables", "render",
           "marked_files", "write_tables", "main"]

# command -> (module, function returning its parser, or None: a `nas` subcommand's module)
COMMANDS: dict[str, tuple[str, str | None]] = {
    "nas search": ("nas.commands.search", None),
    "gridsearch": ("gridsearch.cli", "make_parser"),
    "nas train": ("nas.commands.train", None),
}


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


# ----------------------------------------------------------------------------- the tables
BEGIN = re.compile(r"<!-- flags: (?P<command>[a-z -]+?) -->\n.*?<!-- /flags -->", re.S)
FIX = "python -m scripts.flag_tables"

# One example per flag, by the flag as typed (the same flag means the same in every command);
# "command flag" overrides it for one command. A flag without one fails the table's writing.
EXAMPLES: dict[str, str] = {
    # nas search: target & objective
    "--target-flops": "--target-flops 400M", "--target-latency": "--target-latency 20ms",
    "nas search --constraint": "--constraint hard", "--w-a": "--w-a -0.07",
    "--w-b": "--w-b -0.07", "--objectives": "--sampler nsga2 --objectives accuracy,latency",
    "--deploy-resolution": "--deploy-resolution 224",
    "--deploy-channels": "--deploy-channels 1", "--deploy-classes": "--deploy-classes 10",
    # nas search: search
    "--space": "--space efficientnet", "--trials": "--trials 100", "--timeout": "--timeout 0",
    "--budget": "--budget 1800",
    "--sampler": "--sampler nsga2", "--pruner": "--pruner hyperband",
    "--enqueue": "--enqueue efficientnet-b0,mnasnet-a1",
    # ladder & finalists
    "nas search --rungs": "--rungs 1,3,9", "gridsearch --rungs": "--rungs 1,3",
    "nas search --reduction-factor": "--reduction-factor 3",
    "gridsearch --reduction-factor": "--rungs 1,3 --reduction-factor 2",
    "--finalists": "--finalists 5", "--finalist-seeds": "--finalist-seeds 4",
    "--finalist-epochs": "--finalist-epochs 8",
    # proxy task
    "--dataset": "--dataset cifar10", "--data-dir": "--data-dir ~/cifar",
    "--epochs": "--epochs 3", "--train-samples": "--train-samples 24000",
    "--val-samples": "--val-samples 5000", "--proxy-resolution": "--proxy-resolution 64",
    "--batch-size": "--batch-size 256", "--lr": "--lr 0.1",
    "--warmup-epochs": "--warmup-epochs 0", "--optimizer": "--optimizer rmsprop",
    "--weight-decay": "--weight-decay 1e-5", "--label-smoothing": "--label-smoothing 0",
    "--grad-clip": "--grad-clip 0", "--zero-init-last": "--no-zero-init-last",
    "--zero-init-head": "--zero-init-head",
    "--schedule": "--schedule constant", "--seed": "--seed 1",
    # latency
    "--latency-table": "--latency-table cpu-table.json",
    "--latency-threads": "--latency-threads 4", "--latency-batch": "--latency-batch 8",
    "--latency-runtime": "--latency-runtime onnxruntime",
    "--latency-clock": "--latency-clock cpu --latency-threads 1",
    "--latency": "--coefficients paper --latency", "--latency-repeats": "--latency-repeats 10",
    # backend & device
    "--device": "--device cuda:1", "--precision": "--precision bf16",
    "--compile": "--compile reduce-overhead", "--threads": "--threads 1",
    "--backend": "--backend ray", "--address": "--backend ray --address 10.0.0.5:6379",
    "--workers": "--backend ray --workers 2", "--cpus-per-trial": "--cpus-per-trial 4",
    "--gpus-per-trial": "--gpus-per-trial 1",
    "--trials-per-device": "--device cuda --trials-per-device 4",
    "--max-retries": "--max-retries 0",
    # run folder & storage
    "--out": "--out runs/s1", "--resume": "--resume --out runs/s1",
    "--storage": "--storage postgresql://user:pw@host/db",
    "--study-name": "--study-name s1-run3",
    "--join": "--storage postgresql://... --study-name s1 --join --out runs/s1-b",
    "--heartbeat": "--heartbeat 5",
    # gridsearch: target & objective, search, base & family, comparison
    "--phi": "--phi 2", "gridsearch --constraint": "--constraint formula",
    "--tolerance": "--tolerance 0.05", "--select": "--select reward", "--step": "--step 0.1",
    "--alpha-range": "--alpha-range 1,1.5", "--beta-range": "--beta-range 1,1.3",
    "--gamma-range": "--gamma-range 1,1.3", "--coefficients": "--coefficients 1.2,1.1,1.15",
    "--base": "--base runs/stage1", "--family": "--family 0-4",
    "--rounding": "--rounding nearest", "--compare-single": "--compare-single",
    "--compare-seeds": "--compare-single --compare-seeds 5",
    # nas search: supernet (weight-sharing evaluator)
    "--evaluator": "--evaluator supernet",
    "--supernet-epochs": "--evaluator supernet --supernet-epochs 5",
    "--supernet-random": "--evaluator supernet --supernet-random 4",
    "--calib-images": "--evaluator supernet --calib-images 256",
    "--score-val-samples": "--evaluator supernet --score-val-samples 500",
    # nas search's latency rows need a latency target
    "nas search --latency-table": "--target-latency 20ms --latency-table cpu-table.json",
    "nas search --latency-threads": "--target-latency 20ms --latency-threads 4",
    "nas search --latency-batch": "--target-latency 20ms --latency-batch 8",
    "nas search --latency-runtime": "--target-latency 20ms --latency-runtime onnxruntime",
    "nas search --latency-clock": "--target-latency 8ms --latency-clock cpu",
    # nas train
    "nas train --dataset": "--dataset cifar10 --data-dir ~/cifar",
    "nas train --data-dir": "--dataset cifar10 --data-dir ~/cifar",
    "--resolution": "--resolution 64", "--recipe": "--recipe paper",
    "nas train --epochs": "--epochs 350", "nas train --batch-size": "--batch-size 128",
    "--ema-decay": "--ema-decay 0", "--no-channels-last": "--no-channels-last",
    "nas train --train-samples": "--train-samples 6000",
    "nas train --val-samples": "--val-samples 1000", "--keep": "--keep 1",
    "nas train --out": "--out runs/b2", "nas train --resume": "--resume --out runs/b2",
    "nas train --threads": "--threads 1",
}
# what every example of a command starts with, unless it names a target or resumes
PREFIX = {"nas search": "--target-flops 400M", "nas train": "runs/stage1"}


def _example(command: str, action: argparse.Action) -> str:
    for option in action.option_strings:
        for key in (f"{command} {option}", option):
            if key in EXAMPLES:
                example = EXAMPLES[key]
                prefix = PREFIX.get(command)
                if prefix and not any(w in example for w in ("--target-", "--resume", "--join")):
                    example = f"{prefix} {example}"
                return f"{command} {example}"
    raise KeyError(f"{command} {action.option_strings[-1]} has no example; add one to "
                   f"scripts/flag_tables.py's EXAMPLES")


def _split_default(text: str) -> tuple[str, str]:
    """The help text's meaning and its default: ``"... (default 60)"`` -> ``("...", "60")``,
    ``"(default 600; 0 = no limit)"`` -> ``("... (0 = no limit)", "600")``."""
    at = text.rfind("(default")
    if at < 0:
        return text, ""
    depth, end = 0, len(text)
    for i in range(at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            end = i
            break
    inner = text[at + len("(default"):end].lstrip(": ").strip()
    default, _, rest = inner.partition("; ")
    meaning = (text[:at].rstrip() + (f" ({rest})" if rest else "") + text[end + 1:]).strip()
    return meaning, default


def _cell(text: str) -> str:
    """One line, its pipes escaped (in code spans too: GitHub splits cells on them first)."""
    return " ".join(text.split()).replace("|", "\\|")


def _prose(text: str) -> str:
    """Help text as markdown that shows it as typed: no emphasis from ``a*b*c``, no tag from
    ``b<phi>.json``."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text.replace("*", "\\*"))


def _flag(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ", ".join(f"`{o}`" for o in action.option_strings)
    if action.choices is not None and action.metavar is None:
        value = "|".join(str(c) for c in action.choices)
    else:
        value = action.metavar or action.dest.upper()
    main = next(o for o in action.option_strings if o.startswith("--"))
    aliases = [f"`{o}`" for o in action.option_strings if o != main]
    return f"`{main} {value}`" + (f" (alias {', '.join(aliases)})" if aliases else "")


def flag_row(command: str, action: argparse.Action) -> str:
    """One table row: flag, default, meaning, example."""
    meaning, default = _split_default((action.help or "").replace("%%", "%"))
    if not default and action.nargs == 0 and not isinstance(action,
                                                             argparse.BooleanOptionalAction):
        default = "off"
    cells = (_flag(action), _prose(default) or "-", _prose(meaning),
             f"`{_example(command, action)}`")
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def tables(command: str) -> str:
    """``command``'s flags as markdown: one table per argument group, in --help's order."""
    parts = [f"<!-- written by {FIX} from `{command} --help`; edit the help texts, then run "
             f"it -->"]
    for g in groups_of(parser_of(command)):
        flags = [a for a in g.actions if a.option_strings]
        if not flags:
            continue
        about = f": {_prose(g.description)}" if g.description else ""
        parts.append(f"**{g.title}**{about}\n\n| flag | default | meaning | example |\n"
                     f"|---|---|---|---|\n" + "\n".join(flag_row(command, a) for a in flags))
    return "\n\n".join(parts)


def render(text: str) -> str:
    """``text`` with every marked block's tables written anew."""
    def block(m: re.Match[str]) -> str:
        command = m.group("command")
        if command not in COMMANDS:
            raise ValueError(f"<!-- flags: {command} -->: no such command; known: "
                             f"{', '.join(COMMANDS)}")
        return f"<!-- flags: {command} -->\n{tables(command)}\n<!-- /flags -->"

    return BEGIN.sub(block, text)


def marked_files(root: Path = ROOT) -> list[Path]:
    """README.md and docs/**/*.md under ``root`` that hold a flags marker."""
    candidates = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [p for p in candidates if p.is_file() and BEGIN.search(p.read_text())]


def write_tables(files: Iterable[Path], *, check: bool = False) -> list[Path]:
    """Write the tables into ``files`` (with ``check``, only say which are stale); the files
    whose tables changed (or would)."""
    stale = []
    for path in files:
        text = path.read_text()
        new = render(text)
        if new != text:
            stale.append(path)
            if not check:
                path.write_text(new)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=FIX, description="Write the flag tables of nas search, "
                                "gridsearch and nas train between <!-- flags: COMMAND --> and "
                                "<!-- /flags --> in markdown files.")
    p.add_argument("files", nargs="*", type=Path, help="markdown files (default: README.md "
                   "and docs/*.md that hold a marker)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 naming the "
                   "files whose tables differ from the parsers")
    args = p.parse_args(argv)
    files = args.files or marked_files()
    stale = write_tables(files, check=args.check)
    for path in stale:
        print(f"{path}: flag tables {'differ from the parsers' if args.check else 'rewritten'}",
              file=sys.stderr if args.check else sys.stdout)
    if args.check and stale:
        print(f"run: {FIX}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
