"""What a stage-2 run trains: its points, as Optuna trials with fixed parameters.

A point is a scaling kind (``compound``, or the single-dimension ``depth``/``width``/
``resolution`` of the paper's Fig. 3 / Table 3), its coefficients and a replicate (the seed
index: replicate 0 is the grid's own training, 1..S-1 train the same network again with other
seeds for ``--compare-single``). Every point is enqueued with fixed parameters, so the study's
trials are the points; the parameters' distributions never change with the grid, so a resumed run
may add points (``--compare-single``) and Optuna's own tools show the coefficients. A point's
coordinates (and its replicate) are also its enqueued trial's user attributes, so a waiting trial
is known by public API alone.

``--compare-single`` compares at the *same measured MACs*: once the compound point is chosen (at
once for given coefficients, after the grid otherwise), :func:`compare_jobs` solves each single
coefficient for the chosen point's measured ratio (:func:`gridsearch.measure.solve_single`) and
plans the compound point and the three singles over the same seed indices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from nas.engine.recorder import interrupted_numbers

from .grid import Enumeration, Point, enumerate_grid
from .measure import SINGLE_AXES, MacsRatio, Solved, solve_single

if TYPE_CHECKING:
    import optuna

    from .config import GridSearchConfig

__all__ = ["SINGLE_DIMENSION", "KINDS", "ENQUEUE_ATTRS", "Job", "plan", "compare_jobs",
           "job_params", "job_attrs", "suggest_job", "job_key", "enqueue_missing",
           "waiting_count"]

# The single-dimension scalings of the paper's Fig. 3 / Table 3: depth (alpha), width (beta) or
# resolution (gamma) alone, each solved for the compound point's measured MACs.
SINGLE_DIMENSION = tuple(SINGLE_AXES)
KINDS = ("compound", *SINGLE_DIMENSION)
MAX_COEFFICIENT = 1000.0
COORDINATES = ("kind", "alpha", "beta", "gamma")
# the user attributes a point's trial is enqueued with (:func:`job_attrs`): what its retry and
# its finalist runs carry (Stage2.enqueue_attrs)
ENQUEUE_ATTRS = (*COORDINATES, "replicate", "product")


@dataclass(frozen=True)
class Job:
    """One point to train: a scaling kind and its coefficients."""

    kind: str
    point: Point
    replicate: int = 0  # seed index: 0 is the grid's training, 1.. are --compare-single's

    @property
    def key(self) -> str:
        p = self.point
        key = f"{self.kind} {p.alpha!r},{p.beta!r},{p.gamma!r}"
        return key if self.replicate == 0 else f"{key} #{self.replicate}"


def plan(config: GridSearchConfig, *, measure: MacsRatio | None = None
         ) -> tuple[Enumeration | None, list[Job]]:
    """The grid's enumeration (None for given coefficients) and the points to train first, in
    order. The measured constraint needs ``measure`` (the base's :class:`MacsRatio` at phi).
    Given coefficients are trained only when the single-dimension comparison needs them (and
    ``measure`` is there to solve it); a grid's comparison waits for its chosen point."""
    if config.coefficients is None:
        enum = enumerate_grid(config.grid, measure=measure, phi=config.phi)
        return enum, [Job("compound", p) for p in enum.points]
    if config.compare_single and measure is not None:
        return None, compare_jobs(config, config.coefficients, measure)[0]
    return None, []


def compare_jobs(config: GridSearchConfig, point: Point, measure: MacsRatio
                 ) -> tuple[list[Job], list[Solved]]:
    """``--compare-single``'s points for the compound ``point``: it and the depth-, width- and
    resolution-only points solved for its measured MACs ratio, each over replicates
    0..compare_seeds-1."""
    goal = measure(point)
    solved = [solve_single(measure, kind, goal) for kind in SINGLE_DIMENSION]
    seeds = range(config.compare_seeds)
    jobs = [Job("compound", point, r) for r in seeds]
    jobs += [Job(s.kind, s.point, r) for s in solved for r in seeds]
    return jobs, solved


def job_params(job: Job) -> dict[str, Any]:
    """The trial's fixed parameters (the replicate is a user attribute: it is no coordinate)."""
    return {"kind": job.kind, "alpha": job.point.alpha, "beta": job.point.beta,
            "gamma": job.point.gamma}


def job_attrs(job: Job) -> dict[str, Any]:
    """The user attributes a point's trial is enqueued with (:data:`ENQUEUE_ATTRS`), so a
    waiting trial is known by public API alone."""
    return {**job_params(job), "replicate": job.replicate, "product": job.point.product}


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
    key = Job(coords["kind"], Point(coords["alpha"], coords["beta"], coords["gamma"]),
              int(t.user_attrs.get("replicate", 0))).key
    if t.user_attrs.get("finalist"):  # a finalist's run of its point (nas.engine.finalists)
        key = f"{key} finalist #{t.user_attrs.get('finalist_seed')}"
    return key


def enqueue_missing(study: optuna.Study, jobs: Sequence[Job]) -> int:
    """Enqueue every job that has no trial yet (finished, waiting or running); returns how
    many. Fresh runs and resumed runs go through here alike."""
    skip = interrupted_numbers(study)
    have = {job_key(t) for t in study.get_trials(deepcopy=False) if t.number not in skip}
    n = 0
    for job in jobs:
        if job.key not in have:
            study.enqueue_trial(job_params(job), user_attrs=job_attrs(job),
                                skip_if_exists=False)
            n += 1
    return n


def waiting_count(study: optuna.Study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
