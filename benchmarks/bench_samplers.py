"""Stage 1 samplers against random search: best reward found for the same trial budget.

Every sampler gets the same budget, the same proxy task and the same seeds; the table reports
the mean (and per-seed) best reward, and each sampler's mean as a ratio to random's.

    .venv/bin/python benchmarks/bench_samplers.py --trials 24 --seeds 0 1 2 --threads 1 \
        [--samplers random tpe evolution nsga2] [--out result.json]

Real training on Fashion-MNIST with a cheap proxy (16 px, 2 epochs of 3,000 images, lr 0.05,
about 6 s per trial on 2 cores), no pruning, so that the whole comparison fits in half an hour.
(1 epoch of 1,500 images left every network at chance, 0.10-0.16, and every sampler tied.)
The budget must outlast each sampler's random start (TPE 8 trials, NSGA-II one population of 8,
evolution a population of 12), or the samplers are compared on the same random trials.
Two processes with ``--threads 1`` and a half of ``--samplers`` each use 2 cores best.
Results go to BENCHMARKS.md by hand.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from nas.evaluate import ProxyConfig
from nas.search import SearchConfig, run_search
from space.deploy import Deployment
from nas.train import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samplers", nargs="+", default=["random", "tpe", "evolution", "nsga2"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--space", default="mnasnet")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--train-samples", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads per trial")
    ap.add_argument("--out", default=None, help="write the JSON result here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    proxy = ProxyConfig(dataset=args.dataset, resolution=args.resolution,
                        train_samples=args.train_samples, val_samples=1000,
                        train=TrainConfig(epochs=args.epochs, batch_size=64, lr=0.05,
                                          threads=args.threads))
    results: dict[str, dict[str, object]] = {}
    for sampler in args.samplers:
        best, secs = [], []
        for seed in args.seeds:
            cfg = SearchConfig(target_macs=400_000_000, space=args.space, trials=args.trials,
                               timeout=None, sampler=sampler, seed=seed, pruner="none",
                               proxy=proxy, deploy=Deployment())
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                res = run_search(cfg, out=Path(d) / "run")
                secs.append(time.perf_counter() - t0)
                best.append(res.summary["best"]["reward"])
        results[sampler] = {"best_per_seed": best, "mean": statistics.mean(best),
                            "seconds": sum(secs)}
        print(f"{sampler:10s} mean best reward {statistics.mean(best):.4f}  per seed "
              f"{', '.join(f'{b:.4f}' for b in best)}  ({sum(secs):.0f}s)", flush=True)
    base = results.get("random", {}).get("mean")
    print(f"\n| sampler | mean best reward ({len(args.seeds)} seeds x {args.trials} trials) "
          f"| vs random | per seed |")
    print("|---|---|---|---|")
    for s, r in results.items():
        ratio = f"{r['mean'] / base:.3f}x" if base else "-"
        print(f"| {s} | {r['mean']:.4f} | {ratio} | "
              f"{', '.join(f'{b:.4f}' for b in r['best_per_seed'])} |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
