"""One-epoch accuracy of B0 under the ``fast`` recipe with one setting changed at a time.

This is how the ``fast`` recipe's learning rate and warm-up were chosen (BENCHMARKS_train.md).

    .venv/bin/python -m benchmarks.bench_recipe_variants [--train-samples 20000] [--epochs 1]
        [--variants fast,lr0.05,lr0.02,...] [--threads 1]

Prints one line per variant: validation top-1 on 2,000 held-out Fashion-MNIST images of the
raw and the EMA weights, the mean training loss of the last epoch, seconds. ``paper`` is the
paper recipe itself (for the same epochs).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Any, Sequence

import torch

from nas.data import load_dataset, proxy_data
from nas.train import OPTIMIZERS, ModelEma, evaluate, fit, make_recipe, param_groups
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
    "rmsprop-tf": {"train": {"optimizer": "rmsprop_tf", "lr": 0.004, "weight_decay": 1e-5,
                             "extra": {"rmsprop_eps": 1e-3}}},
    "paper": {"recipe": {"name": "paper"}},
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
        recipe = make_recipe(change.get("recipe", {}).get("name", "fast"), base, batch_size=64,
                             epochs=args.epochs)
        spec = recipe.spec.replace(**change.get("spec", {}))
        cfg = dataclasses.replace(recipe.train, threads=args.threads, **change.get("train", {}))
        torch.manual_seed(0)  # dropout and drop-connect draw from the global stream
        model = build(spec, seed=0).to(memory_format=torch.channels_last)
        opt = OPTIMIZERS.get(cfg.optimizer)(param_groups(model, decay_batch_norm=False), cfg)
        ema = ModelEma(model, decay=recipe.ema_decay) if recipe.ema_decay else None
        t0 = time.perf_counter()
        res = fit(model, data.train_x, data.train_y, data.val_x, data.val_y, config=cfg, seed=0,
                  optimizer=opt, on_step=ema.update if ema is not None else None)
        ema_top1 = evaluate(ema.module, data.val_x, data.val_y)[0] if ema is not None else None
        sys.stdout.write(f"{name:20s} val top-1 {res.accuracy:.4f}  EMA {ema_top1 or 0:.4f}  "
                         f"train loss {res.epochs[-1].train_loss:.4f}  "
                         f"{time.perf_counter() - t0:.0f}s\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
