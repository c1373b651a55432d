"""The found B0 beside EfficientNet-B0 and MnasNet-A1, trained on the same proxy task.

    .venv/bin/python benchmarks/bench_proxy_models.py --run runs/<stage-1 run>

Each network is trained with the run's own proxy settings (dataset, resolution, epochs,
samples, seed) and scored with the run's objective at its deployment MACs (224 px, 1000
classes). Prints a Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import logging

from nas.evaluate import evaluate_proxy, trial_seed
from nas.runs import load_config
from nas.search import SearchConfig
from space import count_analytic, get_model
from space.resolve import resolve_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a stage-1 run folder (holds best.json)")
    ap.add_argument("--models", nargs="+", default=["efficientnet-b0", "mnasnet-a1"])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from pathlib import Path

    run = Path(args.run)
    cfg = SearchConfig.from_dict({k: v for k, v in load_config(run).items() if k != "storage"})
    objective = cfg.objective()
    rows = []
    for name in ["found B0", *args.models]:
        spec = resolve_spec(str(run)) if name == "found B0" else get_model(name)
        spec = spec.with_task(in_channels=3, num_classes=1000, resolution=cfg.deploy.resolution)
        counts = count_analytic(spec)
        res = evaluate_proxy(spec, cfg.proxy, seed=trial_seed(cfg.seed, spec.arch_hash()))
        rows.append((name, res.accuracy, counts.macs, counts.params,
                     objective.reward(res.accuracy, counts.macs), res.seconds))
        print(f"{name}: acc {res.accuracy:.4f}", flush=True)
    print(f"\nproxy: {cfg.proxy.dataset} at {cfg.proxy.resolution} px, {cfg.proxy.train.epochs} "
          f"epoch(s), {cfg.proxy.train_samples} train / {cfg.proxy.val_samples} held-out val "
          f"images; reward with T = {cfg.target_macs:.3g}, w = {objective.a}/{objective.b}\n")
    print("| model | proxy accuracy | MACs @224 | params @1000 classes | reward | train s |")
    print("|---|---|---|---|---|---|")
    for name, acc, macs, params, reward, secs in rows:
        print(f"| {name} | {acc:.4f} | {macs / 1e6:.1f}M | {params / 1e6:.2f}M | {reward:.4f} "
              f"| {secs:.0f} |")


if __name__ == "__main__":
    main()
