"""A run's phases: what one :func:`nas.engine.run_study` call runs, in order.

A stage declares its phases (:attr:`nas.engine.Stage.phases`): stage 1 runs :data:`SEARCH`
then :data:`FINALISTS`; stage 2 adds its single-dimension comparison
(``gridsearch.phases.COMPARE_SINGLE``), planned once the grid and its finalists have chosen the
point. The driver runs them one after the other in one session of the study and stops at the
first one interrupted. Each phase plans from the study alone (what finished, what waits), so a
resumed run (``--resume``) goes through the same phases and each runs only what is left: a
phase whose trials have all finished plans nothing.

A phase is an object with a ``name`` and ``plan(stage, study, session, run_dir)``: it enqueues
what it runs (under the study's mutex, so two drivers never enqueue the same trials) and says
how to run it, as a :class:`Batch`, or None when it has nothing to run.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from .budget import RunBudget
from .finalists import (begun, enqueue_finalists, finalist_sources, plan_of, shortfall,
                        waiting_finalists)
from .trial import Batch, Phase, Stage

if TYPE_CHECKING:
    from pathlib import Path

    import optuna

    from .session import StudySession

# the phases are the driver's steps: they log as the driver (``nas.engine.driver``), as before
log = logging.getLogger("nas.engine.driver")

__all__ = ["Batch", "Phase", "SearchPhase", "FinalistsPhase", "SEARCH", "FINALISTS"]


@dataclass(frozen=True)
class SearchPhase:
    """The stage's own trials: what :meth:`Stage.prepare_study` enqueues, then what its
    sampler proposes within :meth:`Stage.budget`, and, for a stage with a ``run_budget``
    (seconds), no later than leaves the finalists their expected time (:mod:`.budget`). Once
    the finalists have begun, a stage that samples samples no more (a stage whose trials are
    all enqueued, stage 2, still runs what it enqueued)."""

    name: str = "search"

    def plan(self, stage: Stage, study: optuna.Study, session: StudySession,
             run_dir: Path) -> Batch:
        with session.mutex():  # two drivers of one study never enqueue the same points
            stage.prepare_study(study, resume=not session.created)
        n_trials, total, timeout = stage.budget(study)
        if begun(study) and n_trials != 0 and not stage.enqueued_only:
            log.warning("the finalists have begun, so the search is closed: no more %ss are "
                        "sampled (start a new run for a longer search)", stage.label)
            n_trials = 0
        stage.log_plan(study, run_dir, n_trials)
        before = stage.before_search
        seconds = getattr(stage, "run_budget", None)
        stop = None if seconds is None else RunBudget(seconds, plan_of(stage)).closes
        return Batch(n_trials=n_trials, total=total, timeout=timeout, stop=stop,
                     before=None if before is None else partial(before, study, run_dir))


@dataclass(frozen=True)
class FinalistsPhase:
    """The finalists (:mod:`.finalists`): enqueue the finalist runs still missing and run
    every enqueued one, unpruned and without the timeout. A stage without a plan runs none."""

    name: str = "finalists"

    def plan(self, stage: Stage, study: optuna.Study, session: StudySession,
             run_dir: Path) -> Batch | None:
        plan = plan_of(stage)
        if not plan.enabled:
            return None
        with session.mutex():  # two drivers of one study never enqueue the same runs
            added = enqueue_finalists(study, plan, carry=stage.enqueue_attrs)
        trials = study.get_trials(deepcopy=False)
        fewer = shortfall(trials, plan, label=stage.label)
        if fewer is not None:  # fewer distinct finished networks than --finalists asks for
            log.warning("%s", fewer)
        todo = waiting_finalists(study)
        if todo == 0:
            return None
        log.info("finalists: %d run(s) to train (%d enqueued now): the top %d distinct %ss x "
                 "%d seed(s), %s", todo, added, len(finalist_sources(trials)),
                 stage.label, plan.seeds, "at the top rung" if plan.epochs is None
                 else f"for {plan.epochs} epoch(s) each (--finalist-epochs)")
        return Batch(n_trials=todo, total=todo, enqueued_only=True, prune=False,
                     description=f"stage {stage.name} finalists",
                     evaluate=stage.finalist_evaluate)


SEARCH = SearchPhase()
FINALISTS = FinalistsPhase()
