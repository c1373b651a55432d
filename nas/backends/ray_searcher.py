"""The ``ray`` backend's Tune searcher (:mod:`.ray_tune` has the design): :class:`StudySearcher`
asks the Optuna study for each Tune trial and records the trial's reports into it through the
engine's :class:`nas.engine.TrialRunner`, and :class:`RetryCallback` tells it when Tune
starts a trial again after its worker died, or gives up on one.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
from ray import tune
from ray.tune.search import Searcher

from nas.engine.fidelity import FINALIST
from nas.engine.recorder import INTERRUPTED, record
from nas.engine.trial import Candidate, Outcome, TrialRunner, tell

log = logging.getLogger(__name__)

__all__ = ["StudySearcher", "RetryCallback"]


@dataclass
class _Live:
    """A Tune trial in flight and the Optuna trial it fills."""

    trial: optuna.Trial
    candidate: Candidate
    curve: list[float] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)
    reported: set[int] = field(default_factory=set)
    node: str | None = None
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)


class StudySearcher(Searcher):
    """A Tune searcher that asks the Optuna study (ask/tell) and records into it."""

    def __init__(self, study: optuna.Study, runner: TrialRunner, *, n_trials: int | None,
                 timeout: float | None, after_trial: Callable[[Any], None],
                 max_retries: int) -> None:
        super().__init__(metric="reward", mode="max")
        self.study = study
        self.runner = runner
        self.n_trials = n_trials
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.after_trial = after_trial
        self.max_retries = max_retries
        self.asked = 0
        self.finished = False
        self.live: dict[str, _Live] = {}
        self.retries: dict[int, int] = {}  # Optuna trial number -> retries
        self.exhausted: list[int] = []  # trials whose worker died more than max_retries times

    # Tune pickles its search algorithm into the experiment folder (tuner.pkl); the study is
    # the checkpoint here, and Tune's own restore is not used.
    def __getstate__(self) -> dict[str, Any]:
        return {"_metric": self._metric, "_mode": self._mode}

    def save(self, checkpoint_path: str) -> None:
        pass

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        return True

    def _budget_left(self) -> bool:
        if self.n_trials is not None and self.asked >= self.n_trials:
            return False
        return self.deadline is None or time.monotonic() < self.deadline

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        while self._budget_left():
            trial = self.runner.ask(self.study)
            if trial is None:  # a shared study's budget is spent
                break
            self.asked += 1
            got = self.runner.begin(trial)
            if isinstance(got, Outcome):  # not proposable, or a repeated architecture
                self._tell(trial, got)
                continue
            self.live[trial_id] = _Live(trial=trial, candidate=got)
            return {"number": trial.number, "spec": got.spec.to_dict(), "macs": got.macs,
                    "cost": got.cost,
                    "seed": got.seed, "proxy": got.proxy.to_dict(), FINALIST: got.finalist}
        self.finished = True
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        live = self.live.get(trial_id)
        if live is not None:
            self._record(live, result)

    def _record(self, live: _Live, result: dict[str, Any]) -> None:
        live.last = dict(result)
        if "node" in result and result["node"] != live.node:
            live.node = result["node"]
            record(live.trial, node=result["node"], ray_node_id=result.get("node_id"))
        if "accuracy" not in result or "epoch" not in result:
            return
        epoch = int(result["epoch"])
        live.curve = live.curve[:epoch - 1] + [float(result["accuracy"])]
        live.speeds = live.speeds[:epoch - 1] + [float(result.get("images_per_sec", 0.0))]
        if epoch not in live.reported:
            self.runner.record_epoch(live.trial, live.candidate, live.curve)
            live.reported.add(epoch)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        live = self.live.get(trial_id)
        if live is None:
            return
        if result:
            self._record(live, result)
        if error:  # RetryCallback.on_trial_error, called next, knows why
            return
        self.live.pop(trial_id)
        trial, last = live.trial, live.last
        if "fail_reason" in last:
            self._fail(live, str(last["fail_reason"]))
        elif not live.curve:
            self._fail(live, INTERRUPTED)
        elif int(last.get("epoch", 0)) >= live.candidate.proxy.train.epochs:
            done = [s for s in live.speeds if s > 0]
            self._tell(trial, self.runner.complete(
                trial, live.candidate, live.curve[-1],
                images_per_sec=sum(done) / len(done) if done else 0.0))
        else:  # stopped by the scheduler: pruned, as a local pruner would
            self._tell(trial, self.runner.pruned(trial, live.curve))

    def retried(self, trial_id: str, why: str) -> None:
        live = self.live.get(trial_id)
        if live is None:
            return
        live.retries += 1
        live.errors.append(why)
        self.retries[live.trial.number] = live.retries
        record(live.trial, retries=live.retries, retry_errors=list(live.errors))
        log.warning("trial %d: its worker died (%s); retry %d of %d", live.trial.number, why,
                    live.retries, self.max_retries)

    def errored(self, trial_id: str, why: str) -> None:
        live = self.live.pop(trial_id, None)
        if live is None:
            return
        self.exhausted.append(live.trial.number)
        self._fail(live, f"{why} (worker died {live.retries + 1} time(s); --max-retries "
                         f"{self.max_retries})")

    def close(self) -> bool:
        """Trials Tune left unfinished (the driver was stopped) are recorded as interrupted,
        so ``--resume`` runs them again; True if there were any."""
        left = list(self.live.values())
        self.live.clear()
        for live in left:
            self._fail(live, INTERRUPTED)
        return bool(left)

    def _fail(self, live: _Live, reason: str) -> None:
        if reason != INTERRUPTED:
            log.warning("%s %d failed: %s", self.runner.stage.label, live.trial.number, reason)
        self._tell(live.trial, Outcome.failed(reason))

    def _tell(self, trial: optuna.Trial, outcome: Outcome) -> None:
        self.after_trial(tell(self.study, trial, outcome))


def _why(trial: Any) -> str:
    """One line saying why a Tune trial's worker failed."""
    path = getattr(trial, "pickled_error_file", None)
    if path and os.path.exists(path):
        try:
            import ray.cloudpickle as cloudpickle

            with open(path, "rb") as f:
                exc = cloudpickle.load(f)
            cause = getattr(exc, "cause", None) or exc
            text = str(cause).strip().splitlines()
            return f"{type(cause).__name__}: {text[0] if text else ''}"[:300]
        except Exception:
            pass
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("Failure #")]
        if lines:
            return lines[0][:300]
    return "the trial's worker failed"


class RetryCallback(tune.Callback):
    """Tells the searcher when Tune retries a trial, and when it gives up on one."""

    def __init__(self, searcher: StudySearcher) -> None:
        self.searcher = searcher

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.searcher.retried(trial.trial_id, _why(trial))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.searcher.errored(trial.trial_id, _why(trial))
