"""Stage 1 on Ray: trials per hour with 1 worker against 2 workers, measured in one run.

All configurations search the same space with the same random sampler and seed, so they train
the same architectures in the same order; only where the trials run differs. Ray is started once
(its start-up is reported apart) and every configuration runs on it in turn, in ``--rounds``
interleaved rounds so that load from other processes falls on all of them alike. Each Ray trial
gets one CPU and trains with one torch thread; the local rows run in this process, one trial at
a time, with 1 and with 2 torch threads (what you get without Ray).

    .venv/bin/python benchmarks/bench_ray.py --trials 8 --rounds 2

Trials per hour = trials / search wall time (from the first ask to the last tell, the
``elapsed_s`` of summary.json) x 3600. Each round starts with a machine check: the same fixed
training in one process and in two at once, without Ray, which bounds what 2 workers can gain
on this machine at that time. Ray runs its workers at nice 15 by default (``RAY_worker_niceness``):
on a machine shared with other busy processes they get less CPU than a local run at nice 0;
``RAY_worker_niceness=0 .venv/bin/python benchmarks/bench_ray.py ...`` measures without that.
Results go to benchmarks/BENCHMARKS_ray.md by hand.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from nas.backends import BackendConfig
from nas.evaluate import ProxyConfig
from nas.search import SearchConfig, run_search
from space.deploy import Deployment
from nas.train import TrainConfig

# name -> (backend, torch threads per trial)
CONFIGS: dict[str, tuple[BackendConfig, int]] = {
    "ray, 1 worker": (BackendConfig(name="ray", workers=1, cpus_per_trial=1), 1),
    "ray, 2 workers": (BackendConfig(name="ray", workers=2, cpus_per_trial=1), 1),
    "local, 1 thread": (BackendConfig(), 1),
    "local, 2 threads": (BackendConfig(), 2),
}


def one_run(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    backend, threads = CONFIGS[name]
    proxy = ProxyConfig(dataset=args.dataset, resolution=args.resolution,
                        train_samples=args.train_samples, val_samples=args.val_samples,
                        train=TrainConfig(epochs=args.epochs, batch_size=64, lr=0.05,
                                          threads=threads))
    cfg = SearchConfig(target_macs=400_000_000, space=args.space, trials=args.trials,
                       timeout=None, sampler="random", seed=args.seed, pruner="none",
                       proxy=proxy, deploy=Deployment())
    out = work / f"{name.replace(' ', '').replace(',', '-')}-{time.monotonic_ns()}"
    res = run_search(cfg, out=out, backend=backend)
    s = res.summary
    done = s["states"].get("COMPLETE", 0)
    table = pd.read_csv(out / "trials.csv")
    # Mean wall time of one trial (ask to tell): if it grows with the workers, they compete for
    # the CPUs; the rewards show that every configuration trained the same networks alike.
    return {"config": name, "elapsed_s": s["elapsed_s"], "complete": done,
            "trials_per_hour": done / s["elapsed_s"] * 3600,
            "mean_trial_s": float(table.duration_s.mean()),
            "rewards": [None if pd.isna(r) else round(float(r), 6) for r in table.reward],
            "best_reward": (s["best"] or {}).get("reward")}


def _fixed_work(steps: int) -> float:
    """Train efficientnet-b0 (32 px, 10 classes) for ``steps`` batches on one thread; seconds."""
    import torch

    from space import build, get_model

    torch.set_num_threads(1)
    model = build(get_model("efficientnet-b0").with_task(num_classes=10, resolution=32), seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return time.perf_counter() - t0


def machine_check(steps: int = 15, repeats: int = 2) -> float:
    """How much more work two processes get done than one, on this machine now, without Ray:
    the ceiling for 2 workers against 1 (2.0 on two idle cores). One and two processes take
    turns ``repeats`` times, so that a change in the other load falls on both."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    one = two = 0.0
    with ctx.Pool(2) as pool:
        pool.map(_fixed_work, [1, 1])  # imports and first-call costs, outside the timing
        for _ in range(repeats):
            t0 = time.perf_counter()
            pool.apply(_fixed_work, (steps,))
            one += time.perf_counter() - t0
            t0 = time.perf_counter()
            pool.map(_fixed_work, [steps, steps], chunksize=1)
            two += time.perf_counter() - t0
    return 2 * one / two


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--space", default="mnasnet")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-samples", type=int, default=2000)
    ap.add_argument("--val-samples", type=int, default=1000)
    ap.add_argument("--json", default=None, help="write every run's numbers here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    t0 = time.perf_counter()
    ray.init(include_dashboard=False, logging_level=logging.WARNING)  # kept for every run
    startup = time.perf_counter() - t0
    cpus = ray.cluster_resources().get("CPU", 0)
    print(f"ray start-up {startup:.1f} s, {cpus:g} CPU(s)", flush=True)
    runs: list[dict[str, Any]] = []
    checks: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as d:
            for r in range(args.rounds):
                checks.append(machine_check())
                print(f"round {r}  machine check: 2 plain processes do {checks[-1]:.2f}x the "
                      f"work of 1 (no Ray)", flush=True)
                for name in args.configs:
                    row = one_run(name, args, Path(d))
                    row["round"] = r
                    runs.append(row)
                    print(f"round {r}  {name:17s} {row['complete']} trials in "
                          f"{row['elapsed_s']:6.1f} s = {row['trials_per_hour']:6.0f} "
                          f"trials/h, {row['mean_trial_s']:5.1f} s per trial  (best reward "
                          f"{row['best_reward']:.4f})", flush=True)
    finally:
        ray.shutdown()
    base = statistics.mean(x["trials_per_hour"] for x in runs if x["config"] == args.configs[0])
    print(f"\n| configuration | trials/hour (mean of {args.rounds}) | vs {args.configs[0]} | "
          f"s per trial |")
    print("|---|---|---|---|")
    for name in args.configs:
        mine = [x for x in runs if x["config"] == name]
        tph = statistics.mean(x["trials_per_hour"] for x in mine)
        per = statistics.mean(x["mean_trial_s"] for x in mine)
        print(f"| {name} | {tph:.0f} | {tph / base:.2f}x | {per:.1f} |")
    print(f"\nmachine check (2 plain processes vs 1, no Ray): "
          f"{', '.join(f'{c:.2f}x' for c in checks)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"startup_s": startup, "cpus": cpus,
                                               "args": vars(args), "machine_check": checks,
                                               "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
