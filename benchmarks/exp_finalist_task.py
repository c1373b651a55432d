"""Experiment (issue 23): which finalist task orders two close networks as the reference does?

The 24-px proxy's procedure picks mnasnet-10 where the stable reference's best is mnasnet-22
(BENCHMARKS_fidelity.md). This trains named networks of the fidelity set with the engine's
finalist seeds on variants of stage 1's default proxy task (other epochs, images or resolution),
through bench_fidelity's cache (a training the benchmark already holds is read, not repeated),
and prints, per task, each network's accuracy and reward over its seeds beside the reference's::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/exp_finalist_task.py --part train \\
        --archs mnasnet-22,mnasnet-10 --tasks 4x12000@24,8x12000@24
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/exp_finalist_task.py --part report \\
        --archs mnasnet-22,mnasnet-10 --tasks 2x12000@24,4x12000@24,8x12000@24

A task is EPOCHSxIMAGES@PX (IMAGES ``all``: the whole training split). Results:
BENCHMARKS_fidelity.md, "Longer finalists".
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_fidelity as bf  # noqa: E402

from nas.proxy import ProxyConfig  # noqa: E402
from space.stats import mean_std  # noqa: E402


def parse_task(text: str) -> tuple[int, int | None, int]:
    """'8x12000@24' -> (8, 12000, 24); 'allx' images -> None (the whole split)."""
    try:
        epochs, _, rest = text.partition("x")
        images, _, px = rest.partition("@")
        task = (int(epochs), None if images == "all" else int(images), int(px))
    except ValueError:
        task = (0, 0, 0)
    if task[0] < 1 or (task[1] is not None and task[1] < 1) or task[2] < 1:
        raise argparse.ArgumentTypeError(f"a task is EPOCHSxIMAGES@PX with positive numbers "
                                         f"(IMAGES may be 'all'), got {text!r}; pass e.g. "
                                         f"8x12000@24")
    return task


def proxy_of(default: ProxyConfig, task: tuple[int, int | None, int]) -> ProxyConfig:
    epochs, images, px = task
    return replace(default, resolution=px, train_samples=images,
                   train=replace(default.train, epochs=epochs))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("train", "report"), default="report")
    p.add_argument("--archs", required=True, help="names of the fidelity set, comma-separated")
    p.add_argument("--tasks", required=True, help="EPOCHSxIMAGES@PX, comma-separated")
    p.add_argument("--seeds", type=int, default=3, help="finalist seed indices 0..N-1")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    try:
        tasks = [parse_task(t) for t in a.tasks.split(",")]
    except argparse.ArgumentTypeError as e:
        p.error(f"--tasks: {e}")
    fid = bf.parser().parse_args(["--threads", str(a.threads)])  # the benchmark's defaults
    plan, cache = bf.stage1_plan(fid), bf.Cache(Path(fid.cache))
    index = {arch.name: i for i, arch in enumerate(plan.archs)}
    names = a.archs.split(",")
    unknown = [n for n in names if n not in index]
    if unknown:
        p.error(f"--archs: {', '.join(unknown)} not in the fidelity set ({', '.join(index)})")
    print("| task | network | accuracy per seed | mean accuracy (std) | mean reward | "
          "reference mean reward |\n|---|---|---|---|---:|---:|")
    for task in tasks:
        proxy = proxy_of(plan.default, task)
        for n in names:
            i = index[n]
            recs = []
            for s in range(a.seeds):
                seed = plan.finalist_seed(i, s)
                rec = (cache.train(plan.archs[i], proxy, seed, what=f"finalist task {task}")
                       if a.part == "train" else cache.get(plan.archs[i], proxy, seed))
                recs.append(rec)
            ref = [cache.get(plan.archs[i], plan.reference, s) for s in plan.ref_seeds]
            ref_r = [plan.reward(i, r["accuracy"]) for r in ref if r is not None]
            accs = [r["accuracy"] for r in recs if r is not None]
            m, sd = mean_std(accs)
            rew = mean_std([plan.reward(i, x) for x in accs])[0]
            label = f"{task[0]} ep x {task[1] or 'all'} at {task[2]} px"
            print(f"| {label} | {n} | {', '.join(f'{x:.4f}' for x in accs) or '-'} | "
                  f"{m:.4f} ({sd:.4f}) | {rew:.4f} | {mean_std(ref_r)[0]:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
