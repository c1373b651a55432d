"""Stage 1's trial (:class:`Stage1`): sample an architecture from the search space, count it at
the deployment configuration, train it on the proxy task, score it with the objective. The
engine (:mod:`nas.engine`) runs it, through the phases it declares; :mod:`.outputs` writes the
run folder, :mod:`.latency` sets up a latency search. The front door is
:func:`nas.search.run_search`.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas.engine import (SAMPLERS, Candidate, choose, finalist_table, is_finalist,
                        search_count)
from nas.engine.phases import FINALISTS, SEARCH
from nas.latency_settings import LatencySettings
from space import count_analytic
from space.deploy import deployment_spec
from space.errors import checked
from space.latency import LatencyTable, predict_ms, save_table
from space.objective import METRICS
from space.search_space import SearchSpace, load_space

from .config import SearchConfig
from .latency import LATENCY_FILE, study_table
from .outputs import SearchResult, best_trial, write_outputs

# stage 1 logs under its front door's name, as a run has always printed it
log = logging.getLogger("nas.search")

__all__ = ["STUDY_NAME", "Stage1"]

STUDY_NAME = "stage1"


class Stage1:
    """A stage-1 trial: sample an architecture, count it at deployment, train it, score it."""

    name = "1"
    label = "trial"
    study_name = STUDY_NAME
    enqueued_only = False  # trials are sampled (and --enqueue'd models evaluated first)
    before_search = None  # the proxy evaluator needs nothing before the trials (the supernet
    finalist_evaluate = None  # evaluator's stage, nas.stage1.supernet_phase, has both)
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
        self.run_budget = config.budget  # seconds for the search and finalists (engine.budget)
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
        race = (f"no race, every trial trains {self.ladder.top} epoch(s) (pruner none)"
                if self.pruner == "none" else
                f"rungs {self.ladder.describe()} (pruner {self.pruner})")
        log.info("stage 1: space %s (%d distinct architectures), target %s, sampler %s, "
                 "%s trial(s) to run, %s, then %s, run folder %s",
                 self.space.name, self.space.size()[1], self.metric.format(self.objective.target),
                 self.config.sampler, "unbounded" if n_trials is None else n_trials, race,
                 f.describe(),
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
        """trials.csv, best.json and summary.json (:mod:`.outputs`); returns what was
        written (at the final write, the run's result)."""
        return write_outputs(study, run_dir, config=self.config, space=self.space,
                             table=self.table, started=self.started, final=final,
                             interrupted=interrupted, backend=backend)
