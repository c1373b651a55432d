"""Stage 1's proxy task: which cheap settings rank architectures like a longer training does.

A proxy is only useful if it orders candidates the way a better-trained measurement would. This
samples ``--archs`` architectures from the space (seeded, uniformly), trains each under every
named proxy setting and under a longer reference setting, and reports per setting: mean
accuracy, how many runs ended below ``--fail-below`` (unstable training), Spearman's rank
correlation with the reference, and seconds per architecture.

    .venv/bin/python benchmarks/bench_proxy_settings.py --archs 8 --threads 2

All settings share the data split (Fashion-MNIST at 32 px, 2,000 held-out validation images) and
each architecture's seed. Results go to BENCHMARKS.md by hand.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import statistics
import time
from typing import Any

from nas.evaluate import ProxyConfig, evaluate_proxy, trial_seed
from nas.train import TrainConfig
from space import count_analytic
from space.search_space import load_space

# name -> (train_samples, TrainConfig changes). The reference trains 3x longer on 4x the data.
SETTINGS: dict[str, tuple[int, dict[str, Any]]] = {
    "6k lr0.05": (6000, {"lr": 0.05}),
    "6k lr0.02 warm": (6000, {"lr": 0.02, "warmup_epochs": 0.2}),
    "6k lr0.01 warm": (6000, {"lr": 0.01, "warmup_epochs": 0.2}),
    "12k lr0.02 warm": (12000, {"lr": 0.02, "warmup_epochs": 0.2}),
}
REFERENCE = ("24k x3 lr0.02 warm", 24000, {"lr": 0.02, "warmup_epochs": 0.2, "epochs": 3})


class _RandomChoice:
    """A Suggester (define-by-run) that picks uniformly with a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.rng.choice(list(choices))


def _ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va and vb else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=8)
    ap.add_argument("--space", default="mnasnet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=2, help="epochs of every non-reference setting")
    ap.add_argument("--fail-below", type=float, default=0.5)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    space = load_space(args.space)
    rng = random.Random(args.seed)
    archs = [space.to_spec(space.sample(_RandomChoice(rng)), name=f"arch{i}")
             for i in range(args.archs)]
    names = args.settings.split(",")
    plan = [(n, *SETTINGS[n]) for n in names] + [REFERENCE]
    acc: dict[str, list[float]] = {p[0]: [] for p in plan}
    secs: dict[str, list[float]] = {p[0]: [] for p in plan}
    for i, spec in enumerate(archs):
        macs = count_analytic(spec).macs
        seed = trial_seed(args.seed, spec.arch_hash())
        line = [f"arch{i} {macs / 1e6:6.1f}M"]
        for name, samples, change in plan:
            change = {"epochs": args.epochs, **change}
            proxy = ProxyConfig(train_samples=samples, train=dataclasses.replace(
                TrainConfig(threads=args.threads), **change))
            res = evaluate_proxy(spec, proxy, seed=seed)
            acc[name].append(res.accuracy)
            secs[name].append(res.seconds)
            line.append(f"{name}: {res.accuracy:.3f} ({res.seconds:.0f}s)")
        print("  ".join(line), flush=True)
    ref = acc[REFERENCE[0]]
    print(f"\n{args.archs} architectures sampled uniformly from `{args.space}` (seed {args.seed}); "
          f"{args.epochs} epoch(s) unless named; reference: {REFERENCE[0]}\n")
    print(f"| setting | mean val top-1 | runs below {args.fail_below} | Spearman vs reference "
          f"| s per arch |")
    print("|---|---:|---:|---:|---:|")
    for name, *_ in plan:
        a = acc[name]
        rho = spearman(a, ref) if name != REFERENCE[0] else 1.0
        print(f"| {name} | {statistics.mean(a):.3f} | "
              f"{sum(x < args.fail_below for x in a)}/{len(a)} | {rho:.2f} | "
              f"{statistics.mean(secs[name]):.1f} |")


if __name__ == "__main__":
    main()
