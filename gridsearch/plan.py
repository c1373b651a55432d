"""What a stage-2 run trains: its points, as Optuna trials with fixed parameters.

A point is a scaling kind (``compound``, or the single-dimension ``depth``/``width``/
``resolution`` of the paper's Fig. 3 / Table 3) and its coefficients. Every point is enqueued up
front with fixed parameters, so the study's trials are the points; the parameters' distributions
never change with the grid, so a resumed run may add points (``--compare-single``) and Optuna's
own tools show the coefficients. A point's coordinates are also its enqueued trial's user
attributes, so a waiting trial is known by public API alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from nas.engine.recorder import interrupted_numbers

from .grid import Enumeration, Point, enumerate_grid

if TYPE_CHECKING:
    import optuna

    from .search import GridSearchConfig

__all__ = ["SINGLE_DIMENSION", "KINDS", "Job", "plan", "job_params", "suggest_job", "job_key",
           "enqueue_missing", "waiting_count"]

SQRT2 = math.sqrt(2.0)
# The single-dimension scalings of the paper's Fig. 3 / Table 3, as coefficients: each alone
# multiplies the MACs by 2 per unit of phi, like the compound point.
SINGLE_DIMENSION: dict[str, Point] = {
    "depth": Point(2.0, 1.0, 1.0),
    "width": Point(1.0, SQRT2, 1.0),
    "resolution": Point(1.0, 1.0, SQRT2),
}
KINDS = ("compound", *SINGLE_DIMENSION)
MAX_COEFFICIENT = 1000.0
COORDINATES = ("kind", "alpha", "beta", "gamma")


@dataclass(frozen=True)
class Job:
    """One point to train: a scaling kind and its coefficients."""

    kind: str
    point: Point

    @property
    def key(self) -> str:
        p = self.point
        return f"{self.kind} {p.alpha!r},{p.beta!r},{p.gamma!r}"


def plan(config: GridSearchConfig) -> tuple[Enumeration | None, list[Job]]:
    """The grid's enumeration (None for given coefficients) and the points to train, in order.
    Given coefficients are trained only when the single-dimension comparison needs them."""
    enum = None
    if config.coefficients is None:
        enum = enumerate_grid(config.grid)
        jobs = [Job("compound", p) for p in enum.points]
    else:
        jobs = [Job("compound", config.coefficients)] if config.compare_single else []
    if config.compare_single:
        jobs += [Job(kind, p) for kind, p in SINGLE_DIMENSION.items()]
    return enum, jobs


def job_params(job: Job) -> dict[str, Any]:
    return {"kind": job.kind, "alpha": job.point.alpha, "beta": job.point.beta,
            "gamma": job.point.gamma}


def suggest_job(trial: optuna.Trial) -> Job:
    kind = trial.suggest_categorical("kind", KINDS)
    alpha, beta, gamma = (trial.suggest_float(n, 1.0, MAX_COEFFICIENT)
                          for n in ("alpha", "beta", "gamma"))
    return Job(str(kind), Point(alpha, beta, gamma))


def job_key(t: Any) -> str | None:
    """The point a trial holds (its params, else the user attributes it was enqueued with)."""
    coords = t.params if all(k in t.params for k in COORDINATES) else t.user_attrs
    if not all(k in coords for k in COORDINATES):
        return None
    return Job(coords["kind"], Point(coords["alpha"], coords["beta"], coords["gamma"])).key


def enqueue_missing(study: optuna.Study, jobs: Sequence[Job]) -> int:
    """Enqueue every job that has no trial yet (finished, waiting or running); returns how
    many. Fresh runs and resumed runs go through here alike."""
    skip = interrupted_numbers(study)
    have = {job_key(t) for t in study.get_trials(deepcopy=False) if t.number not in skip}
    n = 0
    for job in jobs:
        if job.key not in have:
            study.enqueue_trial(job_params(job), user_attrs={**job_params(job),
                                "product": job.point.product}, skip_if_exists=False)
            n += 1
    return n


def waiting_count(study: optuna.Study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
