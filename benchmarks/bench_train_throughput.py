"""Training throughput (images/s) of our EfficientNet-B0 against torchvision's and timm's.

Every model is trained the same way: 3 x R x R inputs, 1000 classes, dropout 0.2 and
stochastic depth 0.2, cross-entropy, SGD (momentum 0.9), in train mode, with and without
channels_last. Models measured in one process are interleaved round by round (noise from other
work on the machine hits all of them alike); the number reported is each model's median over
rounds, and its ratio to our B0 under the same torch in the same process.

torchvision and timm are not importable beside the project's torch, so the script re-runs
itself (``--child``) in ``--peer-python`` (a venv with ``torch torchvision timm``) and measures
there our B0 too, so that every comparison is under one torch. A peer that cannot be imported
is skipped and the reason printed.

Run::

    python -m benchmarks.bench_train_throughput --peer-python /tmp/peer-venv/bin/python \\
        [--resolution 224] [--batch-size 32] [--steps 3] [--rounds 3] [--threads 2] \\
        [--json benchmarks/results/train_throughput.json]

Create the peer venv with::

    python3 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 timm
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_train_throughput")


def _ours(drop: float) -> Any:
    from space import build, get_model

    spec = get_model("efficientnet-b0").replace(dropout=drop, drop_connect=drop)
    return build(spec, seed=0)


def _torchvision(drop: float) -> Any:
    import torchvision

    return torchvision.models.efficientnet_b0(weights=None, dropout=drop,
                                              stochastic_depth_prob=drop)


def _timm(drop: float) -> Any:
    import timm

    return timm.create_model("efficientnet_b0", pretrained=False, drop_rate=drop,
                             drop_path_rate=drop)


# name -> constructor; the table the script measures.
MODELS: dict[str, Callable[[float], Any]] = {
    "efficientnas": _ours,
    "torchvision": _torchvision,
    "timm": _timm,
}


def measure(argv: argparse.Namespace, models: Sequence[str]) -> dict[str, Any]:
    """Throughput of ``models`` in this interpreter: {"torch": version, "rows": [...],
    "skipped": {name: reason}}."""
    import torch

    if argv.threads:
        torch.set_num_threads(argv.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    built: dict[tuple[str, bool], Any] = {}
    skipped: dict[str, str] = {}
    for name in models:
        try:
            MODELS[name](argv.drop)
        except Exception as e:  # ImportError, or a version without the constructor
            skipped[name] = f"{type(e).__name__}: {e}"
            continue
        for channels_last in (False, True):
            torch.manual_seed(0)
            m = MODELS[name](argv.drop).to(device).train()
            if channels_last:
                m = m.to(memory_format=torch.channels_last)
            opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
            built[(name, channels_last)] = (m, opt)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(argv.batch_size, 3, argv.resolution, argv.resolution, generator=g).to(device)
    y = torch.randint(0, 1000, (argv.batch_size,), generator=g).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def steps(key: tuple[str, bool], n: int) -> float:
        m, opt = built[key]
        xb = x.contiguous(memory_format=torch.channels_last) if key[1] else x
        t0 = time.perf_counter()
        for _ in range(n):
            loss = loss_fn(m(xb), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return n * argv.batch_size / (time.perf_counter() - t0)

    for key in built:
        steps(key, argv.warmup)
    rates: dict[tuple[str, bool], list[float]] = {key: [] for key in built}
    for r in range(argv.rounds):
        for key in built:
            rates[key].append(steps(key, argv.steps))
            log.info("round %d %s%s: %.1f img/s", r + 1, key[0],
                     " channels_last" if key[1] else "", rates[key][-1])
    rows = []
    for (name, channels_last), rs in rates.items():
        m = built[(name, channels_last)][0]
        rows.append({"model": name, "channels_last": channels_last,
                     "images_per_sec": statistics.median(rs), "rounds": rs,
                     "params": sum(p.numel() for p in m.parameters())})
    return {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
            "rows": rows, "skipped": skipped}


def _with_ratios(result: dict[str, Any]) -> dict[str, Any]:
    base = {r["channels_last"]: r["images_per_sec"] for r in result["rows"]
            if r["model"] == "efficientnas"}
    nchw = base.get(False)
    for r in result["rows"]:
        r["vs_ours_same_format"] = r["images_per_sec"] / base[r["channels_last"]] \
            if r["channels_last"] in base else None
        r["vs_ours_nchw"] = r["images_per_sec"] / nchw if nchw else None
    return result


def table(results: list[dict[str, Any]], argv: argparse.Namespace) -> str:
    lines = [f"B0 training step (forward + backward + SGD), batch {argv.batch_size}, "
             f"{argv.resolution}x{argv.resolution}, 1000 classes, drop {argv.drop}; median of "
             f"{argv.rounds} rounds x {argv.steps} steps",
             "",
             "| torch | model | channels_last | images/s | vs ours (same format) | vs ours NCHW "
             "| params |",
             "|---|---|---|---:|---:|---:|---:|"]
    for res in results:
        for r in res["rows"]:
            same, nchw = (f"{v:.2f}" if v is not None else "n/a"
                          for v in (r["vs_ours_same_format"], r["vs_ours_nchw"]))
            lines.append(f"| {res['torch']} ({res['device']}, {res['threads']} threads) | "
                         f"{r['model']} | {'yes' if r['channels_last'] else 'no'} | "
                         f"{r['images_per_sec']:.1f} | {same} | {nchw} | {r['params']:,} |")
    for res in results:
        for name, why in res["skipped"].items():
            lines.append(f"\nskipped {name} under torch {res['torch']}: {why}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per model first")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--drop", type=float, default=0.2, help="dropout and stochastic depth")
    p.add_argument("--peer-python", default="/tmp/peer-venv/bin/python",
                   help="interpreter with torchvision and timm (skipped if missing)")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    sys.path.insert(0, str(REPO))  # our package, also under the peer venv's torch
    if args.child:
        json.dump(measure(args, list(MODELS)), sys.stdout)
        return 0
    load_start = os.getloadavg()
    results = [_with_ratios(measure(args, list(MODELS)))]
    found = shutil.which(args.peer_python)
    peer = Path(found).resolve() if found else None
    if peer is not None and peer == Path(sys.executable).resolve():
        log.info("the peer interpreter is this one: torchvision and timm were measured above "
                 "if they import here")
    elif peer is not None:
        forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--child"]
        proc = subprocess.run([str(peer), str(Path(__file__).resolve()), "--child", *forwarded],
                              stdout=subprocess.PIPE, text=True, cwd=str(REPO))
        if proc.returncode == 0:
            results.append(_with_ratios(json.loads(proc.stdout)))
        else:
            log.warning("peer interpreter %s failed (exit %d); torchvision/timm not measured",
                        peer, proc.returncode)
    else:
        log.warning("no peer interpreter at %s: torchvision and timm are measured only if this "
                    "interpreter has them; create one as the module docstring says",
                    args.peer_python)
    text = table(results, args) + (
        "\n\nload average (1/5/15 min) at start {:.1f} / {:.1f} / {:.1f}, at end "
        "{:.1f} / {:.1f} / {:.1f} on {} cores".format(*load_start, *os.getloadavg(),
                                                     os.cpu_count()))
    sys.stdout.write(text + "\n")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
