"""One driver's hold on the run's study (:class:`StudySession`): the budget gate, the
reuse-key claims and the heartbeat a driver keeps while it runs trials, and what happens to
trials that did not finish through no fault of their own (:func:`requeue_interrupted`; a stale
trial of a database study, :func:`_retry_stale`). :mod:`.study` opens the study and the session
(its module docstring says how several drivers share one study).
"""
from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from .claims import Heartbeat
from .recorder import FINISHED, INTERRUPTED, STALE_ATTR, carried, is_interrupted

log = logging.getLogger(__name__)

__all__ = ["StudySession", "requeue_interrupted", "REQUEUED_ATTR", "POLL_S"]

REQUEUED_ATTR = "requeued"
POLL_S = 0.5


class StudySession:
    """One driver's hold on the study: the study, its claims, mutex and heartbeat, and the
    driver's number in the study (:func:`driver_seed`)."""

    def __init__(self, study: optuna.Study, *, storage: Any, url: str, shared: bool,
                 claims: Any, heartbeat: Heartbeat | None, created: bool,
                 carry: tuple[str, ...] = ()) -> None:
        self.study, self.storage, self.url, self.shared = study, storage, url, shared
        self.claims, self.heartbeat, self.created = claims, heartbeat, created
        self.carry = carry  # the user attributes a requeued trial is enqueued with again
        self.driver = 0
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.total: int | None = None  # the stage's budget, set by the driver
        self.mine: set[int] = set()  # trials this driver asked for

    def mutex(self) -> Any:
        return self.claims.mutex()

    def reap(self) -> None:
        """Fail trials whose heartbeat is stale (Optuna enqueues their retry) and enqueue the
        trials a Ctrl-C interrupted. Call under :meth:`mutex`."""
        with _quiet():
            optuna.storages.fail_stale_trials(self.study)
        requeue_interrupted(self.study, running=False, carry=self.carry)

    def ask(self, study: optuna.Study) -> optuna.Trial | None:
        """The next trial to run, or None when the budget is spent. A shared study waits while
        the trials other drivers run could still end it."""
        if not self.shared:
            trial = study.ask()
            self.mine.add(trial.number)
            return trial
        while True:
            with self.mutex():
                self.reap()
                trials = study.get_trials(deepcopy=False)
                stale = set(study.user_attrs.get(STALE_ATTR, []))
                done = sum(1 for t in trials if t.state in FINISHED
                           and not is_interrupted(t, stale))
                running = [t.number for t in trials if t.state == TrialState.RUNNING]
                if self.total is not None and done >= self.total:
                    return None
                if self.total is None or done + len(running) < self.total:
                    with _quiet():
                        trial = study.ask()
                    self.mine.add(trial.number)
                    if self.heartbeat is not None:  # a shared study always has one
                        self.heartbeat.add(trial.number)
                    return trial
                if set(running) <= self.mine:  # only ours run (Ray): nothing to wait for
                    return None
            time.sleep(POLL_S)

    def ask_enqueued(self, study: optuna.Study) -> optuna.Trial | None:
        """The next enqueued (WAITING) trial, or None when there is none: the finalists'
        phase runs only what was enqueued, never a newly sampled trial."""
        with self.mutex():
            if self.shared:
                self.reap()
            if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return None
            with _quiet():
                trial = study.ask()
            self.mine.add(trial.number)
            if self.heartbeat is not None:
                self.heartbeat.add(trial.number)
            return trial

    def trial(self, number: int) -> FrozenTrial:
        return self.storage.get_trial(
            self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number))

    def reuse(self, trial: optuna.Trial, key: str) -> FrozenTrial | None:
        """The finished trial whose training ``trial`` takes, or None to train it.

        The rule: claim ``key``. Won: train. Held by a trial that is COMPLETE (with an accuracy)
        or PRUNED (with a curve): take its result (a pruned network is recorded as pruned
        again, with its curve). Held by a trial that ended without a result (failed,
        interrupted, stale): take the claim over and train. Held by a RUNNING trial of another
        driver: wait for it (its heartbeat guarantees it ends: finished, or failed as stale).
        Held by a RUNNING trial of this driver (several at once on Ray): train, as before.
        """
        owner, token = self.claims.claim(key, trial.number)
        while owner != trial.number:
            t = self.trial(owner)
            curve = t.user_attrs.get("val_accuracy_per_epoch") or []
            if t.state == TrialState.COMPLETE and "accuracy" in t.user_attrs:
                return t
            if t.state == TrialState.PRUNED and curve:
                return t
            if t.state == TrialState.RUNNING and (token == self.claims.token
                                                  or not self.shared):
                return None
            if t.state != TrialState.RUNNING:
                if self.claims.take_over(key, owner, trial.number):
                    return None
            else:
                log.info("trial %d waits for trial %d, which trains the same network",
                         trial.number, owner)
                time.sleep(POLL_S)
                with self.mutex():
                    self.reap()
            owner, token = self.claims.claim(key, trial.number)
        return None


def _retry_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Optuna's stale-trial callback (runs under the mutex, from :meth:`StudySession.reap`):
    enqueue the trial once more, and record it as interrupted and requeued."""
    before = len(study.get_trials(deepcopy=False))
    with _quiet():
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, trial)
    if len(study.get_trials(deepcopy=False)) == before:
        log.warning("trial %d went stale again; not retried a second time", trial.number)
        return
    for attr in (STALE_ATTR, REQUEUED_ATTR):
        study.set_user_attr(attr, sorted({*study.user_attrs.get(attr, []), trial.number}))
    log.warning("trial %d's driver stopped beating; enqueued again", trial.number)


@contextmanager
def _quiet() -> Iterator[None]:
    """Optuna warns that heartbeats are experimental and meant for ``Study.optimize``; this
    engine's own heartbeat thread is the ask/tell counterpart (module docstring)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        yield


def requeue_interrupted(study: optuna.Study, *, running: bool = True,
                        carry: tuple[str, ...] = ()) -> int:
    """Enqueue every interrupted trial again (once: a trial already requeued is not requeued
    twice), with its parameters and the user attributes ``carry`` names that it holds (what it
    was enqueued with: :func:`nas.engine.recorder.carried`); with ``running``, first fail the
    trials a dead driver left RUNNING (only right when no other driver can be running them: a
    journal study)."""
    done = set(study.user_attrs.get(REQUEUED_ATTR, []))
    stale = set(study.user_attrs.get(STALE_ATTR, []))
    n = 0
    for t in study.get_trials(deepcopy=False):
        is_running = running and t.state == TrialState.RUNNING
        interrupted = t.state == TrialState.FAIL and (
            t.user_attrs.get("fail_reason") == INTERRUPTED or t.number in stale)
        if not (is_running or interrupted) or t.number in done:
            continue
        if is_running:
            stale.add(t.number)
            study.set_user_attr(STALE_ATTR, sorted(stale))
            study.tell(t.number, state=TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number,
                                                      **carried(t, carry)},
                                skip_if_exists=False)
        done.add(t.number)
        n += 1
    if n:
        study.set_user_attr(REQUEUED_ATTR, sorted(done))
        log.info("%d interrupted trial(s) enqueued again", n)
    return n
