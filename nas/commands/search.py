"""``nas search``: stage 1 from the command line."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import (GROUP_LADDER, GROUP_LATENCY, GROUP_SEARCH, GROUP_TARGET, LATENCY_FLAGS,
                     PROXY_FLAGS, REDUCTION_FACTOR_FLAG, RUNGS_FLAG, S, Flag,
                     add_backend_arguments, add_latency_arguments, add_proxy_arguments,
                     add_reduction_factor_argument, add_run_arguments, default_of, exit_code,
                     latency_line, request_from_args, rungs_set_epochs, zero_is_none)
from .config_file import RunConfig, add_config_argument, read_config_file
from .supernet_flags import SUPERNET_FLAGS, add_supernet_arguments  # issue 24

NAME = "search"
HELP = ("stage 1: search a MnasNet-style space for a base network (B0) under a MACs or "
        "latency target")


def _macs(v: Any) -> int:
    from space.objective import parse_macs

    return parse_macs(v)


def _latency(v: Any) -> float:
    from space.objective import parse_latency

    return parse_latency(v)


def _names(v: Any) -> tuple[str, ...]:
    """A comma-separated list (--objectives, --enqueue), blanks dropped."""
    return tuple(x.strip() for x in str(v).split(",") if x.strip())


# flag -> where it lands in SearchConfig; trials, timeout and budget may change on --resume
FLAGS: tuple[Flag, ...] = (
    Flag("target_flops", "target_macs", _macs, option="--target-flops"),
    Flag("target_latency", "target_latency_ms", _latency),
    Flag("latency_table", "latency_table", str), Flag("objectives", "objectives", _names),
    *LATENCY_FLAGS,
    Flag("space", "space"), Flag("sampler", "sampler"), Flag("constraint", "constraint"),
    Flag("a", "a", option="--w-a"), Flag("b", "b", option="--w-b"),
    Flag("pruner", "pruner"), Flag("enqueue", "enqueue", _names),
    Flag("deploy_resolution", "deploy.resolution"),
    Flag("deploy_channels", "deploy.in_channels"), Flag("deploy_classes", "deploy.num_classes"),
    Flag("finalists", "finalists"), Flag("finalist_seeds", "finalist_seeds"),
    Flag("finalist_epochs", "finalist_epochs"),
    Flag("trials", "trials", on_resume=True),
    Flag("timeout", "timeout", zero_is_none, on_resume=True),
    Flag("budget", "budget", zero_is_none, on_resume=True),
    *PROXY_FLAGS,
    RUNGS_FLAG,  # after --epochs: the top rung must equal it
    REDUCTION_FACTOR_FLAG,
    *SUPERNET_FLAGS,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag in a named group (:mod:`nas.commands.common`'s titles, shared with
    ``gridsearch``)."""
    from nas.engine.registries import PRUNERS, SAMPLERS
    from nas.proxy import ProxyConfig
    from nas.stage1.config import SearchConfig
    from space.deploy import Deployment
    from space.objective import CONSTRAINTS

    def d(name: str) -> Any:
        return default_of(SearchConfig, name)

    g = p.add_argument_group(GROUP_TARGET, "what B0 must meet, and how a candidate is scored "
                             "against it")
    g.add_argument("--target-flops", "--target-macs", dest="target_flops", default=S,
                   help="MACs target T (the paper's FLOPS): 400M, 0.4G, 4e8 or 400000000")
    g.add_argument("--target-latency", default=S, help="or a latency target T on this device "
                   "(MnasNet's): 20ms, 1500us or 0.02s; latency is predicted from a latency "
                   "table (see --latency-table) and B0 and the finalists are timed end to end")
    g.add_argument("--constraint", default=S, choices=CONSTRAINTS.names(), help=", ".join(
        f"{n} (a={CONSTRAINTS.get(n)[0]:g}, b={CONSTRAINTS.get(n)[1]:g}, reward falls below "
        f"{CONSTRAINTS.get(n)[2]:g}T)" if CONSTRAINTS.get(n)[2] else
        f"{n} (a={CONSTRAINTS.get(n)[0]:g}, b={CONSTRAINTS.get(n)[1]:g})" for n in CONSTRAINTS)
        + f" (default {d('constraint')})")
    g.add_argument("--w-a", dest="a", type=float, default=S, help="exponent a when MACs <= T "
                   "(default: the --constraint's)")
    g.add_argument("--w-b", dest="b", type=float, default=S, help="exponent b when MACs > T "
                   "(default: the --constraint's)")
    g.add_argument("--objectives", default=S, help="a multi-objective sampler's objectives: "
                   "accuracy,macs or accuracy,latency (default: accuracy and the target's "
                   "metric; needs --sampler nsga2)")
    g.add_argument("--deploy-resolution", type=int, default=S, help=f"resolution MACs are "
                   f"counted at, whatever the dataset (default "
                   f"{default_of(Deployment, 'resolution')})")
    g.add_argument("--deploy-channels", type=int, default=S, help=f"input channels MACs are "
                   f"counted with (default {default_of(Deployment, 'in_channels')})")
    g.add_argument("--deploy-classes", type=int, default=S, help=f"classes MACs are counted "
                   f"with (default {default_of(Deployment, 'num_classes')})")
    g = p.add_argument_group(GROUP_SEARCH, "the space, the sampler and the budget")
    g.add_argument("--space", default=S, help=f"mnasnet, efficientnet, or a YAML/JSON space file "
                   f"(default {d('space')})")
    g.add_argument("--trials", type=int, default=S,
                   help=f"total trials in the study (default {d('trials')})")
    g.add_argument("--timeout", type=float, default=S, help=f"stop starting trials after S "
                   f"seconds (default {d('timeout'):g}; 0 = no limit)")
    g.add_argument("--budget", type=float, default=S, help=f"the run's wall time in seconds, "
                   f"search and finalists together: the search starts no trial that would "
                   f"leave the finalists less than their time, measured on the search's own "
                   f"trainings (default {d('budget'):g}; 0 = none; like --timeout, it counts "
                   f"from the search's start in this session)")
    g.add_argument("--sampler", default=S, choices=SAMPLERS.names(), help="; ".join(
        f"{n}: {SAMPLERS.get(n).help}" for n in SAMPLERS) + f" (default {d('sampler')})")
    g.add_argument("--pruner", default=S, choices=PRUNERS.names(), help="; ".join(
        f"{n}: {PRUNERS.get(n).help}" for n in PRUNERS) + f" (default {d('pruner')})")
    g.add_argument("--enqueue", default=S, help="comma-separated zoo models or spec files to "
                   "evaluate first (members of the space only), e.g. efficientnet-b0,mnasnet-a1")
    g = p.add_argument_group(GROUP_LADDER, "when trials are compared, and how B0 is chosen")
    g.add_argument("--rungs", default=S, help="the fidelity ladder: epochs after which trials "
                   "are compared and the worst stopped, e.g. 1,3,9 (the last is the training "
                   "length and sets --epochs; default 1,3,9,... up to --epochs; read by "
                   "--pruner asha, hyperband and median)")
    add_reduction_factor_argument(g, default=d("reduction_factor"),
                                  reads="read by --pruner asha and hyperband")
    g.add_argument("--finalists", type=int, default=S, help=f"after the search, retrain the "
                   f"top K distinct architectures with --finalist-seeds seeds; B0 is the best "
                   f"mean reward (default {d('finalists')}; 0 = B0 is the search's best)")
    g.add_argument("--finalist-seeds", type=int, default=S,
                   help=f"seeds per finalist (default {d('finalist_seeds')})")
    g.add_argument("--finalist-epochs", type=int, default=S, metavar="E",
                   help="epochs each finalist trains (default: --epochs, as the search "
                   "trains); more epochs bring the finalists' order closer to a long "
                   "training's, for that many epochs' time per run (BENCHMARKS_fidelity.md)")
    add_supernet_arguments(p)
    proxy = ProxyConfig()
    add_proxy_arguments(p, proxy, seed=d("seed"))
    g = p.add_argument_group(GROUP_LATENCY, "how latency is predicted and timed (with "
                             "--target-latency or --objectives accuracy,latency)")
    g.add_argument("--latency-table", default=S, metavar="FILE",
                   help="the table (nas latency-table -o FILE) to predict with; it must be for "
                   "this space, --deploy-resolution and device (default: the cached table for "
                   "this device, built first when there is none; with FILE, its own threads, "
                   "batch and runtime)")
    add_latency_arguments(g)
    add_backend_arguments(p, proxy.train)
    add_run_arguments(p, command="nas search")
    add_config_argument(p)


def _fresh(given: dict[str, Any], base: Any) -> Any:
    """The config the flags start from: ``base`` (a run's config.json given as --config) or
    the defaults. The target, the sampler and its objectives, and the latency settings are set
    together, since each decides whether the others are valid."""
    from dataclasses import replace

    from nas.latency import LatencySettings
    from nas.proxy import ProxyConfig
    from nas.stage1.config import SearchConfig

    timed = any(f.dest in given for f in LATENCY_FLAGS)
    if base is None:
        if "target_flops" not in given and "target_latency" not in given:
            raise ValueError("--target-flops or --target-latency is required, e.g. nas search "
                             "--target-flops 400M or nas search --target-latency 20ms")
        return SearchConfig(
            target_macs=_macs(given["target_flops"]) if "target_flops" in given else None,
            target_latency_ms=(_latency(given["target_latency"]) if "target_latency" in given
                               else None),
            sampler=given.get("sampler", default_of(SearchConfig, "sampler")),
            objectives=_names(given["objectives"]) if "objectives" in given else None,
            latency=LatencySettings() if timed else None,
            latency_table=given.get("latency_table"), proxy=ProxyConfig())
    changes: dict[str, Any] = {}
    if "target_flops" in given or "target_latency" in given:  # a target given replaces the run's
        changes["target_macs"] = _macs(given["target_flops"]) if "target_flops" in given else None
        changes["target_latency_ms"] = (_latency(given["target_latency"])
                                        if "target_latency" in given else None)
    if "sampler" in given:
        changes["sampler"] = given["sampler"]
    if "objectives" in given:
        changes["objectives"] = _names(given["objectives"])
    if timed and base.latency is None:
        changes["latency"] = LatencySettings()
    return replace(base, **changes)


def _template() -> dict[str, Any]:
    """Every key a stage-1 config.json may hold (with its latency settings and backend)."""
    from nas.backends import BackendConfig
    from nas.latency import LatencySettings
    from nas.stage1.config import SearchConfig

    full = SearchConfig(target_macs=1, evaluator="supernet")  # a proxy run's holds no supernet
    return {**full.to_dict(), "latency": LatencySettings().to_dict(),
            "backend": BackendConfig().to_dict()}


# A run's config.json as --config: the study's storage and name are where that run kept its
# study (a new run gets its own), "device" records what "auto" resolved to there, and a
# supernet run's settings and fingerprint are what its supernet was trained with (recomputed).
RUN_CONFIG = RunConfig(stage="1", command="nas search", template=_template,
                       outputs=frozenset({"stage", "storage", "study_name", "device",
                                          "supernet_settings", "supernet_fingerprint"}))


def run(args: argparse.Namespace) -> int:
    from nas.search import SearchConfig, run_search

    args = read_config_file(args, RUN_CONFIG)
    r = request_from_args(args, stage="1", flags=FLAGS, from_dict=SearchConfig.from_dict,
                          fresh=_fresh, check=rungs_set_epochs)
    result = run_search(r.config, out=r.out, resume=r.resume, storage=r.storage,
                        backend=r.backend)
    _report(result)
    return exit_code(interrupted=result.interrupted, found=result.best is not None)


def _report(result: Any) -> None:
    s = result.summary
    out = sys.stdout
    print(f"run folder: {result.run_dir}", file=out)
    print(f"trials: {s['trials']} {json.dumps(s['states'])}", file=out)
    if s["best"]:
        print(best_line(s), file=out)
        verdict = (s.get("finalists") or {}).get("verdict")
        if verdict:
            print(f"choice: {verdict['text']}", file=out)
        lat = latency_line(s.get("latency"))
        if lat is not None:
            print(f"latency: {lat}", file=out)
        print(f"spec: {result.run_dir / 'best.json'}  (nas show {result.run_dir}/best.json)",
              file=out)
    else:
        print("no trial finished; nothing to emit", file=out)


def best_line(summary: dict[str, Any]) -> str:
    """The last lines' B0, each number saying what it is: the finalists' mean over their seeds
    (B0's ``reward``/``accuracy`` in summary.json) apart from the search's own single training
    of the same trial (``search_reward``/``search_accuracy``, its row in trials.csv)."""
    b = summary["best"]
    size = f"MACs {b['macs'] / 1e6:.1f}M, params {b['params'] / 1e6:.2f}M"
    if b.get("chosen_by") == "finalists":
        seeds = b.get("seeds")
        over = f" over {seeds} seeds" if seeds else ""
        search = ("" if b.get("search_reward") is None else
                  f"; its search score: reward {b['search_reward']:.4f}"
                  + ("" if b.get("search_accuracy") is None else
                     f", accuracy {b['search_accuracy']:.4f}"))
        return (f"B0 = trial {b['trial']}: mean reward {b['reward']:.4f}{over} (accuracy "
                f"{b['accuracy']:.4f}){search}; {size}")
    why = ("the finalists have not finished" if summary.get("finalists")
           else "no finalists")
    return (f"B0 = trial {b['trial']}: reward {b['reward']:.4f}, accuracy {b['accuracy']:.4f} "
            f"(the search's one training; {why}); {size}")
