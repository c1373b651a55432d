"""Supernet costs (issue 24): one training epoch, and candidates scored per second.

On Fashion-MNIST at 32 px (6,000 training images, a 2,000-image validation split held out of
the training set, as the proxy evaluator's defaults), on ``--threads`` torch threads:

1. **training**: ``--steps`` sandwich steps of :func:`nas.supernet.train_supernet` (largest,
   smallest and ``--n-random`` members per step, batch 64, channels_last); one epoch's time is
   the mean step time x the epoch's steps (``--steps 0``: the whole epoch, measured);
2. **scoring**: ``--candidates`` random members scored by :func:`nas.supernet.score_candidate`
   (recalibrate batch norm on ``--calib-batches`` x ``--calib-batch-size`` training images, then
   validation accuracy on 2,000), split into calibration and evaluation time.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_supernet --space mnasnet

The defaults run in about 1.5 minutes on one thread. With the defaults the accuracies it prints
mean nothing (a few steps of training); ``--steps 0`` trains the whole epoch first (about 2
more minutes), which is how BENCHMARKS_supernet.md's one-epoch table was made (``--rule``,
``--no-zero-init`` for its other rows; its random members were drawn by another seed). Wall and CPU (process) time are both reported: on a shared
machine the wall time grows with the load, the CPU time much less.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="mnasnet", help="shipped space or a space file")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--train-samples", type=int, default=6000)
    p.add_argument("--val-samples", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-random", type=int, default=2)
    p.add_argument("--rule", default="extremes", help="sandwich rule (nas.supernet.SANDWICH_RULES)")
    p.add_argument("--no-zero-init", action="store_true", help="zero_init_last=False")
    p.add_argument("--steps", type=int, default=8, help="training steps timed (0: a full epoch)")
    p.add_argument("--candidates", type=int, default=8)
    p.add_argument("--calib-batches", type=int, default=4)
    p.add_argument("--calib-batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write the numbers here")
    a = p.parse_args(argv)

    import torch

    from nas.data import TensorSplit, load_dataset, proxy_data
    from nas.supernet import (SuperNet, calibration_batches, recalibrate_bn, score_candidate,
                              train_supernet)
    from nas.train import TrainConfig, evaluate
    from space import count
    from space.search_space import load_space

    torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset)
    data = proxy_data(ds, resolution=a.resolution, train_samples=a.train_samples,
                      val_samples=a.val_samples, seed=0)
    train, val = TensorSplit(data.train_x, data.train_y), TensorSplit(data.val_x, data.val_y)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    net = SuperNet(load_space(a.space), in_channels=data.in_channels,
                   num_classes=data.num_classes, bn_momentum=0.1,
                   zero_init_last=not a.no_zero_init)
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in net.parameters())
    macs = {k: count(s.replace(resolution=a.resolution), a.resolution).macs
            for k, s in (("largest", net.largest()), ("smallest", net.smallest()))}
    steps_per_epoch = math.ceil(len(train) / a.batch_size)
    config = TrainConfig(epochs=1, batch_size=a.batch_size, lr=0.02, warmup_epochs=0.2,
                         threads=a.threads)
    steps = steps_per_epoch if a.steps == 0 else min(a.steps, steps_per_epoch)
    times: list[float] = []
    cpu: list[float] = []
    last = [time.perf_counter(), time.process_time()]

    def tick(_):
        now = (time.perf_counter(), time.process_time())
        times.append(now[0] - last[0])
        cpu.append(now[1] - last[1])
        last[:] = now

    train_supernet(net, train, config=config, seed=0, n_random=a.n_random, rule=a.rule,
                   stop_after=steps, on_step=tick)
    step_s = statistics.mean(times[1:] or times)  # the first step pays for allocation
    step_cpu = statistics.mean(cpu[1:] or cpu)
    epoch_s = sum(times) if steps == steps_per_epoch else step_s * steps_per_epoch
    epoch_cpu = sum(cpu) if steps == steps_per_epoch else step_cpu * steps_per_epoch

    calib = calibration_batches(train, num_batches=a.calib_batches,
                                batch_size=a.calib_batch_size, seed=0)
    rng = random.Random(0)
    members = [net.sample(rng) for _ in range(a.candidates)]
    score_candidate(net, members[0], calib_batches=calib, val_split=val)  # warm-up
    calib_s, eval_s, total_s, total_cpu, accs = [], [], [], [], []
    for spec in members:
        t, c = time.perf_counter(), time.process_time()
        accs.append(score_candidate(net, spec, calib_batches=calib, val_split=val))
        total_s.append(time.perf_counter() - t)
        total_cpu.append(time.process_time() - c)
        t = time.perf_counter()
        recalibrate_bn(net, calib)
        calib_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        evaluate(net, val, batch_size=100, channels_last=True)
        eval_s.append(time.perf_counter() - t)
    ends = [score_candidate(net, s, calib_batches=calib, val_split=val)
            for s in (net.largest(), net.smallest())]
    per_candidate = statistics.mean(total_s)
    per_candidate_cpu = statistics.mean(total_cpu)
    row = {
        "space": a.space, "threads": a.threads, "resolution": a.resolution,
        "train_images": len(train), "val_images": len(val), "batch_size": a.batch_size,
        "n_random": a.n_random, "supernet_params": n_params, "supernet_build_s": build_s,
        "largest_macs": macs["largest"], "smallest_macs": macs["smallest"],
        "steps_timed": len(times), "step_s": step_s, "steps_per_epoch": steps_per_epoch,
        "epoch_s": epoch_s, "epoch_extrapolated": steps != steps_per_epoch,
        "step_cpu_s": step_cpu, "epoch_cpu_s": epoch_cpu,
        "score_cpu_s_per_candidate": per_candidate_cpu,
        "calib_images": a.calib_batches * a.calib_batch_size, "candidates": len(members),
        "score_s_per_candidate": per_candidate, "candidates_per_s": 1 / per_candidate,
        "calib_s_per_candidate": statistics.mean(calib_s),
        "eval_s_per_candidate": statistics.mean(eval_s),
        "score_s_min": min(total_s), "score_s_max": max(total_s),
        "rule": a.rule, "zero_init_last": not a.no_zero_init,
        "accuracy_largest": ends[0], "accuracy_smallest": ends[1], "accuracy_random": accs,
    }
    print(f"supernet over {a.space}: {n_params / 1e6:.1f}M parameters, built in {build_s:.2f} s; "
          f"members from {macs['smallest'] / 1e6:.1f}M to {macs['largest'] / 1e6:.1f}M MACs at "
          f"{a.resolution} px")
    print(f"training: {step_s:.2f} s per step ({2 + a.n_random} members, batch {a.batch_size}, "
          f"mean of {len(times)}), one epoch of {len(train)} images = {steps_per_epoch} steps "
          f"{'~' if row['epoch_extrapolated'] else ''}{epoch_s:.0f} s (CPU time {step_cpu:.2f} s "
          f"per step, {epoch_cpu:.0f} s per epoch)")
    print(f"scoring: {per_candidate:.2f} s per candidate ({1 / per_candidate:.2f} candidates/s; "
          f"min {min(total_s):.2f}, max {max(total_s):.2f}): calibration on "
          f"{row['calib_images']} images {row['calib_s_per_candidate']:.2f} s, evaluation on "
          f"{len(val)} images {row['eval_s_per_candidate']:.2f} s; CPU time "
          f"{per_candidate_cpu:.2f} s per candidate ({1 / per_candidate_cpu:.2f}/s)")
    print(f"accuracy after {len(times)} steps: largest {ends[0]:.3f}, smallest {ends[1]:.3f}, "
          f"random {', '.join(f'{x:.3f}' for x in accs)}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(row, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
