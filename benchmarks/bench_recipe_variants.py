"""One-epoch accuracy of B0 under the ``fast`` recipe with one setting changed at a time.

This is how the ``fast`` recipe's learning rate and warm-up were chosen (BENCHMARKS_train.md).

    .venv/bin/python -m benchmarks.bench_recipe_variants [--train-samples 20000] [--epochs 1]
        [--variants fast,lr0.05,lr0.02,...] [--threads 1]

Prints one line per variant: validation top-1 on 2,000 held-out Fashion-MNIST images, the mean
training loss of the last epoch, seconds.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Any, Sequence

import torch

from nas.data import load_dataset, proxy_data
from nas.recipes import make_recipe
from nas.trainer import param_groups
from nas.training import OPTIMIZERS, fit
from space import build, get_model

# name -> changes to the fast recipe: "train" fields of TrainConfig, "spec" fields of ArchSpec.
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "fast": {},
    "lr0.05": {"train": {"lr": 0.05, "warmup_epochs": 0.0}},
    "lr0.02": {"train": {"lr": 0.02, "warmup_epochs": 0.0}},
    "lr0.02-warm": {"train": {"lr": 0.02}},
    "lr0.02-nodc": {"train": {"lr": 0.02, "warmup_epochs": 0.0}, "spec": {"drop_connect": 0.0}},
    "lr0.01": {"train": {"lr": 0.01, "warmup_epochs": 0.0}},
    "lr0.01-nodc": {"train": {"lr": 0.01, "warmup_epochs": 0.0}, "spec": {"drop_connect": 0.0}},
    "lr0.005": {"train": {"lr": 0.005, "warmup_epochs": 0.0}},
    "no-label-smoothing": {"train": {"label_smoothing": 0.0}},
    "bn-momentum-0.01": {"spec": {"bn_momentum": 0.01}},
}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--train-samples", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    ds = load_dataset("fashion-mnist")
    data = proxy_data(ds, resolution=args.resolution, train_samples=args.train_samples,
                      val_samples=2000, seed=0)
    base = get_model("efficientnet-b0").with_task(in_channels=1, num_classes=10,
                                                  resolution=args.resolution)
    for name in args.variants.split(","):
        change = VARIANTS[name]
        recipe = make_recipe("fast", base, batch_size=64, epochs=args.epochs)
        spec = recipe.spec.replace(**change.get("spec", {}))
        cfg = dataclasses.replace(recipe.train, threads=args.threads, **change.get("train", {}))
        model = build(spec, seed=0).to(memory_format=torch.channels_last)
        opt = OPTIMIZERS.get(cfg.optimizer)(param_groups(model, decay_batch_norm=False), cfg)
        t0 = time.perf_counter()
        res = fit(model, data.train_x, data.train_y, data.val_x, data.val_y, config=cfg, seed=0,
                  optimizer=opt)
        sys.stdout.write(f"{name:20s} val top-1 {res.accuracy:.4f}  train loss "
                         f"{res.epochs[-1].train_loss:.4f}  {time.perf_counter() - t0:.0f}s\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
