"""The ``nas`` command line: subcommands by table, one module each under ``nas/commands``.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
:func:`run_cli` (``gridsearch`` uses it too) tells bad input from bugs by the exception's type
(:func:`is_bad_input`, the family in :mod:`space.errors`):

* bad input: one line on stderr, exit code 2 (:data:`EXIT_BAD_INPUT`), also under ``-v``;
* a bug: one line saying so, exit code 3 (:data:`EXIT_BUG`); ``-v`` prints the traceback first;
* Ctrl-C: exit code 130.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

EXIT_BAD_INPUT = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

DISTRIBUTION = "efficientnas"
# Our own top-level packages: an ImportError naming one of them is a bug, not a missing extra.
OWN_PACKAGES = frozenset({"space", "nas", "results", "gridsearch"})

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
    "latency-table": "nas.commands.latency_table",
    "bench": "nas.commands.bench",
}


OPTUNA_COMMANDS = {"search", "gridsearch", "results", "dashboard"}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (with the hint to use --help), naming
    the ``--config`` file when the flags came from one."""

    source: str | None = None  # where the flags being parsed come from, when not typed

    def error(self, message: str) -> None:  # type: ignore[override]
        where = f"{self.source}: " if self.source else ""
        print(f"{self.prog}: error: {where}{message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)

    def parse_file_args(self, tokens: Sequence[str], *, source: str) -> argparse.Namespace:
        """Parse flags that came from ``source`` (a ``--config`` file): an error names it."""
        self.source = source
        try:
            return self.parse_args(tokens)
        finally:
            self.source = None


def package_version() -> str:
    """The installed efficientnas version; pyproject.toml's when running from a checkout that
    was never installed."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            version = tomllib.loads(pyproject.read_text())["project"]["version"]
            return f"{version} (not installed)"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown (not installed, no pyproject.toml beside the code)"


class _VersionAction(argparse.Action):
    """``--version``: looked up only when asked, so ``--help`` reads no package metadata."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values,  # type: ignore[override]
                 option_string=None) -> None:
        print(f"{parser.prog} {package_version()}")
        parser.exit()


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every efficientnas command line has: ``-v/--verbose`` and ``--version``."""
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages; on an internal error, print the traceback")
    parser.add_argument("--version", action=_VersionAction,
                        help="print the installed efficientnas version and exit")


def is_bad_input(exc: BaseException) -> bool:
    """Whether ``exc`` says the input (or the environment) is wrong rather than the code.

    Bad input: ValueError (SpecError, UsageError, a JSON decode error, ...), UnknownNameError
    (an unknown registry name), OSError (a missing file, a locked run folder, no network, a full
    disk) and an ImportError of a missing optional extra. Anything else, a bare KeyError or
    TypeError included, is a bug in efficientnas.
    """
    from space.errors import UnknownNameError  # here: `import space` loads torch, --help need not

    if isinstance(exc, (ValueError, UnknownNameError, OSError)):
        return True
    if isinstance(exc, ImportError):
        return (exc.name or "").partition(".")[0] not in OWN_PACKAGES
    return False


def error_line(exc: BaseException) -> str:
    """The first line of the exception's message (KeyError's without its quotes)."""
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return str(msg).splitlines()[0] if str(msg) else type(exc).__name__


def bug_line(prog: str, exc: BaseException, *, verbose: bool) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    hint = ("please report it with the traceback above" if verbose
            else "rerun with -v for the traceback and report it")
    return f"{prog}: internal error: {what} (a bug in efficientnas; {hint})"


def make_parser(prog: str, commands: dict[str, str], description: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=description)
    add_common_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, modname in commands.items():
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


# INFO lines wait at most this long for the command to say its input is checked
HOLD_S = 10.0


class HeldLog(logging.Handler):
    """The command line's log handler: INFO and DEBUG lines are held back until the command
    says its input is checked (a record with :data:`space.errors.INPUTS_CHECKED`), a WARNING
    comes, :data:`HOLD_S` seconds pass after the first held line, or the command ends; then
    they are written, in order. A command ended by bad input before that drops them
    (:meth:`drop`), so bad input is one line on stderr (the checks come before the log)."""

    def __init__(self, target: logging.Handler, *, hold_s: float = HOLD_S) -> None:
        super().__init__()
        self.target = target
        self.held: list[logging.LogRecord] = []
        self.open = False
        # started by the first line held: imports before it do not count against the wait
        self.timer = threading.Timer(hold_s, self.let_through)
        self.timer.daemon = True

    def emit(self, record: logging.LogRecord) -> None:
        from space.errors import INPUTS_CHECKED

        if not self.open and (record.levelno >= logging.WARNING
                              or getattr(record, INPUTS_CHECKED, False)):
            self._open()
        if self.open:
            self.target.handle(record)
            return
        if not self.held:
            self.timer.start()
        self.held.append(record)

    def _open(self) -> None:
        self.open = True
        self.timer.cancel()
        held, self.held = self.held, []
        for r in held:
            self.target.handle(r)

    def let_through(self) -> None:
        """Write what is held; from now on every line goes straight through. (Not named
        ``release``: that is the Handler's lock, which ``handle`` releases after every line.)"""
        with self.lock:
            if not self.open:
                self._open()

    def drop(self) -> None:
        with self.lock:
            self.timer.cancel()
            self.held = []
            self.open = True


@contextmanager
def _logging(verbose: bool) -> Iterator[HeldLog | None]:
    """The root logger's handler for one command (as ``logging.basicConfig`` would set it up:
    only where the root logger has none yet), held back as :class:`HeldLog` says."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if root.handlers:  # the caller configured logging (an embedding program, a test)
        yield None
        return
    stream = logging.StreamHandler()
    stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                          datefmt="%H:%M:%S"))
    held = HeldLog(stream)
    root.addHandler(held)
    try:
        yield held
    finally:
        held.let_through()
        root.removeHandler(held)


def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv``, run the chosen command and turn what it raises into an exit code."""
    args = parser.parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    with _logging(verbose) as held:
        if "optuna" in sys.modules or getattr(args, "command", None) in OPTUNA_COMMANDS:
            import optuna

            # We log one line per trial ourselves; Optuna's own line dumps every parameter.
            optuna.logging.set_verbosity(logging.DEBUG if verbose else logging.WARNING)
        try:
            return int(args._run(args) or 0)
        except KeyboardInterrupt:
            if held is not None:
                held.let_through()
            print(f"{parser.prog}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as e:  # noqa: BLE001 - every exception ends here, by is_bad_input
            if is_bad_input(e):
                if held is not None and not verbose:  # the lines before the check: dropped
                    held.drop()
                print(f"{parser.prog}: error: {error_line(e)}", file=sys.stderr)
                return EXIT_BAD_INPUT
            if held is not None:  # a bug: everything logged before it helps
                held.let_through()
            if verbose:
                traceback.print_exc(file=sys.stderr)
            print(bug_line(parser.prog, e, verbose=verbose), file=sys.stderr)
            return EXIT_BUG


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser("nas", COMMANDS,
                         "EfficientNet-style architecture search: stage 1 (search a base network "
                         "under a MACs target) and tools for specs.")
    return run_cli(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
