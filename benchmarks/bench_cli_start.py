"""How long ``--help`` takes, as a ratio to ``python -c pass`` (BENCHMARKS.md, "Start-up").

Each command is a fresh interpreter, run ``--repeats`` times; the runs are interleaved (pass,
each help, pass, each help, ...) so that a machine whose load changes during the benchmark
slows every command alike. The ratio is the median wall time of a help over the median of
``python -c pass``. Issue 25's goal: ``nas --help`` at most 10x.

    .venv/bin/python benchmarks/bench_cli_start.py --repeats 15
    .venv/bin/python benchmarks/bench_cli_start.py --root ../other-checkout   # e.g. before
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "nas --help": ["-m", "nas.cli", "--help"],
    "nas search --help": ["-m", "nas.cli", "search", "--help"],
    "gridsearch --help": ["-m", "gridsearch.cli", "--help"],
}


def wall(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, cwd=env["PYTHONPATH"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def measure(repeats: int, root: Path = ROOT) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for name, args in COMMANDS.items():  # one untimed round: the file cache is warm for all
        wall(args, env)
    for _ in range(repeats):
        for name, args in COMMANDS.items():
            times[name].append(wall(args, env))
    base = statistics.median(times["python -c pass"])
    return {name: {"median_s": statistics.median(t), "ratio": statistics.median(t) / base}
            for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15, help="timed runs of each command")
    p.add_argument("--root", type=Path, default=ROOT,
                   help="the checkout whose commands are timed (default: this one)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args()
    result = measure(args.repeats, args.root.resolve())
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"median of {args.repeats} interleaved runs, {args.root.resolve()}, {sys.executable}")
    for name, r in result.items():
        print(f"  {name:<20} {r['median_s'] * 1000:8.1f} ms  {r['ratio']:6.1f}x")


if __name__ == "__main__":
    main()
