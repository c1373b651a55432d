"""One trial's life, the same for both stages and both backends.

A stage (:class:`Stage`: stage 1's search, stage 2's grid) says what a trial is: it
*proposes* a candidate (samples or scales a network, counts it, records it) and *scores* a
trained one. :class:`TrialRunner` does the rest, once: reuse an identical earlier training
(same reuse key: same network, proxy task and seed), draw the per-candidate seed, record the
learning curve and the per-epoch reward a pruner reads, and turn the result into an
:class:`Outcome` (COMPLETE with values, PRUNED, or FAIL with a reason). The local backend runs
the whole trial with :meth:`TrialRunner.run`; the Ray backend calls the same steps around a
worker's training. :func:`tell` records an outcome in the study.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.evaluate import ProxyConfig, trial_seed
from space import ArchSpec
from space.objective import Objective

from .finalists import FINALIST, FINALIST_SEED, finalist_key, plan_of
from .recorder import (failure, node_name, record, record_curve, record_failure, record_pruned,
                       reuse_key)

if TYPE_CHECKING:
    from .session import StudySession

log = logging.getLogger(__name__)

__all__ = ["Batch", "Candidate", "Outcome", "Phase", "Stage", "TrialRunner", "tell"]


@dataclass(frozen=True)
class Candidate:
    """A network a trial proposes: counted and recorded, waiting to be trained with ``seed``
    on ``proxy``. ``macs`` is the count at deployment; ``cost`` is what the objective scores
    (the stage objective's metric: the MACs unless given, e.g. a predicted latency in ms);
    ``key`` decides reuse (two candidates with one key train identically)."""

    spec: ArchSpec
    macs: int
    key: str
    proxy: ProxyConfig
    seed: int | None = None
    finalist: bool = False  # a finalist run: trains its whole task, never raced or pruned
    cost: float | None = None  # None: the MACs

    def __post_init__(self) -> None:
        if self.cost is None:
            object.__setattr__(self, "cost", self.macs)


@dataclass(frozen=True)
class Outcome:
    state: TrialState
    values: float | Sequence[float] | None = None
    reason: str | None = None

    @classmethod
    def failed(cls, reason: BaseException | str) -> Outcome:
        return cls(TrialState.FAIL, reason=failure(reason))


class Stage(Protocol):
    """What a stage gives the engine (:class:`nas.stage1.stage.Stage1`,
    :class:`gridsearch.search.Stage2`)."""

    name: str  # the run folder's stage ("1", "2")
    label: str  # what one trial is called in logs ("trial", "point")
    study_name: str
    directions: list[str]
    pruner: str  # a key of nas.engine.PRUNERS
    reports_epochs: bool  # the per-epoch reward goes to the pruner as intermediate values
    # every trial is enqueued, none sampled (stage 2's grid points): the search is never closed
    # by the finalists having begun, since what the stage enqueued after them still runs
    enqueued_only: bool
    # the user attributes this stage enqueues a trial with (what it was enqueued as: stage 1's
    # --enqueue name, stage 2's point); a retry or a finalist run of the trial carries them
    # (:func:`nas.engine.recorder.carried`), so the engine names no stage's attributes
    enqueue_attrs: tuple[str, ...]
    # what one run_study call runs, in order (nas.engine.phases): (SEARCH, FINALISTS), and
    # stage 2's single-dimension comparison after them
    phases: tuple[Phase, ...]
    objective: Objective  # the reward ACC x (COST/T)^w, reported after every epoch
    proxy: ProxyConfig  # the stage's proxy task (a Candidate may bring its own)
    seed: int | None
    # hooks a stage may leave at None: run before the search's trials (the supernet
    # evaluator trains its supernet: before_search(study, run_dir)), and the evaluator the
    # finalists train with when it is not the search's (the supernet's finalists: the proxy)
    before_search: Callable[[optuna.Study, Path], Any] | None
    finalist_evaluate: Callable[..., Any] | None

    def config_dict(self) -> dict[str, Any]:
        """What config.json (and the study's ``config`` attribute) records."""

    def make_sampler(self, seed: int | None) -> Any:
        """The Optuna sampler that asks for this driver's trials, seeded with ``seed`` (the
        stage's seed for a study's first driver, another for every later one:
        :func:`nas.engine.study.driver_seed`)."""

    def trains(self) -> bool:
        """Whether the run trains anything (else the dataset is not checked)."""

    def setup(self, run_dir: Path, *, resume: bool) -> None:
        """Read or write what the stage keeps in the run folder besides the study."""

    def prepare_study(self, study: optuna.Study, *, resume: bool) -> None:
        """Enqueue what must run (``--enqueue`` models, stage 2's grid points)."""

    def budget(self, study: optuna.Study) -> tuple[int | None, int | None, float | None]:
        """(trials to run now, total for the progress bar, timeout in seconds)."""

    def log_plan(self, study: optuna.Study, run_dir: Path, n_trials: int | None) -> None:
        """One log line saying what the run will do."""

    def propose(self, trial: optuna.Trial) -> Candidate:
        """Sample or scale the trial's network, count it, record it."""

    def score(self, trial: optuna.Trial, accuracy: float, cost: float) -> Any:
        """Record accuracy and reward (``cost``: the candidate's, in the objective's metric);
        the value(s) to tell the study."""

    def write_outputs(self, study: optuna.Study, run_dir: Path, *, final: bool,
                      interrupted: bool = False, backend: dict[str, Any] | None = None) -> Any:
        """The stage's files from the study (idempotent); ``final`` at the end of a run,
        where what it returns is the stage's result (``run_study(...).result``)."""

    def progress_text(self, study: optuna.Study) -> str:
        """The best so far, for the progress bar and the log."""

    def describe(self, trial: FrozenTrial) -> str:
        """One log line for a finished trial."""

    # Optional (read with getattr by the engine, so a stage may leave them out):
    #   ladder: nas.engine.fidelity.Ladder -- the rungs the pruner compares at (default: the
    #       ladder of proxy.train.epochs, nas.engine.fidelity.ladder_of)
    #   finalists: nas.engine.finalists.FinalistPlan -- top-k distinct candidates retrained
    #       with s seeds after the search (default: none, nas.engine.finalists.plan_of)
    #   before_search(study, run_dir) -> bool -- work before the search's trials (a supernet's
    #       training; True when interrupted), run by the search phase (nas.engine.phases)
    #   finalist_evaluate -- the finalists' evaluator, when not the search's (the supernet
    #       evaluator's finalists train from scratch)


@dataclass(frozen=True)
class Batch:
    """What a phase runs now: up to ``n_trials`` trials (None: until the stage's budget is
    spent), starting none after ``timeout`` seconds; ``total`` for the progress bar (and, for a
    sampled phase, the budget several drivers of one study share). ``enqueued_only``: only
    enqueued trials run, none is sampled, and the bar counts this phase's trials alone.
    ``prune``: the stage's pruner may stop trials (else every trial trains to the top rung).
    ``before``: work to do before the trials (a supernet's training), True when interrupted;
    ``evaluate``: this batch's evaluator (None: the run's); ``stop(study)``: True when no more
    trial may start (the run's budget, :mod:`.budget`), checked before each one."""

    n_trials: int | None
    total: int | None
    timeout: float | None = None
    enqueued_only: bool = False
    prune: bool = True
    description: str | None = None
    before: Callable[[], bool] | None = None
    evaluate: Callable[..., Any] | None = None
    stop: Callable[[optuna.Study], bool] | None = None


class Phase(Protocol):
    """One phase of a run (:mod:`nas.engine.phases`)."""

    name: str

    def plan(self, stage: Stage, study: optuna.Study, session: StudySession,
             run_dir: Path) -> Batch | None:
        """Enqueue what this phase runs and say how to run it; None: nothing to run."""
        ...


class _Stop(Exception):
    """Raised inside training when the pruner stops the trial."""


class TrialRunner:
    def __init__(self, stage: Stage, evaluate: Callable[..., Any], *,
                 session: Any = None, enqueued_only: bool = False,
                 on_start: Callable[[optuna.Trial], None] | None = None,
                 stop: Callable[[optuna.Study], bool] | None = None) -> None:
        self.stage = stage
        self.evaluate = evaluate
        self.session = session  # nas.engine.session.StudySession: budget gate, key claims
        self.enqueued_only = enqueued_only  # the finalists' phase: only enqueued trials run
        # called when a trial is about to train (the driver rewrites the run's tables, so a
        # trial that was WAITING there, a finalist or a grid point, reads RUNNING while it trains)
        self.on_start = on_start
        self.stop = stop  # True when no more trial may start (the run's budget)

    def ask(self, study: optuna.Study) -> optuna.Trial | None:
        """The next trial, or None when the study's budget is spent (a shared study: the
        other drivers' trials count too, and the run's budget may close the search first); with
        ``enqueued_only``, None when no enqueued trial waits."""
        if self.stop is not None and self.stop(study):
            return None
        if self.enqueued_only:
            if self.session is not None:
                return self.session.ask_enqueued(study)
            if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return None
            return study.ask()
        return study.ask() if self.session is None else self.session.ask(study)

    def begin(self, trial: optuna.Trial) -> Candidate | Outcome:
        """Propose and record the trial's candidate: a Candidate (with its seed) to train, or
        the Outcome when it cannot be proposed or an identical training already finished."""
        try:
            cand = self.stage.propose(trial)
        except optuna.exceptions.StorageInternalError:
            raise  # the study's storage is gone: not this trial's fault (nas.engine.study)
        except Exception as e:  # recorded, and the study goes on
            log.warning("%s %d failed: %s", self.stage.label, trial.number, failure(e))
            return Outcome.failed(e)
        if trial.user_attrs.get(FINALIST):  # a fresh seed per finalist run, from its own key,
            # on the finalists' task (the search's, or longer: --finalist-epochs). The key
            # needs no epochs: a run folder keeps its plan (a resume cannot change it).
            cand = replace(cand, key=finalist_key(cand.key, int(trial.user_attrs[FINALIST_SEED])),
                           finalist=True, proxy=plan_of(self.stage).task(cand.proxy))
        record(trial, train_key=cand.key, node=node_name())
        earlier = (_same_training(trial.study, cand.key) if self.session is None
                   else self.session.reuse(trial, cand.key))  # claimed in the study's storage
        if earlier is not None:
            # Same network, proxy task and seed: training again would give the same number,
            # so take it (the trial is still recorded, with where it came from).
            record(trial, reused_from=earlier.number)
            curve = earlier.user_attrs.get("val_accuracy_per_epoch", [])
            if earlier.state == TrialState.PRUNED:
                return self.pruned(trial, curve)
            record_curve(trial, curve)
            return self.complete(trial, cand, earlier.user_attrs["accuracy"])
        seed = trial_seed(self.stage.seed, cand.key)
        record(trial, seed=seed)
        if self.on_start is not None:
            self.on_start(trial)
        return replace(cand, seed=seed)

    def record_epoch(self, trial: optuna.Trial, cand: Candidate, curve: list[float]) -> None:
        """After an epoch (its accuracy appended to ``curve``): the curve, and the reward as
        the intermediate value a pruner reads."""
        record_curve(trial, curve)
        if self.stage.reports_epochs and not cand.finalist:
            trial.report(self.stage.objective.reward(curve[-1], cand.cost), len(curve))

    def complete(self, trial: optuna.Trial, cand: Candidate, accuracy: float,
                 **extra: Any) -> Outcome:
        if not math.isfinite(accuracy):
            return Outcome.failed(f"accuracy is {accuracy}")
        record(trial, **extra)
        return Outcome(TrialState.COMPLETE, self.stage.score(trial, float(accuracy), cand.cost))

    def pruned(self, trial: optuna.Trial, curve: list[float]) -> Outcome:
        record_pruned(trial, curve)
        return Outcome(TrialState.PRUNED)

    def run(self, trial: optuna.Trial) -> Outcome:
        """The whole trial in this process (the local backend)."""
        got = self.begin(trial)
        if isinstance(got, Outcome):
            return got
        curve: list[float] = []
        epochs = got.proxy.train.epochs
        races = self.stage.reports_epochs and not got.finalist

        def on_epoch(res: Any) -> None:
            curve.append(float(res.val_accuracy))
            self.record_epoch(trial, got, curve)
            if races and res.epoch < epochs and trial.should_prune():
                raise _Stop

        try:
            result = self.evaluate(got.spec, got.proxy, seed=got.seed, on_epoch=on_epoch)
        except (_Stop, optuna.TrialPruned):
            return self.pruned(trial, curve)
        except optuna.exceptions.StorageInternalError:
            raise  # the study's storage is gone: not this trial's fault (nas.engine.study)
        except Exception as e:  # recorded, and the study goes on
            log.warning("%s %d failed: %s", self.stage.label, trial.number, failure(e))
            return Outcome.failed(e)
        return self.complete(trial, got, result.accuracy, images_per_sec=result.images_per_sec)


def tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> FrozenTrial:
    """Record ``outcome`` as the trial's end state."""
    if outcome.state == TrialState.COMPLETE:
        return study.tell(trial, outcome.values)
    if outcome.state == TrialState.FAIL:
        record_failure(trial, outcome.reason or "failed")
    return study.tell(trial, state=outcome.state)


def _same_training(study: optuna.Study, key: str) -> FrozenTrial | None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if reuse_key(t) == key and "accuracy" in t.user_attrs:
            return t
    return None
