"""``nas latency-table --space S [--device cpu] [--threads N] [--batch B] [--resolution R]``.

Times every block configuration the space can produce (space.latency.space_keys: op, kernel,
expand ratio, SE, skip, in/out channels, stride, input size) plus the stem and the head on this
machine, fits the per-network overhead on ``--calibrate`` seeded random members timed end to
end, and writes the table (JSON keyed by the device: CPU model, torch version, threads, batch,
runtime). Without ``-o`` the table goes to the cache that ``nas search --target-latency`` reads.
Every input is checked before anything is timed; the file is written once, atomically, at the end.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from nas.latency_settings import CLOCKS, RUNTIMES, STATISTICS

NAME = "latency-table"
HELP = "time every block of a search space on this machine and write a latency lookup table"

# the choices, from the tables themselves (nas.latency_settings needs no torch: a fast --help)
RUNTIME_NAMES = tuple(RUNTIMES.names())
STATISTIC_NAMES = tuple(STATISTICS.names())
CLOCK_NAMES = tuple(CLOCKS.names())

log = logging.getLogger(__name__)


def _positive(name: str):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {text!r}")
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {text!r}")
        return v

    return parse


def add_timing_arguments(p: argparse.ArgumentParser, *, repeats: int, warmup: int) -> None:
    p.add_argument("--device", default="cpu", choices=("cpu",),
                   help="where to time (default cpu; the only one measured so far)")
    p.add_argument("--threads", type=_positive("--threads"), default=1,
                   help="intra-op threads (default 1)")
    p.add_argument("--batch", type=_positive("--batch"), default=1, help="batch size (default 1)")
    p.add_argument("--runtime", default="torch", choices=RUNTIME_NAMES,
                   help="eager torch, or ONNX Runtime (needs efficientnas[onnx]) (default torch)")
    p.add_argument("--repeats", type=_positive("--repeats"), default=repeats,
                   help=f"timed runs per measurement; the median is kept (default {repeats})")
    p.add_argument("--warmup", type=int, default=warmup,
                   help=f"untimed runs before timing (default {warmup})")
    p.add_argument("--clock", default="wall", choices=CLOCK_NAMES,
                   help="wall: elapsed time (default); cpu: the thread's CPU time, which other "
                        "jobs on a shared machine do not inflate (needs --threads 1)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default="mnasnet",
                   help="mnasnet, efficientnet, or a YAML/JSON space file (default mnasnet)")
    p.add_argument("--resolution", type=_positive("--resolution"), default=224,
                   help="input size the entries are timed at (default 224)")
    add_timing_arguments(p, repeats=10, warmup=3)
    p.add_argument("--rounds", type=_positive("--rounds"), default=2,
                   help="passes over the table and the calibration members; each keeps its "
                        "smallest median, so a burst of other load spoils one pass, not the "
                        "entry (default 2)")
    p.add_argument("--statistic", default="median", choices=STATISTIC_NAMES,
                   help="an entry's value from its repeats: median (default), or min on a "
                        "machine shared with other work (load only adds time)")
    p.add_argument("--calibrate", type=int, default=10, metavar="N",
                   help="seeded random members timed end to end to fit the per-network "
                        "overhead (default 10; 0 = no overhead)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration members")
    p.add_argument("-o", "--out", metavar="FILE", type=Path,
                   help="where to write the table (default: the cache nas search reads)")
    p.add_argument("--json", action="store_true", help="print a JSON summary of the table")


class _progress:
    """A rich bar with entries done and the time left; silent when stderr is not a terminal."""

    def __init__(self, description: str) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        console = Console(stderr=True)
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("left"), TimeRemainingColumn(),
                            console=console, disable=not console.is_terminal)
        self.description = description

    def __enter__(self):
        self.bar.__enter__()
        task = self.bar.add_task(self.description, total=None)
        return lambda done, total: self.bar.update(task, completed=done, total=total)

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)


def run(args: argparse.Namespace) -> int:
    from nas.latency import default_cache_path, device_info, make_table
    from space.latency import save_table
    from space.search_space import load_space

    if args.warmup < 0 or args.calibrate < 0:
        raise ValueError(f"--warmup and --calibrate must be >= 0, got --warmup {args.warmup} "
                         f"--calibrate {args.calibrate}")
    space = load_space(args.space)
    device = device_info(device=args.device, threads=args.threads, batch=args.batch,
                         runtime=args.runtime, clock=args.clock)
    out = args.out or default_cache_path(space.name, device, args.resolution)
    if out.exists() and out.is_dir():
        raise IsADirectoryError(f"-o {str(out)!r} is a folder; pass a file name such as table.json")
    if not out.parent.exists() and args.out is not None:
        raise FileNotFoundError(f"-o {str(out)!r}: folder {str(out.parent)!r} does not exist")
    with _progress(f"timing {space.name}") as bar:
        table = make_table(space, resolution=args.resolution, threads=args.threads,
                           batch=args.batch, runtime=args.runtime, repeats=args.repeats,
                           warmup=args.warmup, rounds=args.rounds, calibrate=args.calibrate,
                           seed=args.seed, statistic=args.statistic, clock=args.clock,
                           progress=bar)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_table(table, out)
    info = {"table": str(out), "space": table.space, "resolution": table.resolution,
            "entries": len(table.entries), "overhead_ms": table.overhead_ms,
            "seconds": table.meta.get("seconds"), "device": dict(table.device)}
    if args.json:
        print(json.dumps(info))
    else:
        print(f"wrote {out}: {len(table.entries)} entries of space {table.space!r} at "
              f"{table.resolution}px, timed in {info['seconds']} s; fitted overhead "
              f"{table.overhead_ms:.3f} ms", file=sys.stdout)
    return 0
