"""The found B0 beside EfficientNet-B0 and MnasNet-A1, trained on the same proxy task.

    .venv/bin/python benchmarks/bench_proxy_models.py --run runs/<stage-1 run> [--seeds 0 1 2]

Each network is trained with the run's own proxy settings (dataset, resolution, epochs,
samples) and scored with the run's objective at its deployment MACs (224 px, 1000 classes).
``--seeds`` trains each network once per seed (the run's seed by default) and reports the mean
and the range: one short proxy training moves by several points from seed to seed. Prints a
Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics

from nas.evaluate import evaluate_proxy, trial_seed
from results.rundir import read_config as load_config
from nas.search import SearchConfig
from space import count_analytic, get_model
from space.resolve import resolve_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a stage-1 run folder (holds best.json)")
    ap.add_argument("--models", nargs="+", default=["efficientnet-b0", "mnasnet-a1"])
    ap.add_argument("--seeds", nargs="+", type=int, default=None,
                    help="base seeds to train each network with (default: the run's seed)")
    ap.add_argument("--epochs", type=int, default=None, help="override the run's proxy epochs")
    ap.add_argument("--lr", type=float, default=None, help="override the run's proxy lr")
    ap.add_argument("--warmup-epochs", type=float, default=None,
                    help="override the run's proxy warm-up")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from pathlib import Path

    run = Path(args.run)
    cfg = SearchConfig.from_dict({k: v for k, v in load_config(run).items() if k != "storage"})
    objective = cfg.objective()
    change = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr),
                                ("warmup_epochs", args.warmup_epochs)) if v is not None}
    if change:
        cfg = dataclasses.replace(cfg, proxy=dataclasses.replace(
            cfg.proxy, train=dataclasses.replace(cfg.proxy.train, **change)))
    seeds = args.seeds if args.seeds is not None else [cfg.seed]
    rows = []
    for name in ["found B0", *args.models]:
        spec = resolve_spec(str(run)) if name == "found B0" else get_model(name)
        spec = spec.with_task(in_channels=3, num_classes=1000, resolution=cfg.deploy.resolution)
        counts = count_analytic(spec)
        accs, secs = [], []
        for seed in seeds:
            res = evaluate_proxy(spec, cfg.proxy, seed=trial_seed(seed, spec.arch_hash()))
            accs.append(res.accuracy)
            secs.append(res.seconds)
            print(f"{name} seed {seed}: acc {res.accuracy:.4f} ({res.seconds:.0f}s)", flush=True)
        acc = statistics.mean(accs)
        rows.append((name, acc, min(accs), max(accs), counts.macs, counts.params,
                     objective.reward(acc, counts.macs), statistics.mean(secs)))
    print(f"\nproxy: {cfg.proxy.dataset} at {cfg.proxy.resolution} px, {cfg.proxy.train.epochs} "
          f"epoch(s), {cfg.proxy.train_samples} train / {cfg.proxy.val_samples} held-out val "
          f"images, lr {cfg.proxy.train.lr}, warm-up {cfg.proxy.train.warmup_epochs} "
          f"epoch(s), seeds {seeds}; reward of the mean accuracy with T = {cfg.target_macs:.3g}, "
          f"w = {objective.a}/{objective.b}\n")
    print("| model | proxy accuracy, mean (min-max) | MACs @224 | params @1000 classes | reward "
          "| train s |")
    print("|---|---|---|---|---|---|")
    for name, acc, lo, hi, macs, params, reward, secs in rows:
        print(f"| {name} | {acc:.4f} ({lo:.4f}-{hi:.4f}) | {macs / 1e6:.1f}M | "
              f"{params / 1e6:.2f}M | {reward:.4f} | {secs:.0f} |")


if __name__ == "__main__":
    main()
