"""What a stage-1 run folder holds, from its study (the counterpart of
:mod:`gridsearch.outputs`):

- ``trials.csv``/``.parquet``: one row per trial (:func:`results.store.trials_frame`, stage 1),
  rewritten after every trial;
- ``best.json``: B0, the finalist with the best mean reward over its seeds (else the search's
  best trial: :func:`nas.engine.finalists.chosen`), as a frozen spec whose ``meta`` says where it
  came from (and, in a latency search, its latency predicted and measured on this device);
- ``summary.json``: the run's counts, B0's block, its cost against the target and why, the
  finalists block with the verdict on B0's lead, and the latency block.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.engine import FinalistPlan, FinalistRow, is_finalist
from nas.engine.finalists import chosen, finalist_verdict, verdict_text
from nas.engine.recorder import stale_numbers
from results.rundir import SUMMARY, write_json, write_table
from results.store import INTERRUPTED_STATE, rank_key, state_name, trials_frame
from space import ArchSpec, count_fvcore, save_spec
from space.deploy import deployment_spec
from space.objective import METRICS, Objective

from .latency import latency_summary, measure_latency

if TYPE_CHECKING:
    from space.latency import LatencyTable
    from space.search_space import SearchSpace

    from .config import SearchConfig

# stage 1 logs under its front door's name, as a run has always printed it
log = logging.getLogger("nas.search")

__all__ = ["BEST_FILE", "TRIALS_TABLE", "SearchResult", "best_trial", "write_outputs",
           "best_and_summary", "finalists_summary", "choice_verdict", "lead_split", "split_text",
           "cost_vs_target"]

BEST_FILE = "best.json"
TRIALS_TABLE = "trials"


@dataclass
class SearchResult:
    """What a stage-1 run gives back (``run_study(...).result``): the run folder, B0 and
    summary.json's content."""

    run_dir: Path
    best: ArchSpec | None
    summary: dict[str, Any]
    interrupted: bool = False


def write_outputs(study: optuna.Study, run_dir: Path, *, config: SearchConfig,
                  space: SearchSpace, table: LatencyTable | None, started: float, final: bool,
                  interrupted: bool = False, backend: dict[str, Any] | None = None
                  ) -> SearchResult:
    """trials.csv/.parquet, best.json and summary.json from the study (idempotent); the
    final write re-counts the winner with fvcore. Returns what was written (at the final
    write, the run's result)."""
    trials = study.get_trials(deepcopy=False)
    write_table(trials_frame(trials, stage=1, interrupted=stale_numbers(study)), run_dir,
                TRIALS_TABLE)
    best, summary = best_and_summary(study, trials, run_dir, config=config, space=space,
                                     table=table, started=started, final=final)
    if final:
        summary["interrupted"] = interrupted
        summary["backend"] = backend
    write_json(summary, run_dir / SUMMARY)
    return SearchResult(run_dir=run_dir, best=best, summary=summary, interrupted=interrupted)


def best_and_summary(study: optuna.Study, trials: list[FrozenTrial], run_dir: Path, *,
                     config: SearchConfig, space: SearchSpace, table: LatencyTable | None,
                     started: float, final: bool) -> tuple[ArchSpec | None, dict[str, Any]]:
    """B0 (written to best.json with its provenance) and summary.json's content; the final
    write re-counts B0 with fvcore and, in a latency search, times it and the finalists."""
    c = config
    objective, finalists = c.objective(), c.finalist_plan()
    metric = METRICS.get(objective.metric)
    states: dict[str, int] = {}
    stale = set(stale_numbers(study))
    for t in trials:  # an interrupted trial is INTERRUPTED, not FAIL (results.store)
        name = state_name(t, stale)
        states[name] = states.get(name, 0) + 1
    summary: dict[str, Any] = {
        "stage": 1, "target_macs": c.target_macs, "target_latency_ms": c.target_latency_ms,
        "space": space.name,
        "space_size": dict(zip(("nominal", "distinct"), space.size())),
        "objective": objective.to_dict(), "sampler": c.sampler,
        "evaluator": c.evaluator, "trials": len(trials), "states": {k: states[k] for k in
                                          [*(s.name for s in TrialState), INTERRUPTED_STATE]
                                          if states.get(k)},
        "reused": sum(1 for t in trials if t.user_attrs.get("reused_from") is not None),
        "elapsed_s": time.time() - started, "best": None,
    }
    # B0 = the finalist with the best mean reward over its seeds, else the search's best
    best, winner, rows = chosen(trials, finalists, search_best=best_trial(study))
    if finalists.enabled:
        summary["finalists"] = finalists_summary(rows, finalists, winner,
                                                 cost=_cost_name(objective))
    if best is None:
        return None, summary
    spec = deployment_spec(space, best.params, c.deploy, "nas-b0")
    ua = best.user_attrs
    reward, accuracy = ((winner.mean, winner.accuracy_mean) if winner is not None
                        else (ua["reward"], ua["accuracy"]))
    provenance = {
        "stage": 1, "target_macs": c.target_macs, "target_latency_ms": c.target_latency_ms,
        "reward": reward,
        "accuracy": accuracy, "macs": ua["macs"], "params": ua["params"],
        "chosen_by": "finalists" if winner is not None else "search",
        "search_reward": ua["reward"], "search_accuracy": ua["accuracy"],
        "objective": objective.to_dict(), "space": space.name,
        "dataset": c.proxy.dataset, "proxy": c.proxy.to_dict(),
        "seed": c.seed, "trial_seed": ua.get("seed"), "trial": best.number,
        "arch_hash": ua["arch_hash"], "params_sampled": dict(best.params),
    }
    if finalists.enabled:
        provenance["reward_std"] = None if winner is None else _finite(winner.std)
        provenance["finalists"] = [r.to_dict() for r in rows]
    if table is not None:
        provenance["latency_ms"] = ua.get("latency_ms")
        if final:  # B0 and the finalists, timed end to end on this device
            by_number = {t.number: t for t in trials}
            measured = measure_latency(space, c, by_number,
                                           [best.number, *(r.trial for r in rows)])
            provenance["latency_ms_measured"] = measured[best.number]
            provenance["latency_device"] = c.latency.device()
            for row in provenance.get("finalists", []):
                row["latency_ms"] = by_number[row["trial"]].user_attrs.get("latency_ms")
                row["latency_ms_measured"] = measured[row["trial"]]
    if final:
        fv = count_fvcore(spec)
        provenance["macs_fvcore"] = fv.macs
        if fv.macs != ua["macs"]:
            log.warning("fvcore counts %d MACs for the best spec, the analytic counter %d",
                        fv.macs, ua["macs"])
    spec = spec.replace(meta=provenance)
    save_spec(spec, run_dir / BEST_FILE)
    summary["best"] = {k: provenance[k] for k in
                       ("trial", "reward", "accuracy", "macs", "params", "arch_hash",
                        "chosen_by", "search_reward", "search_accuracy")}
    # how many trainings reward/accuracy are the mean of (1: the search's own training)
    summary["best"]["seeds"] = winner.done if winner is not None else 1
    summary[f"{objective.metric}_vs_target"] = cost_vs_target(
        objective, float(ua[metric.attr]))
    if "macs_fvcore" in provenance:
        summary["best"]["macs_fvcore"] = provenance["macs_fvcore"]
    if table is not None:
        summary["latency"] = latency_summary(table, provenance, c)
    return spec, summary


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best finished search trial by reward (:func:`results.store.rank_key`): the run's
    B0 without finalists (finalist runs are not search trials)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "reward" in t.user_attrs and not is_finalist(t)]
    return max(done, key=rank_key("reward"), default=None)


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _cost_name(objective: Objective) -> str:
    """The reward's cost, in words: "MACs" or "latency" (the choice line and cost_vs_target)."""
    return "MACs" if METRICS.get(objective.metric).name == "macs" else "latency"


def finalists_summary(rows: list[FinalistRow], plan: FinalistPlan,
                      winner: FinalistRow | None = None, *, cost: str = "MACs") -> dict[str, Any]:
    """summary.json's finalists block: the plan, how far it got, one line per finalist, and
    the ``verdict`` on B0's lead over the runner-up (:func:`choice_verdict`; None until a
    finalist is complete)."""
    return {"k": plan.k, "seeds": plan.seeds, "runs_done": sum(r.done for r in rows),
            "complete": sum(1 for r in rows if r.complete), "table": [
                {"trial": r.trial, "search_reward": r.search_reward, "mean": _finite(r.mean),
                 "std": _finite(r.std), "seeds_done": r.done} for r in rows],
            "verdict": None if winner is None else choice_verdict(rows, winner, cost=cost)}


def choice_verdict(rows: list[FinalistRow], winner: FinalistRow, *,
                   cost: str = "MACs") -> dict[str, Any]:
    """Whether B0's mean reward leads the runner-up's by more than their combined seed spread
    (:func:`nas.engine.finalists.noise_verdict`), and how that lead divides between accuracy
    and the ``cost`` term (:func:`lead_split`), as data and in words (``text``)."""
    v = finalist_verdict(rows, winner, measure="reward")
    text = verdict_text(v, chosen=f"B0 (trial {v.chosen})")
    split = lead_split(rows, v.chosen, v.runner_up)
    if split is not None:
        text += f". {split_text(split, cost)}"
    return {**v.to_dict(), "lead_split": split, "text": text}


def lead_split(rows: list[FinalistRow], chosen: int,
               runner_up: int | None) -> dict[str, float] | None:
    """How the chosen finalist's lead in mean reward over the runner-up divides between
    accuracy and the cost term, from their means over the same finished seeds.

    A finalist's mean reward is its mean accuracy times its cost factor f = mean reward / mean
    accuracy ((COST/T)^w for the soft constraint), so the lead R_c - R_r splits exactly into
    ``accuracy`` = (f_c + f_r)/2 x (A_c - A_r) and ``cost`` = (A_c + A_r)/2 x (f_c - f_r).
    None without a runner-up or a positive mean accuracy on both sides."""
    rows_by = {r.trial: r for r in rows}
    if runner_up is None or chosen not in rows_by or runner_up not in rows_by:
        return None
    c, r = rows_by[chosen], rows_by[runner_up]
    if not all(math.isfinite(x) and x > 0 for x in (c.accuracy_mean, r.accuracy_mean)):
        return None
    if not (math.isfinite(c.mean) and math.isfinite(r.mean)):
        return None
    fc, fr = c.mean / c.accuracy_mean, r.mean / r.accuracy_mean
    return {"accuracy": (fc + fr) / 2 * (c.accuracy_mean - r.accuracy_mean),
            "cost": (c.accuracy_mean + r.accuracy_mean) / 2 * (fc - fr),
            "accuracy_chosen": c.accuracy_mean, "accuracy_runner_up": r.accuracy_mean}


def split_text(split: dict[str, float], cost: str = "MACs") -> str:
    """:func:`lead_split` in words, e.g. "Of the lead, accuracy gives -0.0021 (0.8315 against
    0.8336) and the MACs term +0.0097: B0 wins on its MACs, with the lower accuracy"."""
    acc, term = split["accuracy"], split["cost"]
    head = (f"Of the lead, accuracy gives {acc:+.4f} ({split['accuracy_chosen']:.4f} against "
            f"{split['accuracy_runner_up']:.4f}) and the {cost} term {term:+.4f}")
    if acc >= 0 and term >= 0:
        return f"{head}: both favour B0"
    if acc < 0:
        return f"{head}: B0 wins on its {cost}, with the lower accuracy"
    return f"{head}: B0 wins on accuracy, with the higher {cost}"


def cost_vs_target(objective: Objective, cost: float) -> dict[str, Any]:
    """Where B0's cost (MACs, or predicted ms) lands against T, and why (summary.json's
    ``macs_vs_target`` / ``latency_vs_target``)."""
    m = METRICS.get(objective.metric)
    name = _cost_name(objective)
    frac = cost / objective.target
    if objective.floor > 0:
        why = (f"hard constraint: the reward is ACC for {objective.floor:g}T <= {name} <= T, "
               f"falls as ({name}/T)^{objective.b:g} above T and in proportion to "
               f"{name}/({objective.floor:g}T) below the floor, so B0 should land in "
               f"[{objective.floor:g}T, T]")
    else:
        why = (f"soft constraint: the reward ACC x ({name}/T)^w with w = {objective.a:g} "
               f"below T scores a network at x T as x^{objective.a:g} times its accuracy "
               f"(0.25 T: {0.25 ** objective.a:.3f}x), so a bigger network wins only if its "
               f"proxy accuracy is higher by more than that; on a short proxy small networks "
               f"train as well or better, so B0 tends to land well below T (README)")
    target = {"macs": "target_macs", "latency": "target_latency_ms"}[m.name]
    value = int(cost) if m.name == "macs" else cost
    return {m.attr: value, target: objective.target_macs or objective.target,
            "fraction": frac, "why": why}
