"""The ``nas`` command line: subcommands by table, one module each under ``nas/commands``.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Bad input (ValueError/KeyError/TypeError/OSError raised while validating) becomes one line on
stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

# name -> module; imported lazily so `nas --help` answers at once.
COMMANDS: dict[str, str] = {
    "list": "nas.commands.list_cmd",
    "show": "nas.commands.show",
    "export": "nas.commands.export",
    "search": "nas.commands.search",
    "train": "nas.commands.train",
    "cam": "nas.commands.cam",
    "results": "nas.commands.results_cmd",
    "dashboard": "nas.commands.dashboard",
}


OPTUNA_COMMANDS = {"search", "gridsearch", "results", "dashboard"}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (with the hint to use --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def error_line(exc: BaseException) -> str:
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return str(msg).splitlines()[0] if str(msg) else type(exc).__name__


def make_parser(prog: str, commands: dict[str, str], description: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, modname in commands.items():
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if "optuna" in sys.modules or args.command in OPTUNA_COMMANDS:
        import optuna

        # We log one line per trial ourselves; Optuna's own line dumps every parameter.
        optuna.logging.set_verbosity(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args._run(args) or 0)
    except (CLIError, ValueError, KeyError, TypeError, OSError, ImportError) as e:
        print(f"{parser.prog}: error: {error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser("nas", COMMANDS,
                         "EfficientNet-style architecture search: stage 1 (search a base network "
                         "under a MACs target) and tools for specs.")
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
