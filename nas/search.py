"""Stage 1: search a MnasNet-style space for a base network under a MACs target.

EfficientNet Sec. 4: "we develop our baseline network by leveraging a multi-objective neural
architecture search that optimizes both accuracy and FLOPS ... ACC(m) x [FLOPS(m)/T]^w".
Each trial samples an architecture (define-by-run), counts its MACs at the deployment
configuration (default 224 px, 3 channels, 1000 classes) with the analytic counter (equal to
fvcore; the winner is re-counted with fvcore), trains it on the proxy task, and reports the
reward per epoch so a pruner can stop hopeless trials. The best architecture is emitted as a
frozen spec: the run's B0.

This module says what a stage-1 trial is (:class:`Stage1`); the engine (:mod:`nas.engine`)
runs it.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.backends import BackendConfig
from nas.engine import (SAMPLERS, Candidate, FinalistPlan, FinalistRow, choose, finalist_table,
                        is_finalist, run_study, search_count)
from nas.engine.finalists import chosen, finalist_verdict, verdict_text
from nas.engine.phases import FINALISTS, SEARCH
from nas.engine.recorder import stale_numbers
from nas.evaluate import evaluate_proxy
from results.rundir import SUMMARY, write_json, write_table
from results.store import INTERRUPTED_STATE, rank_key, state_name, trials_frame
from space import ArchSpec, count_analytic, count_fvcore, save_spec
from space.deploy import Deployment, deployment_spec  # noqa: F401 (Deployment: re-exported)
from space.errors import checked
from space.latency import (TABLE_ATTR, TABLE_FILE, LatencyTable, predict_ms, random_params,
                           save_table, table_from_dict)
from space.objective import METRICS, Objective
from space.search_space import SearchSpace, load_space

from nas.latency import LatencySettings
from nas.stage1.config import SearchConfig

log = logging.getLogger(__name__)

__all__ = ["STUDY_NAME", "LATENCY_FILE", "SearchConfig", "SearchResult", "Stage1", "best_trial",
           "prepare_latency", "run_search"]

STUDY_NAME = "stage1"
BEST_FILE = "best.json"
TRIALS_TABLE = "trials"
# The table a latency search predicted with, in the run folder and in the study: every driver
# of a study, and every resume, predicts with the one table the study started with.
LATENCY_FILE, LATENCY_ATTR = TABLE_FILE, TABLE_ATTR


@dataclass
class SearchResult:
    run_dir: Path
    best: ArchSpec | None
    summary: dict[str, Any]
    interrupted: bool = False


class Stage1:
    """A stage-1 trial: sample an architecture, count it at deployment, train it, score it."""

    name = "1"
    label = "trial"
    study_name = STUDY_NAME
    enqueued_only = False  # trials are sampled (and --enqueue'd models evaluated first)
    enqueue_attrs = ("enqueued",)  # an --enqueue'd trial's model name (prepare_study)
    phases = (SEARCH, FINALISTS)  # nas.engine.phases

    def __init__(self, config: SearchConfig, space: SearchSpace | None = None, *,
                 table: LatencyTable | None = None) -> None:
        self.config = config
        self.space = space or load_space(config.space)
        self.objective = config.objective()
        self.metric = METRICS.get(self.objective.metric)
        # the latency table trials predict with (a latency search): given for a fresh run
        # (checked before the run folder exists), else the study's own (prepare_study)
        self.table = table
        self.run_dir: Path | None = None
        self.proxy = config.proxy
        self.seed = config.seed
        self.multi = config.multi_objective
        self.directions = ["maximize", "minimize"] if self.multi else ["maximize"]
        # nsga2's values are (accuracy, MACs): no single per-epoch reward to prune on
        self.reports_epochs = not self.multi
        self.pruner = "none" if self.multi else config.pruner
        self.ladder = config.ladder()
        self.finalists = config.finalist_plan()
        self.started = time.time()

    # ------------------------------------------------------------------ the study
    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def make_sampler(self, seed: int | None) -> Any:
        return SAMPLERS.get(self.config.sampler).make(seed)

    def trains(self) -> bool:
        return True

    def setup(self, run_dir: Path, *, resume: bool) -> None:
        self.started = time.time()
        self.run_dir = run_dir

    def prepare_study(self, study: optuna.Study, *, resume: bool) -> None:
        if self.config.uses_latency:
            self.table = study_table(study, self.table, self.config, self.space)
            if self.config.latency is None:  # measure as the table was timed
                self.config = dataclasses.replace(
                    self.config, latency=LatencySettings.of_device(self.table.device))
            if self.run_dir is not None:  # the run folder keeps the table it predicted with
                save_table(self.table, self.run_dir / LATENCY_FILE)
        if resume:
            return
        for name in self.config.enqueue:
            study.enqueue_trial(self.encode(name), user_attrs={"enqueued": name})

    def encode(self, name: str) -> dict[str, Any]:
        """The space's params of a zoo model or spec file (``--enqueue``)."""
        from space.resolve import resolve_spec

        params = self.space.encode(resolve_spec(name))
        if params is None:
            raise ValueError(f"--enqueue {name}: that architecture is not a member of the space "
                             f"{self.space.name!r}; enqueue a member (e.g. efficientnet-b0 with "
                             f"--space efficientnet)")
        return params

    def budget(self, study: optuna.Study) -> tuple[int | None, int | None, float | None]:
        c = self.config
        left = None if c.trials is None else max(c.trials - search_count(study), 0)
        return left, c.trials, c.timeout

    def log_plan(self, study: optuna.Study, run_dir: Path, n_trials: int | None) -> None:
        f = self.finalists
        log.info("stage 1: space %s (%d distinct architectures), target %s, sampler %s, "
                 "%s trial(s) to run, rungs %s (pruner %s), then %s, run folder %s",
                 self.space.name, self.space.size()[1], self.metric.format(self.objective.target),
                 self.config.sampler, "unbounded" if n_trials is None else n_trials,
                 self.ladder.to_text(), self.pruner,
                 f"{f.k} finalist(s) x {f.seeds} seed(s)" if f.enabled else "no finalists",
                 run_dir, extra=checked())

    # ------------------------------------------------------------------ one trial
    def propose(self, trial: optuna.Trial) -> Candidate:
        params = self.space.sample(trial)
        spec = deployment_spec(self.space, params, self.config.deploy, f"trial-{trial.number}")
        counts = count_analytic(spec)
        h = spec.arch_hash()
        trial.set_user_attr("macs", counts.macs)
        trial.set_user_attr("params", counts.params)
        trial.set_user_attr("arch_hash", h)
        trial.set_user_attr("evaluator", "proxy")  # who scores it (trials.csv; issue 24)
        costs = {"macs": counts.macs}
        if self.table is not None:  # predicted on this device, beside the MACs
            costs["latency"] = predict_ms(self.table, spec)
            trial.set_user_attr(METRICS.get("latency").attr, costs["latency"])
        return Candidate(spec=spec, macs=counts.macs, key=h, proxy=self.proxy,
                         cost=costs[self.objective.metric])

    def score(self, trial: optuna.Trial, accuracy: float, cost: float) -> Any:
        reward = self.objective.reward(accuracy, cost)
        trial.set_user_attr("accuracy", accuracy)
        trial.set_user_attr("reward", reward)
        if not self.multi:
            return reward
        second = METRICS.get(self.config.value_objectives[1]).attr
        return accuracy, float(trial.user_attrs[second])

    def progress_text(self, study: optuna.Study) -> str:
        """The best so far: the search's best single training, and once a finalist has all
        its seeds, B0 as summary.json chooses it (the best finalists' mean)."""
        if self.finalists.enabled:
            winner = choose(finalist_table(study.get_trials(deepcopy=False),
                                           seeds=self.finalists.seeds))
            if winner is not None:
                return (f"best mean reward {winner.mean:.4f} acc {winner.accuracy_mean:.4f} "
                        f"(finalist trial {winner.trial}, {winner.done} seeds)")
        best = best_trial(study)
        return "" if best is None else (f"best reward {best.user_attrs['reward']:.4f} "
                                        f"acc {best.user_attrs['accuracy']:.4f}")

    def describe(self, trial: FrozenTrial) -> str:
        ua = trial.user_attrs
        acc = f"{ua['accuracy']:.4f}" if "accuracy" in ua else "-"
        secs = trial.duration.total_seconds() if trial.duration else 0.0
        what = (f" (finalist: trial {ua['finalist_of']}, seed {ua['finalist_seed']})"
                if is_finalist(trial) else "")
        lat = f", {ua['latency_ms']:.2f} ms predicted" if "latency_ms" in ua else ""
        return (f"trial {trial.number}{what} {trial.state.name}: acc {acc}, "
                f"{ua.get('macs', 0) / 1e6:.1f} MMACs{lat}, {secs:.1f}s")

    # ------------------------------------------------------------------ outputs
    def write_outputs(self, study: optuna.Study, run_dir: Path, *, final: bool,
                      interrupted: bool = False, backend: dict[str, Any] | None = None
                      ) -> SearchResult:
        """trials.csv/.parquet, best.json and summary.json from the study (idempotent); the
        final write re-counts the winner with fvcore. Returns what was written (at the final
        write, the run's result)."""
        trials = study.get_trials(deepcopy=False)
        write_table(trials_frame(trials, stage=1, interrupted=stale_numbers(study)), run_dir,
                    TRIALS_TABLE)
        best, summary = self._best_and_summary(study, trials, run_dir, final=final)
        if final:
            summary["interrupted"] = interrupted
            summary["backend"] = backend
        write_json(summary, run_dir / SUMMARY)
        return SearchResult(run_dir=run_dir, best=best, summary=summary, interrupted=interrupted)

    def _best_and_summary(self, study: optuna.Study, trials: list[FrozenTrial], run_dir: Path,
                          *, final: bool) -> tuple[ArchSpec | None, dict[str, Any]]:
        c = self.config
        states: dict[str, int] = {}
        stale = set(stale_numbers(study))
        for t in trials:  # an interrupted trial is INTERRUPTED, not FAIL (results.store)
            name = state_name(t, stale)
            states[name] = states.get(name, 0) + 1
        summary: dict[str, Any] = {
            "stage": 1, "target_macs": c.target_macs, "target_latency_ms": c.target_latency_ms,
            "space": self.space.name,
            "space_size": dict(zip(("nominal", "distinct"), self.space.size())),
            "objective": self.objective.to_dict(), "sampler": c.sampler,
            "evaluator": c.evaluator, "trials": len(trials), "states": {k: states[k] for k in
                                              [*(s.name for s in TrialState), INTERRUPTED_STATE]
                                              if states.get(k)},
            "reused": sum(1 for t in trials if t.user_attrs.get("reused_from") is not None),
            "elapsed_s": time.time() - self.started, "best": None,
        }
        # B0 = the finalist with the best mean reward over its seeds, else the search's best
        best, winner, rows = chosen(trials, self.finalists, search_best=best_trial(study))
        if self.finalists.enabled:
            summary["finalists"] = finalists_summary(rows, self.finalists, winner)
        if best is None:
            return None, summary
        spec = deployment_spec(self.space, best.params, c.deploy, "nas-b0")
        ua = best.user_attrs
        reward, accuracy = ((winner.mean, winner.accuracy_mean) if winner is not None
                            else (ua["reward"], ua["accuracy"]))
        provenance = {
            "stage": 1, "target_macs": c.target_macs, "target_latency_ms": c.target_latency_ms,
            "reward": reward,
            "accuracy": accuracy, "macs": ua["macs"], "params": ua["params"],
            "chosen_by": "finalists" if winner is not None else "search",
            "search_reward": ua["reward"], "search_accuracy": ua["accuracy"],
            "objective": self.objective.to_dict(), "space": self.space.name,
            "dataset": c.proxy.dataset, "proxy": c.proxy.to_dict(),
            "seed": c.seed, "trial_seed": ua.get("seed"), "trial": best.number,
            "arch_hash": ua["arch_hash"], "params_sampled": dict(best.params),
        }
        if self.finalists.enabled:
            provenance["reward_std"] = None if winner is None else _finite(winner.std)
            provenance["finalists"] = [r.to_dict() for r in rows]
        if self.table is not None:
            provenance["latency_ms"] = ua.get("latency_ms")
            if final:  # B0 and the finalists, timed end to end on this device
                by_number = {t.number: t for t in trials}
                measured = self._measure(by_number, [best.number, *(r.trial for r in rows)])
                provenance["latency_ms_measured"] = measured[best.number]
                provenance["latency_device"] = self.config.latency.device()
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
        summary[f"{self.objective.metric}_vs_target"] = cost_vs_target(
            self.objective, float(ua[self.metric.attr]))
        if "macs_fvcore" in provenance:
            summary["best"]["macs_fvcore"] = provenance["macs_fvcore"]
        if self.table is not None:
            summary["latency"] = latency_summary(self.table, provenance, self.config)
        return spec, summary

    def _measure(self, by_number: Mapping[int, FrozenTrial],
                 numbers: list[int]) -> dict[int, float]:
        """End-to-end latency (ms) on this device of the trials ``numbers`` (B0, then the
        finalists), timed round-robin (nas.latency.bench_specs) with the search's latency
        settings."""
        from nas.latency import bench_specs

        numbers = list(dict.fromkeys(numbers))
        specs = [deployment_spec(self.space, by_number[n].params, self.config.deploy,
                                 f"trial-{n}") for n in numbers]
        s = self.config.latency
        log.info("timing B0 and %d finalist(s) end to end on this device (%d thread(s), "
                 "batch %d, %s)", len(numbers) - 1, s.threads, s.batch, s.runtime)
        ms = bench_specs(specs, threads=s.threads, batch=s.batch, runtime=s.runtime,
                         clock=s.clock, **MEASURE_TIMING)
        return dict(zip(numbers, ms))


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def finalists_summary(rows: list[FinalistRow], plan: FinalistPlan,
                      winner: FinalistRow | None = None) -> dict[str, Any]:
    """summary.json's finalists block: the plan, how far it got, one line per finalist, and
    the ``verdict`` on B0's lead over the runner-up (:func:`choice_verdict`; None until a
    finalist is complete)."""
    return {"k": plan.k, "seeds": plan.seeds, "runs_done": sum(r.done for r in rows),
            "complete": sum(1 for r in rows if r.complete), "table": [
                {"trial": r.trial, "search_reward": r.search_reward, "mean": _finite(r.mean),
                 "std": _finite(r.std), "seeds_done": r.done} for r in rows],
            "verdict": None if winner is None else choice_verdict(rows, winner)}


def choice_verdict(rows: list[FinalistRow], winner: FinalistRow) -> dict[str, Any]:
    """Whether B0's mean reward leads the runner-up's by more than their combined seed spread
    (:func:`nas.engine.finalists.noise_verdict`), as data and in words (``text``)."""
    v = finalist_verdict(rows, winner, measure="reward")
    return {**v.to_dict(), "text": verdict_text(v, chosen=f"B0 (trial {v.chosen})")}


def cost_vs_target(objective: Objective, cost: float) -> dict[str, Any]:
    """Where B0's cost (MACs, or predicted ms) lands against T, and why (summary.json's
    ``macs_vs_target`` / ``latency_vs_target``)."""
    m = METRICS.get(objective.metric)
    name = "MACs" if m.name == "macs" else "latency"
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


# How B0 and the finalists are timed at the end of a latency search: a few round-robin rounds,
# each network keeping its smallest median (nas.latency.bench_specs), as the table was timed.
MEASURE_TIMING = {"warmup": 3, "repeats": 10, "rounds": 3}


def latency_summary(table: LatencyTable, provenance: Mapping[str, Any],
                    config: SearchConfig) -> dict[str, Any]:
    """summary.json's latency block: the device, the table predicted with, and B0's
    predicted against measured latency."""
    predicted, measured = provenance.get("latency_ms"), provenance.get("latency_ms_measured")
    return {
        "target_ms": config.target_latency_ms,
        "device": provenance.get("latency_device") or config.latency.device(),
        "table": {"space": table.space, "resolution": table.resolution,
                  "device": dict(table.device), "entries": len(table.entries),
                  "overhead_ms": table.overhead_ms, "fingerprint": table.fingerprint(),
                  "file": LATENCY_FILE},
        "best": {"predicted_ms": predicted, "measured_ms": measured,
                 "error": (measured / predicted - 1) if predicted and measured else None},
    }


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best finished search trial by reward (:func:`results.store.rank_key`): the run's
    B0 without finalists (finalist runs are not search trials)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "reward" in t.user_attrs and not is_finalist(t)]
    return max(done, key=rank_key("reward"), default=None)


def prepare_latency(config: SearchConfig, space: SearchSpace | None = None
                    ) -> tuple[SearchConfig, LatencyTable | None]:
    """A fresh latency search's table and its settings, checked before anything is written.

    The table is ``--latency-table`` (which must be for this space, resolution and device),
    else the cached table for this device, built when missing (:func:`nas.latency.table_for`).
    With a table file and no ``--latency-*`` flags, the settings are the table's own. A member
    of the space is predicted once, so a table that does not cover the deployment fails here,
    not at the first trial."""
    if not config.uses_latency:
        return config, None
    from dataclasses import replace

    from nas.latency import table_for
    from space.latency import load_table

    space = space or load_space(config.space)
    settings = config.latency
    if settings is None:
        given = config.latency_table
        settings = (LatencySettings.of_device(load_table(given).device)
                    if given is not None and Path(given).is_file() else LatencySettings())
        config = replace(config, latency=settings)
    table = table_for(space, resolution=config.deploy.resolution, threads=settings.threads,
                      batch=settings.batch, runtime=settings.runtime, clock=settings.clock,
                      path=config.latency_table)
    probe = deployment_spec(space, random_params(space, seed=0), config.deploy, "probe")
    predict_ms(table, probe)  # a MissingEntryError names the entry the table lacks
    return config, table


def study_table(study: optuna.Study, given: LatencyTable | None, config: SearchConfig,
                space: SearchSpace) -> LatencyTable:
    """The table this study predicts with: the one it started with (kept in the study, so a
    resumed run and every ``--join``-ed driver predict exactly as the first did), else
    ``given`` (or :func:`prepare_latency`'s), which the study then keeps."""
    stored = study.user_attrs.get(LATENCY_ATTR)
    if stored is None:
        table = given if given is not None else prepare_latency(config, space)[1]
        study.set_user_attr(LATENCY_ATTR, table.to_dict())
        return table
    table = table_from_dict(stored, source=f"study {study.study_name!r}'s latency table")
    if given is not None and given.fingerprint() != table.fingerprint():
        log.warning("the study predicts with the latency table it started with (%s), not "
                    "the one given now: one study, one table", table.fingerprint())
    return table


def run_search(config: SearchConfig, *, out: str | Path | None = None, resume: bool = False,
               storage: str | None = None, evaluate: Callable[..., Any] | None = None,
               backend: BackendConfig | None = None) -> SearchResult:
    """Run (or resume) stage 1 and write the run folder. ``backend`` says where the trials run
    (default: here, one at a time; see :mod:`nas.backends`); ``evaluate`` is injectable for
    tests (default: :func:`nas.evaluate.evaluate_proxy`)."""
    table = None
    if not resume and not (storage is not None and getattr(storage, "join", False)):
        config, table = prepare_latency(config)  # before the run folder: bad input writes nothing
    if config.evaluator == "supernet":  # issue 24: one trained supernet scores the search
        from nas.stage1.supernet_phase import SupernetStage

        stage = SupernetStage(Stage1(config, table=table), finalist_evaluate=evaluate)
        evaluate = stage.scorer
    else:
        stage = Stage1(config, table=table)
    if not resume:  # every --enqueue name resolves to a member, before the run folder exists
        for name in config.enqueue:
            stage.encode(name)
    return run_study(stage, out=out, resume=resume, storage=storage, backend=backend,
                     evaluate=evaluate or evaluate_proxy).result
