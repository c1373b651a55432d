"""Stage 2 end to end: the grid search's wall time and the coefficients it chooses.

    .venv/bin/python benchmarks/bench_gridsearch.py                      # gridsearch defaults
    .venv/bin/python benchmarks/bench_gridsearch.py -- --train-samples 1000 --proxy-resolution 16
    .venv/bin/python benchmarks/bench_gridsearch.py --base-width 0.25 -- --threads 1 --out DIR
    .venv/bin/python benchmarks/bench_gridsearch.py --summarize runs/<gridsearch run>

Runs ``gridsearch`` with the flags after ``--`` (none: the defaults, i.e. EfficientNet-B0 on
Fashion-MNIST, the 109-point default grid at phi 1) in a fresh run folder, timed. Because the
machine is shared, wall time is also given as a ratio to a baseline measured in the same process
right after: one proxy training of the unscaled base with the same proxy settings. Prints a
Markdown report: grid size, points trained and shared, wall time, the chosen coefficients and
their accuracy, the MACs ratio fvcore measured beside the formula's, the accuracy spread over
the grid, and the single-dimension comparison when ``--compare-single`` was given.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path


def baseline_seconds(run_dir: Path) -> float:
    """One proxy training of the run's unscaled base at the run's proxy settings."""
    from gridsearch.search import GridSearchConfig
    from nas.evaluate import evaluate_proxy, trial_seed
    from results.rundir import read_config as load_config
    from space import load_spec

    config = GridSearchConfig.from_dict(load_config(run_dir))
    base = load_spec(run_dir / "base.json")
    t0 = time.perf_counter()
    evaluate_proxy(base, config.proxy, seed=trial_seed(config.seed, base.arch_hash()))
    return time.perf_counter() - t0


def report(run_dir: Path, *, wall_s: float | None, base_s: float | None,
           argv: list[str]) -> str:
    import pandas as pd

    coef = json.loads((run_dir / "coefficients.json").read_text())
    grid = pd.read_csv(run_dir / "grid.csv")
    done = grid[grid["state"] == "COMPLETE"]
    trained = done[done["reused_from"].isna()]
    compound = done[done["kind"] == "compound"]
    proxy = coef["proxy"]
    lines = [
        "command: `" + " ".join(["gridsearch", *argv]) + "`",
        "",
        f"base {coef['base']['name']} ({coef['base']['macs'] / 1e6:.1f} MMACs at "
        f"{coef['base']['resolution']} px), phi {coef['phi']:g}; proxy: {proxy['dataset']} at "
        f"{proxy['resolution']} px x gamma^phi, {proxy['train']['epochs']} epoch(s), "
        f"{proxy['train_samples']} train / {proxy['val_samples']} held-out val images",
        "",
        "| quantity | value |",
        "|---|---|",
    ]
    g = coef.get("grid")
    if g:
        lines.append(f"| grid points / kept (tolerance {coef['tolerance']:g}) | "
                     f"{g['points_total']} / {g['points_kept']} |")
    lines += [
        f"| points finished / trained / shared an identical training | {len(done)} / "
        f"{len(trained)} / {len(done) - len(trained)} |",
    ]
    if wall_s is not None:
        lines.append(f"| wall time | {wall_s:.0f} s ({wall_s / 3600:.2f} h) |")
    if wall_s is not None and base_s:
        lines.append(f"| wall time / one base training (same process) | {wall_s / base_s:.1f} |")
    if len(trained):
        lines.append(f"| mean seconds per trained point | {trained['duration_s'].mean():.1f} |")
    acc = coef["accuracy"]
    lines += [
        f"| chosen (alpha, beta, gamma), by {coef['selected_by']} | ({coef['alpha']:g}, "
        f"{coef['beta']:g}, {coef['gamma']:g}), product {coef['product']:.4f} |",
        f"| chosen point's accuracy | {'-' if acc is None else f'{acc:.4f}'} |",
        f"| MACs ratio at phi: fvcore / formula / 2^phi | {coef['macs_ratio']:.3f} / "
        f"{coef['formula_ratio']:.3f} / {coef['nominal_ratio']:.3f} |",
    ]
    if len(compound):
        a = compound["accuracy"]
        lines.append(f"| compound accuracy over the grid: min / median / max (stdev) | "
                     f"{a.min():.4f} / {a.median():.4f} / {a.max():.4f} "
                     f"({statistics.pstdev(a):.4f}) |")
        r = compound["macs_ratio"]
        lines.append(f"| measured MACs ratio over the grid: min / median / max | "
                     f"{r.min():.3f} / {r.median():.3f} / {r.max():.3f} |")
    if not coef["complete"]:
        lines.append(f"| compound points finished (run incomplete) | {coef['points_done']} of "
                     f"{coef['points_to_train']} |")
    for s in coef.get("compare_single") or []:
        a = "-" if s["accuracy"] is None else f"{s['accuracy']:.4f}"
        r = "-" if s["macs_ratio"] is None else f"{s['macs_ratio']:.3f}"
        lines.append(f"| {s['kind']}-only: accuracy / MACs ratio | {a} / {r} |")
    return "\n".join(lines)


def main() -> None:
    argv = sys.argv[1:]
    passthrough: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, passthrough = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summarize", metavar="RUN_DIR", help="report on a finished run instead")
    ap.add_argument("--no-baseline", action="store_true", help="skip the base's timing run")
    ap.add_argument("--base-width", type=float, metavar="W",
                    help="use EfficientNet-B0 with its width scaled by W (space.scale) as the "
                         "base: a cheaper base that keeps B0's structure")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s", datefmt="%H:%M:%S")
    if args.summarize:
        print(report(Path(args.summarize), wall_s=None, base_s=None, argv=["..."]))
        return
    from gridsearch.cli import main as gridsearch

    if "--out" not in passthrough:
        passthrough += ["--out", str(Path(tempfile.mkdtemp(prefix="bench-gridsearch-")) / "run")]
    run_dir = Path(passthrough[passthrough.index("--out") + 1])
    if args.base_width is not None:
        from space import get_model, save_spec, scale

        base = scale(get_model("efficientnet-b0"), width=args.base_width,
                     name=f"efficientnet-b0-w{args.base_width:g}")
        path = save_spec(base, run_dir.parent / f"{base.name}.json")
        passthrough += ["--base", str(path)]
    t0 = time.perf_counter()
    code = gridsearch(passthrough)
    wall_s = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"gridsearch exited with {code}")
    base_s = None if args.no_baseline else baseline_seconds(run_dir)
    print()
    print(report(run_dir, wall_s=wall_s, base_s=base_s, argv=passthrough))


if __name__ == "__main__":
    main()
