"""``nas bench MODEL [--runtime torch|onnxruntime] [--threads N] [--batch B]``: end-to-end latency.

Builds MODEL (zoo name, spec file or run folder), runs it ``--warmup`` times untimed, then times
``--repeats`` single forward passes and reports their median and interquartile range (ms) and
the throughput at the median (images per second).
"""
from __future__ import annotations

import argparse
import json
import sys

from .latency_table import add_timing_arguments
from .show import add_task_arguments, load_model

NAME = "bench"
HELP = "measure one model's end-to-end latency on this machine (median, IQR, throughput)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="zoo name (see `nas list`), spec .json file, or run folder")
    add_task_arguments(p)
    add_timing_arguments(p, repeats=30, warmup=5)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from nas.latency import bench_spec, device_info

    if args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    spec = load_model(args)
    device = device_info(device=args.device, threads=args.threads, batch=args.batch,
                         runtime=args.runtime, clock=args.clock)
    t = bench_spec(spec, threads=args.threads, batch=args.batch, runtime=args.runtime,
                   warmup=args.warmup, repeats=args.repeats, clock=args.clock)
    info = {"model": spec.name, "resolution": spec.resolution, **t.to_dict(), "device": device}
    if args.json:
        print(json.dumps(info))
    else:
        print(f"{spec.name} at {spec.resolution}px, batch {args.batch}, {args.threads} "
              f"thread(s), {args.runtime}: median {t.median_ms:.3f} ms, IQR {t.iqr_ms:.3f} ms, "
              f"{t.throughput:.1f} images/s ({t.samples_ms.__len__()} runs)", file=sys.stdout)
    return 0
