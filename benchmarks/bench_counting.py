"""Time fvcore against the analytic counter on the zoo, at each model's native resolution.

The searches count MACs in their hot path, so the issue asks that ``count_analytic`` be at least
100x faster than ``count_fvcore`` while giving the same totals. ``count_fvcore`` is timed as a
search would call it: build the network, trace it in eval mode, sum. Each fvcore time is the
median of ``--fvcore-runs`` calls; each analytic time is the median over ``--repeats`` batches of
``--analytic-runs`` calls, divided by the batch size. Every model's two counts are also checked
to be equal.

    .venv/bin/python benchmarks/bench_counting.py                     # zoo without B4..B7
    .venv/bin/python benchmarks/bench_counting.py --all --write benchmarks/BENCHMARKS_counting.md
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import torch

from space.counting import count_analytic, count_fvcore
from space.zoo import get_model, list_models

SLOW = ("efficientnet-b4", "efficientnet-b5", "efficientnet-b6", "efficientnet-b7")


class Timing(NamedTuple):
    model: str
    resolution: int
    gmacs: float
    fvcore_s: float
    analytic_s: float
    equal: bool

    @property
    def speedup(self) -> float:
        return self.fvcore_s / self.analytic_s


def time_model(name: str, *, fvcore_runs: int, analytic_runs: int, repeats: int) -> Timing:
    spec = get_model(name)
    fv = count_fvcore(spec)  # warm-up, and the totals to compare
    an = count_analytic(spec)
    fv_times = []
    for _ in range(fvcore_runs):
        t0 = time.perf_counter()
        count_fvcore(spec)
        fv_times.append(time.perf_counter() - t0)
    an_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(analytic_runs):
            count_analytic(spec)
        an_times.append((time.perf_counter() - t0) / analytic_runs)
    return Timing(name, spec.resolution, an.gmacs, statistics.median(fv_times),
                  statistics.median(an_times),
                  (fv.params, fv.macs) == (an.params, an.macs))


def table(rows: list[Timing]) -> str:
    lines = ["| model | resolution | GMACs | fvcore (ms) | analytic (us) | speed-up | equal |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.model} | {r.resolution} | {r.gmacs:.3f} | {r.fvcore_s * 1e3:,.0f} | "
                     f"{r.analytic_s * 1e6:,.0f} | {r.speedup:,.0f}x | "
                     f"{'yes' if r.equal else 'NO'} |")
    return "\n".join(lines)


def machine() -> str:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}, load average (1/5/15 min) {load}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=None, help="zoo names (default: the zoo "
                   "without B4..B7, whose fvcore traces take seconds each)")
    p.add_argument("--all", action="store_true", help="include B4..B7")
    p.add_argument("--fvcore-runs", type=int, default=5)
    p.add_argument("--analytic-runs", type=int, default=200)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice); 1 steadies fvcore's "
                        "times on a busy machine")
    p.add_argument("--write", type=Path, help="also write the results as markdown here")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit inside fvcore
    names = args.models or [n for n in list_models() if args.all or n not in SLOW]

    before = machine()
    rows = []
    for name in names:
        rows.append(time_model(name, fvcore_runs=args.fvcore_runs,
                               analytic_runs=args.analytic_runs, repeats=args.repeats))
        logging.info("%s: fvcore %.0f ms, analytic %.0f us, %.0fx", name,
                     rows[-1].fvcore_s * 1e3, rows[-1].analytic_s * 1e6, rows[-1].speedup)
    after = machine()
    speedups = [r.speedup for r in rows]
    summary = (f"Speed-up of count_analytic over count_fvcore: min {min(speedups):,.0f}x, "
               f"median {statistics.median(speedups):,.0f}x, max {max(speedups):,.0f}x "
               f"(required: >= 100x). Totals equal on every model: "
               f"{'yes' if all(r.equal for r in rows) else 'NO'}.")
    print(table(rows))
    print(summary)
    if args.write:
        command = " ".join(shlex.quote(a) for a in [".venv/bin/python",
                                                     "benchmarks/bench_counting.py",
                                                     *(argv if argv is not None else sys.argv[1:])])
        args.write.write_text(
            "# Counting: analytic vs fvcore\n\n"
            f"Reproduce: `{command}`\n\n"
            "fvcore time = one `count_fvcore(spec)` call as a search makes it (build the network, "
            f"trace in eval mode, sum): median of {args.fvcore_runs} runs after a warm-up. "
            f"Analytic time = one `count_analytic(spec)` call: median of {args.repeats} batches "
            f"of {args.analytic_runs} calls. Both at the model's native resolution.\n\n"
            f"Machine at start: {before}.  \nMachine at end: {after}.\n\n"
            f"{table(rows)}\n\n{summary}\n")
        logging.info("wrote %s", args.write)
    return 0 if all(r.equal for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
