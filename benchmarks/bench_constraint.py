"""Stage 2's constraint, counted: the measured MACs ratio of the points each constraint keeps.

Pure counting, no training. For each base and phi, enumerate the grid under ``--constraint
formula`` (|alpha beta^2 gamma^2 - 2| <= tolerance) and ``--constraint measured`` (measured ratio
within tolerance of 2^phi) and report how many points each keeps and the distribution of their
measured MACs ratios (analytic count, which equals fvcore; tests/space/test_counting.py). Then
the chosen-point sanity: fvcore re-counts the paper's point and the measured grid's median point.

    .venv/bin/python benchmarks/bench_constraint.py
    .venv/bin/python benchmarks/bench_constraint.py --bases efficientnet-b0 mnasnet-a1 --phi 1 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridsearch.grid import PAPER, Grid, enumerate_grid  # noqa: E402
from gridsearch.measure import MacsRatio  # noqa: E402
from space import compound, count_fvcore, get_model  # noqa: E402


def quantiles(xs: list[float]) -> tuple[float, float, float, float, float]:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else [xs[0]] * 9
    return xs[0], q[0], statistics.median(xs), q[8], xs[-1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bases", nargs="+", default=["efficientnet-b0", "mnasnet-a1",
                                                  "mobilenet-v2", "resnet-50"])
    p.add_argument("--phi", nargs="+", type=float, default=[1.0])
    p.add_argument("--tolerance", type=float, default=0.1)
    p.add_argument("--step", type=float, default=0.05)
    args = p.parse_args(argv)

    print("| base | phi | constraint | kept / grid | measured ratio: min | p10 | median | p90 "
          "| max | within 10% of 2^phi | enumerate s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.bases:
        base = get_model(name)
        for phi in args.phi:
            ratio = MacsRatio(base, phi)
            goal = 2.0 ** phi
            for constraint in ("formula", "measured"):
                grid = Grid(step=args.step, tolerance=args.tolerance, constraint=constraint)
                t0 = time.perf_counter()
                e = enumerate_grid(grid, measure=ratio, phi=phi)
                secs = time.perf_counter() - t0
                rs = [ratio(pt) for pt in e.points]
                lo, p10, med, p90, hi = quantiles(rs)
                near = sum(abs(r / goal - 1) <= 0.1 + 1e-9 for r in rs)
                print(f"| {name} | {phi:g} | {constraint} | {e.points_kept} / {e.points_total} "
                      f"| {lo:.3f} | {p10:.3f} | {med:.3f} | {p90:.3f} | {hi:.3f} "
                      f"| {near} of {len(rs)} | {secs:.2f} |")
    print()
    b0 = get_model("efficientnet-b0")
    fv0 = count_fvcore(b0).macs
    spec = compound(b0, PAPER.alpha, PAPER.beta, PAPER.gamma, 1.0)
    print(f"fvcore re-count, efficientnet-b0 with the paper's point at phi 1: "
          f"{count_fvcore(spec).macs / fv0:.4f} (analytic {MacsRatio(b0, 1.0)(PAPER):.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
