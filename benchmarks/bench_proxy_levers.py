"""Proxy training speed of EfficientNet-B0 at 32 px, one speed lever at a time, against eager.

Each variant trains B0 (retargeted: the dataset's channels and classes, 32 px, batch-norm
momentum 0.1 as the proxy does) with :func:`nas.train.fit` on the on-device data path, for
``--epochs`` epochs of ``--train-samples`` images; the figure is the images/s of the last epoch
(the first ones pay for warm-up and compilation), the median over ``--rounds`` rounds taken in
turn (variant A, B, C, A, B, C, ...), so a shared machine's load hits all variants alike.
Ratios are against ``eager`` (fp32, NCHW, batch 64) of the same run.

    .venv/bin/python -m benchmarks.bench_proxy_levers --device cpu --threads 1 \\
        --train-samples 1024 --rounds 3 --variants eager,channels_last,bf16,compile

Variants: eager, channels_last, bf16, compile, cudagraphs (compile mode reduce-overhead),
b256/b1024 (batch with the lr scaled linearly), best (channels_last + bf16 + b1024 +
cudagraphs) and best-eager (the same without compile).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time

import torch

VARIANTS = {  # name -> TrainConfig changes against eager
    "eager": {},
    "channels_last": {"channels_last": True},
    "bf16": {"precision": "bf16"},
    "compile": {"compile": "default"},
    "cudagraphs": {"compile": "reduce-overhead"},
    "b256": {"batch_size": 256},
    "b1024": {"batch_size": 1024},
    "best-eager": {"channels_last": True, "precision": "bf16", "batch_size": 1024},
    "best": {"channels_last": True, "precision": "bf16", "batch_size": 1024,
             "compile": "reduce-overhead"},
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", default=None, help="folder of the dataset's files")
    p.add_argument("--train-samples", type=int, default=8192)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--json", default=None, help="write the rows here")
    a = p.parse_args(argv)

    from nas.data import device_splits, load_dataset, proxy_data
    from nas.train import TrainConfig, fit
    from nas.train.device import resolve_device
    from nas.train.recipes import scaled_lr
    from space import build, get_model

    device = resolve_device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset, data_dir=a.data_dir)
    data = proxy_data(ds, resolution=32, train_samples=a.train_samples, val_samples=1000,
                      seed=0)
    train, val = device_splits(ds, data, device=device)
    spec = get_model("efficientnet-b0").with_task(
        in_channels=ds.in_channels, num_classes=ds.num_classes, resolution=32).replace(
        bn_momentum=0.1)
    base = TrainConfig(epochs=a.epochs, batch_size=64, lr=0.02, warmup_epochs=0.2,
                       channels_last=False, threads=a.threads)
    names = [v.strip() for v in a.variants.split(",") if v.strip()]
    speeds: dict[str, list[float]] = {n: [] for n in names}
    accs: dict[str, list[float]] = {n: [] for n in names}
    for r in range(a.rounds):
        for name in names:
            change = dict(VARIANTS[name])
            if "batch_size" in change:
                change["lr"] = scaled_lr(base.lr, batch_size=change["batch_size"],
                                         base_batch=base.batch_size)
            cfg = dataclasses.replace(base, **change)
            torch._dynamo.reset()  # each compiled variant pays its own compilation
            model = build(spec, seed=0).to(device)
            t0 = time.perf_counter()
            res = fit(model, train, None, val, None, config=cfg, seed=0)
            speeds[name].append(res.epochs[-1].images_per_sec)
            accs[name].append(res.epochs[-1].val_accuracy)
            print(f"round {r + 1} {name}: {res.epochs[-1].images_per_sec:.0f} img/s "
                  f"(last epoch), val acc {res.epochs[-1].val_accuracy:.3f}, "
                  f"{time.perf_counter() - t0:.1f} s in all", file=sys.stderr, flush=True)
    ref = statistics.median(speeds[names[0]])
    rows = [{"variant": n, "images_per_sec": statistics.median(speeds[n]),
             "vs_" + names[0]: statistics.median(speeds[n]) / ref, "rounds": speeds[n],
             "val_accuracy": accs[n]} for n in names]
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {device} ({gpu}), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, "
          f"{a.train_samples} images x {a.epochs} epochs, median of {a.rounds} rounds")
    print(f"| variant | images/s | vs {names[0]} | rounds |")
    print("|---|---:|---:|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['images_per_sec']:.0f} | "
              f"{row['vs_' + names[0]]:.2f} | {' '.join(f'{s:.0f}' for s in row['rounds'])} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": str(device), "torch": torch.__version__, "rows": rows}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
