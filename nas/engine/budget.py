"""The run's budget: one wall-time target for the search and the finalists together.

``--timeout`` bounds the search alone, and the finalists (:mod:`.finalists`) train after it, so
on a slow machine a run overshoots whatever time it was given by the finalists' share. A run
budget (``budget`` seconds, counted from when the search phase starts in this session, as
``--timeout`` is) closes the search early enough to leave the finalists their expected time:
no search trial starts when

    now + one more search trial + the finalists' time  >  start + budget

Every figure comes from the study itself, so it holds on any machine and any backend:

- one more search trial: the median wall time of the search trials trained so far (pruned
  ones included: that is what the next trial costs on average);
- one finalist run: the median wall time of the stand-alone trainings that reached the top
  rung (finalist runs first, else the search's complete proxy trials; when the finalists train
  for another number of epochs than the search, ``--finalist-epochs``, the search trials' median
  time per epoch times the finalists' epochs);
- the finalists' time: the runs still to train, in waves of the trials the study has been
  seen running at once (:func:`concurrency`), times one finalist run.

Until a stand-alone training has finished there is no estimate, and the budget does not stop
the search (``--timeout`` and ``--trials`` still do). The finalists themselves are never cut:
the budget is a target the search plans by, not a limit that loses a decision.
"""
from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

if TYPE_CHECKING:  # light at import: the configs check a budget without optuna
    from optuna.trial import FrozenTrial

    from .finalists import FinalistPlan

__all__ = ["BudgetEstimate", "RunBudget", "check_budget", "concurrency", "estimate"]

log = logging.getLogger("nas.engine.driver")

REUSED = "reused_from"  # a trial that took an earlier training's result cost no training
EVALUATOR = "evaluator"  # who scored a search trial (proxy, or inherited supernet weights)
CURVE = "val_accuracy_per_epoch"  # a trial's accuracy after each epoch it trained (.recorder)


def check_budget(value: float | None) -> float | None:
    """``value`` seconds as a budget: None or 0 is none; else it must be a positive number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
            or math.isinf(value):
        raise ValueError(f"`budget >= 0` must hold (seconds of wall time for the search and "
                         f"the finalists together; 0 = none), but got budget={value!r}; pass "
                         f"e.g. --budget 780, or --budget 0 for none")
    return None if value == 0 else float(value)


def _seconds(t: FrozenTrial) -> float | None:
    """The trial's wall time (Optuna's ``duration``), None when unfinished or reused."""
    if t.duration is None or t.user_attrs.get(REUSED) is not None:
        return None
    return t.duration.total_seconds()


def _per_epoch(t: FrozenTrial) -> float | None:
    """The trial's wall time per epoch trained (None: unfinished, reused, or no curve)."""
    seconds, epochs = _seconds(t), len(t.user_attrs.get(CURVE) or ())
    return None if seconds is None or not epochs else seconds / epochs


def _median(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def concurrency(trials: Iterable[FrozenTrial]) -> int:
    """The most trials the study has been seen training at once (at least 1): how many
    finalist runs go in one wave, on any backend and with any number of drivers."""
    events: list[tuple[float, int]] = []
    for t in trials:
        if _seconds(t) is None:
            continue
        events += [(t.datetime_start.timestamp(), 1), (t.datetime_complete.timestamp(), -1)]
    most = now = 0
    for _, step in sorted(events):  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return max(most, 1)


@dataclass(frozen=True)
class BudgetEstimate:
    """What the study says the rest of the run costs (seconds; None: nothing measured yet)."""

    trial: float | None  # one more search trial
    finalist: float | None  # one finalist run (a stand-alone training to the top rung)
    runs_left: int  # finalist runs still to train
    at_once: int  # trials trained at once

    @property
    def finalists(self) -> float | None:
        """The finalists' time: the runs left, in waves of ``at_once``."""
        if self.runs_left == 0:
            return 0.0
        if self.finalist is None:
            return None
        return math.ceil(self.runs_left / self.at_once) * self.finalist


def estimate(trials: Sequence[FrozenTrial], plan: FinalistPlan) -> BudgetEstimate:
    """:class:`BudgetEstimate` from the study's ``trials`` and the finalists' ``plan``."""
    from optuna.trial import TrialState

    from .finalists import is_finalist

    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    search = [t for t in done if not is_finalist(t)]
    finalists = [t for t in done if is_finalist(t) and t.state == TrialState.COMPLETE]
    stand_alone = [t for t in search if t.state == TrialState.COMPLETE
                   and t.user_attrs.get(EVALUATOR, "proxy") == "proxy"]
    one = _median(map(_seconds, finalists))
    if one is None and plan.epochs is not None:  # the finalists train longer (or shorter)
        one = _median(_per_epoch(t) for t in stand_alone)
        one = None if one is None else one * plan.epochs
    elif one is None:
        one = _median(map(_seconds, stand_alone))
    left = max(plan.k * plan.seeds - len(finalists), 0) if plan.enabled else 0
    return BudgetEstimate(trial=_median(map(_seconds, search)), finalist=one, runs_left=left,
                          at_once=concurrency(trials))


@dataclass
class RunBudget:
    """``seconds`` of wall time from ``start`` (time.monotonic()) for the search and the
    finalists of ``plan``; :meth:`closes` says when the search must start no more trials."""

    seconds: float
    plan: FinalistPlan
    start: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic
    said: bool = False

    def closes(self, study: Any) -> bool:
        """True when one more search trial would leave the finalists less than their expected
        time (logged once, with the figures it rests on)."""
        e = estimate(study.get_trials(deepcopy=False), self.plan)
        need = e.finalists
        if need is None:  # no stand-alone training has finished: nothing to plan by
            return False
        left = self.start + self.seconds - self.clock()
        if left >= (e.trial or 0.0) + need:
            return False
        if not self.said:
            self.said = True
            log.info("the search stops here: %.0f s of the %.0f s budget left, and the "
                     "finalists need about %.0f s (%d run(s) of %.0f s, %d at a time) after one "
                     "more search trial of %.0f s; pass a larger --budget (or --budget 0) for "
                     "a longer search", max(left, 0.0), self.seconds, need, e.runs_left,
                     e.finalist or 0.0, e.at_once, e.trial or 0.0)
        return True
