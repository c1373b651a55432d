"""``nas dashboard RUN_DIR``: write the run's self-contained HTML dashboard.

Works on a run folder of either stage, finished or still running (``--watch`` rewrites the page
every few seconds and the page reloads itself as often). The page needs no network: plotly.js is
inlined. For Optuna's own live view of the same study: ``optuna-dashboard RUN_DIR/study.journal``.
"""
from __future__ import annotations

import argparse

NAME = "dashboard"
HELP = "write a run folder's dashboard: one HTML file that works offline (stage 1 or 2)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder of `nas search` or "
                        "`gridsearch` (its --out)")
    parser.add_argument("-o", "--out", metavar="FILE",
                        help="where to write the page (default RUN_DIR/dashboard.html)")
    parser.add_argument("--watch", type=float, metavar="SECONDS",
                        help="keep rewriting the page every SECONDS while the search runs, "
                             "until Ctrl-C (the page reloads itself as often)")


def run(args: argparse.Namespace) -> int:
    from results.dashboard import watch, write_dashboard

    if args.watch is not None and not args.watch > 0:
        raise ValueError(f"`--watch > 0` must hold, but got --watch {args.watch}; pass e.g. "
                         f"--watch 30")
    if args.watch is None:
        path = write_dashboard(args.run_dir, args.out)
    else:
        path = watch(args.run_dir, args.out, every_s=args.watch)
    print(path)
    return 0
