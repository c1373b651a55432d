"""Stage 2's own phase (:mod:`nas.engine.phases`): ``--compare-single`` after the grid.

:class:`CompareSinglePhase` runs after the search and the finalists phases of a grid run: once
they have chosen the compound point, it plans that point and the three single-dimension points
solved for its measured MACs (:func:`gridsearch.plan.compare_jobs`), over ``compare_seeds``
seeds, in the same study, and trains them. Given coefficients plan them from the start (the
search phase trains them), and so does a resumed run whose study holds them
(``Stage2.prepare_study``; its points waiting there run in the search phase, as every stage-2
point is enqueued): then this phase has nothing to run.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from nas.engine.trial import Batch, Stage

from .plan import Job, enqueue_missing

if TYPE_CHECKING:
    from pathlib import Path

    import optuna

    from nas.engine.session import StudySession

    from .config import GridSearchConfig

# stage 2 logs under its front door's name, as a run has always printed it
log = logging.getLogger("gridsearch.search")

__all__ = ["CompareSinglePhase", "COMPARE_SINGLE"]


class ComparingStage(Stage, Protocol):
    """What the phase needs of its stage (:class:`gridsearch.search.Stage2`)."""

    config: GridSearchConfig
    job_list: list[Job]

    def plan_comparison(self, study: optuna.Study) -> bool:
        """Plan the comparison's points when it is due; True when planned now."""
        ...


@dataclass(frozen=True)
class CompareSinglePhase:
    """The phase (module docstring)."""

    name: str = "compare-single"

    def plan(self, stage: Stage, study: optuna.Study, session: StudySession,
             run_dir: Path) -> Batch | None:
        s = cast(ComparingStage, stage)  # the phase is stage 2's (Stage2.phases)
        with session.mutex():  # two drivers of one study never enqueue the same points
            if not s.plan_comparison(study):
                return None
            enqueue_missing(study, s.job_list)
        n_trials, total, timeout = s.budget(study)
        if not n_trials:
            return None
        log.info("stage 2: comparing the chosen point with single-dimension scaling at the "
                 "same measured MACs over %d seed(s)", s.config.compare_seeds)
        return Batch(n_trials=n_trials, total=total, timeout=timeout)


COMPARE_SINGLE = CompareSinglePhase()
