"""How well does a latency table predict end-to-end latency? (issue 14; nn-Meter's +-10% metric)

Builds the table of ``--space`` at ``--resolution`` (every entry: warm-up, median of
``--repeats``, smallest median over ``--rounds`` passes), fits the per-network overhead on ``--calibrate`` seeded random members (seeds
10000 + 100 * --seed.., disjoint from the evaluation seeds), then times ``--archs`` seeded
random members (seeds 100 * --seed..) plus the zoo models that are members of the space end to end (round-robin, ``--rounds``
passes, smallest median kept) and compares.
Reported for the plain sum of entries, for sum + fitted overhead (the predictor ``nas search``
uses) and, as a diagnostic, for a fitted scale + overhead: MAPE, the share within +-10% and
Spearman's rank correlation. Single-threaded by default; the machine may be shared, so the
timings are only comparable within one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_latency.py --resolution 128 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time

from nas.latency import bench_specs, build_table
from space.latency import fit_overhead, predict_ms, random_params
from space.search_space import load_space
from space.zoo import ZOO, get_model


def ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5


def metrics(pred: list[float], meas: list[float]) -> dict[str, float]:
    err = [abs(p - m) / m for p, m in zip(pred, meas)]
    return {"mape_pct": 100 * statistics.fmean(err),
            "within_10pct": 100 * sum(e <= 0.10 for e in err) / len(err),
            "max_err_pct": 100 * max(err), "spearman": spearman(pred, meas)}


def fit_linear(sums: list[float], meas: list[float]) -> tuple[float, float]:
    """a, c minimising the squared relative error of a * sum + c (weighted least squares)."""
    w = [1 / m ** 2 for m in meas]
    sw = sum(w)
    sx = sum(wi * s for wi, s in zip(w, sums))
    sy = sum(wi * m for wi, m in zip(w, meas))
    sxx = sum(wi * s * s for wi, s in zip(w, sums))
    sxy = sum(wi * s * m for wi, s, m in zip(w, sums, meas))
    a = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    return a, (sy - a * sx) / sw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="mnasnet")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runtime", default="torch")
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--calibrate", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=10, help="per table entry")
    ap.add_argument("--bench-repeats", type=int, default=20, help="per end-to-end network")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3,
                    help="passes over the table and over the networks; the least-loaded kept")
    ap.add_argument("--statistic", default="median", choices=("median", "min"),
                    help="per measurement: median of the repeats, or their minimum")
    ap.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                    help="wall: elapsed time; cpu: the thread's CPU time (threads 1)")
    ap.add_argument("--seed", type=int, default=0,
                    help="members use seeds 100*seed.. (evaluation), 10000+100*seed.. (calibration)")
    ap.add_argument("--json", metavar="FILE", help="also write every row and metric here")
    args = ap.parse_args(argv)

    space = load_space(args.space)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    table = build_table(space, resolution=args.resolution, threads=args.threads,
                        batch=args.batch, runtime=args.runtime, warmup=args.warmup,
                        repeats=args.repeats, rounds=args.rounds, statistic=args.statistic,
                        clock=args.clock)
    table_s = time.perf_counter() - t0

    def measure(specs):
        return bench_specs(specs, resolution=args.resolution, threads=args.threads,
                           batch=args.batch, runtime=args.runtime, warmup=args.warmup,
                           repeats=args.bench_repeats, rounds=args.rounds,
                           statistic=args.statistic, clock=args.clock)

    calib = [space.to_spec(random_params(space, seed=10000 + 100 * args.seed + i)) for i in range(args.calibrate)]
    c_sum = [predict_ms(table, s, overhead=False) for s in calib]
    c_meas = measure(calib)
    overhead = fit_overhead(c_sum, c_meas)
    scale, offset = fit_linear(c_sum, c_meas)

    rows = []
    archs = [(f"random-{i}", space.to_spec(random_params(space, seed=100 * args.seed + i)))
             for i in range(args.archs)]
    archs += [(n, get_model(n).with_task(resolution=args.resolution)) for n in ZOO.names()
              if space.contains(get_model(n))]
    measured = measure([spec for _, spec in archs])
    for (name, spec), m in zip(archs, measured):
        rows.append({"arch": name, "sum_ms": predict_ms(table, spec, overhead=False),
                     "measured_ms": m})
    meas = [r["measured_ms"] for r in rows]
    sums = [r["sum_ms"] for r in rows]
    result = {
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_latency.py "
                   + shlex.join(argv if argv is not None else sys.argv[1:]),
        "space": space.name, "resolution": args.resolution, "entries": len(table.entries),
        "table_seconds": round(table_s, 1), "device": dict(table.device),
        # the machine is shared: 1-minute load averages before and after, beside the figures
        "loadavg_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "archs": len(rows), "zoo_members": [n for n, _ in archs if not n.startswith("random")],
        "overhead_ms": overhead, "scale": scale, "scale_offset_ms": offset,
        "measured_ms_range": [min(meas), max(meas)],
        "sum": metrics(sums, meas),
        "sum_plus_overhead": metrics([s + overhead for s in sums], meas),
        "scale_plus_offset": metrics([scale * s + offset for s in sums], meas),
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
