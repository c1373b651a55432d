"""The run's Optuna study: create it, reopen it on ``--resume``, requeue what was interrupted.

``--resume`` reopens the same study: finished trials are kept and never re-run; trials left
RUNNING by a killed driver, or interrupted by Ctrl-C, are marked failed and enqueued again with
the same parameters. Only Optuna's public API is used (``Study.tell`` by trial number for a
trial another process left RUNNING; study user attributes for the bookkeeping).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from results.rundir import open_storage, storage_url

from .recorder import INTERRUPTED, STALE_ATTR

log = logging.getLogger(__name__)

__all__ = ["open_study", "requeue_interrupted"]

REQUEUED_ATTR = "requeued"


def open_study(*, run_dir: Path, storage: str | None, study_name: str, directions: list[str],
               sampler: Any, pruner: Any, resume: bool) -> optuna.Study:
    url = storage_url(run_dir, storage)
    st = open_storage(url)
    exists = study_name in set(optuna.get_all_study_names(st))
    if exists and not resume:
        raise ValueError(f"study {study_name!r} already exists in {url}; pass --resume to "
                         f"continue it or --out NEW_DIR for a new run")
    if resume and not exists:
        raise ValueError(f"--resume found no study {study_name!r} in {url}; pass the --out of "
                         f"a run that started, or start a new one without --resume")
    study = optuna.create_study(storage=st, study_name=study_name, directions=directions,
                                sampler=sampler, pruner=pruner, load_if_exists=resume)
    if resume:
        if [d.name.lower() for d in study.directions] != directions:
            raise ValueError(f"study {study_name!r} in {url} optimizes "
                             f"{[d.name.lower() for d in study.directions]}, but this run "
                             f"needs {directions}; the sampler decides the directions: resume "
                             f"with the run's own --sampler")
        requeue_interrupted(study)
    return study


def requeue_interrupted(study: optuna.Study) -> int:
    """Fail trials a dead driver left RUNNING, and enqueue every interrupted trial again
    (once: a trial already requeued is not requeued twice)."""
    done = set(study.user_attrs.get(REQUEUED_ATTR, []))
    stale = set(study.user_attrs.get(STALE_ATTR, []))
    n = 0
    for t in study.get_trials(deepcopy=False):
        running = t.state == TrialState.RUNNING
        interrupted = t.state == TrialState.FAIL and (
            t.user_attrs.get("fail_reason") == INTERRUPTED or t.number in stale)
        if not (running or interrupted) or t.number in done:
            continue
        if running:
            stale.add(t.number)
            study.set_user_attr(STALE_ATTR, sorted(stale))
            study.tell(t.number, state=TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, **_carried(t)},
                                skip_if_exists=False)
        done.add(t.number)
        n += 1
    if n:
        study.set_user_attr(REQUEUED_ATTR, sorted(done))
        log.info("resume: %d interrupted trial(s) enqueued again", n)
    return n


def _carried(t: Any) -> dict[str, Any]:
    """User attributes an enqueued trial was created with that its retry needs again
    (stage 2's point coordinates, an --enqueue name)."""
    keep = ("kind", "alpha", "beta", "gamma", "product", "enqueued")
    return {k: t.user_attrs[k] for k in keep if k in t.user_attrs}
