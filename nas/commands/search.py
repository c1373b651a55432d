"""``nas search``: stage 1 from the command line."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields, replace
from typing import Any

NAME = "search"
HELP = "stage 1: search a MnasNet-style space for a base network (B0) under a MACs target"

log = logging.getLogger(__name__)

S = argparse.SUPPRESS  # absent flags stay absent, so --resume can tell what was given


def add_proxy_arguments(p: argparse.ArgumentParser, base: Any = None) -> None:
    """Evaluator, dataset and training flags, shared by ``nas search`` and ``gridsearch``;
    ``base`` is the command's default ProxyConfig (the defaults the help states)."""
    base = base if base is not None else default_proxy()
    t = base.train
    g = p.add_argument_group("proxy task (how candidates are trained and scored)")
    g.add_argument("--dataset", default=S, help=f"fashion-mnist, cifar10, folder:PATH, "
                   f"synthetic (default {base.dataset})")
    g.add_argument("--data-dir", default=S, help="folder holding the dataset files "
                   "(fashion-mnist default: /usr/share/datasets/fashion-mnist)")
    g.add_argument("--epochs", type=int, default=S,
                   help=f"proxy training epochs (default {t.epochs})")
    g.add_argument("--train-samples", type=int, default=S, help=f"training images per trial, "
                   f"drawn from the training split (default {base.train_samples})")
    g.add_argument("--val-samples", type=int, default=S, help=f"validation images held out from "
                   f"the training split (default {base.val_samples})")
    g.add_argument("--proxy-resolution", type=int, default=S,
                   help=f"input size the proxy task trains at (default {base.resolution})")
    g.add_argument("--batch-size", type=int, default=S,
                   help=f"training batch size (default {t.batch_size})")
    g.add_argument("--lr", type=float, default=S, help=f"peak learning rate (default {t.lr:g})")
    g.add_argument("--warmup-epochs", type=float, default=S, help=f"linear warm-up from 0 to "
                   f"--lr over this many epochs (default {t.warmup_epochs:g})")
    g.add_argument("--optimizer", default=S, help="sgd (default), rmsprop, adamw")
    g.add_argument("--schedule", default=S, help="cosine (default), constant, exponential")
    g.add_argument("--threads", type=int, default=S,
                   help="torch threads per trial (default: all cores)")
    g.add_argument("--seed", type=int, default=S, help="seed for sampling, splits and training "
                   "(default 0)")
    g.add_argument("--out", default=S, help="run folder (default runs/<timestamp>)")
    g.add_argument("--resume", action="store_true", default=S,
                   help="continue the run in --out (or the newest under runs/)")
    g.add_argument("--storage", default=S, help="Optuna storage URL (default: a JournalStorage "
                   "file in the run folder), e.g. postgresql://user@host/db")


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    """Where trials run (``nas.backends``), shared by ``nas search`` and ``gridsearch``. All of
    them may change on --resume: they change where trials run, never what they compute."""
    g = p.add_argument_group("backend (where trials run)")
    g.add_argument("--backend", default=S, help="local (default: in this process, one trial at "
                   "a time) or ray (Ray Tune trials on this machine or a Ray cluster)")
    g.add_argument("--address", default=S, help="Ray cluster to run on, e.g. 10.0.0.5:6379 "
                   "(default: $RAY_ADDRESS, else start Ray on this machine); needs --backend ray")
    g.add_argument("--workers", type=int, default=S, help="trials run at once (ray default: as "
                   "many as the cluster's CPUs allow at --cpus-per-trial each)")
    g.add_argument("--cpus-per-trial", type=float, default=S,
                   help="CPUs Ray reserves for each trial; torch threads follow them unless "
                   "--threads is given (default 1)")
    g.add_argument("--gpus-per-trial", type=float, default=S,
                   help="GPUs Ray reserves for each trial; with one the trial trains on it "
                   "(default 0)")
    g.add_argument("--max-retries", type=int, default=S, help="times a trial whose worker died "
                   "is started again before it counts as failed (default 2)")


BACKEND_KEYS = {"backend": "name", "address": "address", "workers": "workers",
                "cpus_per_trial": "cpus_per_trial", "gpus_per_trial": "gpus_per_trial",
                "max_retries": "max_retries"}


def backend_from_args(given: dict[str, Any], saved: dict[str, Any] | None = None) -> Any:
    """Pop the backend flags from ``given`` and apply them to ``saved`` (a resumed run's) or to
    the defaults."""
    from nas.backends import BackendConfig

    changes = {v: given.pop(k) for k, v in BACKEND_KEYS.items() if k in given}
    base = {**(saved or {}), **changes}
    if changes.get("name") == "local":  # moving a run back to local drops the Ray settings
        base = {k: v for k, v in base.items() if k in changes or k == "max_retries"}
    return BackendConfig.from_dict(base)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target-flops", "--target-macs", dest="target_flops", default=S,
                   help="MACs target T (the paper's FLOPS): 400M, 0.4G, 4e8 or 400000000")
    p.add_argument("--space", default=S, help="mnasnet (default), efficientnet, or a YAML/JSON "
                   "space file")
    p.add_argument("--trials", type=int, default=S, help="total trials in the study (default 60)")
    p.add_argument("--timeout", type=float, default=S,
                   help="stop starting trials after S seconds (default 780; 0 = no limit)")
    p.add_argument("--sampler", default=S, help="tpe (default), random, nsga2 (accuracy/MACs "
                   "Pareto front), evolution (regularized evolution)")
    p.add_argument("--constraint", default=S, help="soft (a=b=-0.07, default) or hard (a=0, b=-1)")
    p.add_argument("--w-a", dest="a", type=float, default=S, help="exponent a when MACs <= T")
    p.add_argument("--w-b", dest="b", type=float, default=S, help="exponent b when MACs > T")
    p.add_argument("--pruner", default=S, help="hyperband (default), median, none")
    p.add_argument("--enqueue", default=S, help="comma-separated zoo models or spec files to "
                   "evaluate first (members of the space only), e.g. efficientnet-b0,mnasnet-a1")
    p.add_argument("--deploy-resolution", type=int, default=S,
                   help="resolution MACs are counted at (default 224)")
    add_proxy_arguments(p)
    add_backend_arguments(p)


PROXY_KEYS = {"dataset": "dataset", "data_dir": "data_dir", "train_samples": "train_samples",
              "val_samples": "val_samples", "proxy_resolution": "resolution"}
TRAIN_KEYS = {"epochs": "epochs", "batch_size": "batch_size", "lr": "lr",
              "warmup_epochs": "warmup_epochs", "optimizer": "optimizer", "schedule": "schedule",
              "threads": "threads"}


def proxy_from_args(given: dict[str, Any], base: Any) -> Any:
    """Apply the proxy flags in ``given`` to a ProxyConfig."""
    train = replace(base.train, **{v: given[k] for k, v in TRAIN_KEYS.items() if k in given})
    return replace(base, train=train, **{v: given[k] for k, v in PROXY_KEYS.items() if k in given})


def default_proxy() -> Any:
    from nas.evaluate import ProxyConfig

    return ProxyConfig()  # stage 1's defaults, chosen by measurement (BENCHMARKS.md)


def run(args: argparse.Namespace) -> int:
    from nas.objective import parse_macs
    from nas.runs import latest_run_dir, load_config
    from nas.search import Deployment, SearchConfig, run_search

    given = {k: v for k, v in vars(args).items() if not k.startswith("_") and
             k not in ("command", "verbose")}
    resume = bool(given.pop("resume", False))
    out = given.pop("out", None)
    storage = given.pop("storage", None)
    if resume:
        from pathlib import Path

        run_dir = Path(out) if out else latest_run_dir()
        saved = load_config(run_dir)
        backend = backend_from_args(given, saved.get("backend"))
        config = SearchConfig.from_dict(saved)
        _check_same(config, given)
        changes = {k: given[k] for k in ("trials", "timeout") if k in given}
        if "timeout" in changes and changes["timeout"] == 0:
            changes["timeout"] = None
        config = replace(config, **changes)
        out = str(run_dir)
    else:
        backend = backend_from_args(given)
        if "target_flops" not in given:
            raise ValueError("--target-flops is required, e.g. nas search --target-flops 400M")
        kw: dict[str, Any] = {"target_macs": parse_macs(given["target_flops"])}
        for k in ("space", "trials", "timeout", "sampler", "constraint", "a", "b", "seed",
                  "pruner"):
            if k in given:
                kw[k] = given[k]
        if kw.get("timeout") == 0:
            kw["timeout"] = None
        if "enqueue" in given:
            kw["enqueue"] = tuple(x.strip() for x in given["enqueue"].split(",") if x.strip())
        if "deploy_resolution" in given:
            kw["deploy"] = Deployment(resolution=given["deploy_resolution"])
        kw["proxy"] = proxy_from_args(given, default_proxy())
        config = SearchConfig(**kw)
    result = run_search(config, out=out, resume=resume, storage=storage, backend=backend)
    _report(result)
    return 130 if result.interrupted else 0


def _check_same(config: Any, given: dict[str, Any]) -> None:
    """On --resume, flags that would change the run's meaning must match it."""
    from nas.objective import parse_macs

    current: dict[str, Any] = {f.name: getattr(config, f.name) for f in fields(config)}
    current.update({k: getattr(config.proxy, v) for k, v in PROXY_KEYS.items()})
    current.update({k: getattr(config.proxy.train, v) for k, v in TRAIN_KEYS.items()})
    if "target_flops" in given:
        given = {**given, "target_macs": parse_macs(given["target_flops"])}
        given.pop("target_flops")
    for k, v in given.items():
        if k in ("trials", "timeout"):
            continue
        have = current.get(k)
        if k == "enqueue" or k == "deploy_resolution":
            continue
        if have != v:
            flag = "--" + k.replace("_", "-")
            raise ValueError(f"{flag} {v!r} differs from the resumed run's {have!r}; a resumed run "
                             f"keeps its settings: drop {flag} or start a new run with --out")


def _report(result: Any) -> None:
    s = result.summary
    out = sys.stdout
    print(f"run folder: {result.run_dir}", file=out)
    print(f"trials: {s['trials']} {json.dumps(s['states'])}", file=out)
    if s["best"]:
        b = s["best"]
        print(f"best: trial {b['trial']}  reward {b['reward']:.4f}  accuracy {b['accuracy']:.4f}  "
              f"MACs {b['macs'] / 1e6:.1f}M  params {b['params'] / 1e6:.2f}M", file=out)
        print(f"spec: {result.run_dir / 'best.json'}  (nas show {result.run_dir}/best.json)",
              file=out)
    else:
        print("no trial finished; nothing to emit", file=out)
