"""Stage 2: grid-search the compound-scaling coefficients (EfficientNet Sec. 3.3, Eq. 3).

For every (alpha, beta, gamma) the grid and its constraint keep (:mod:`gridsearch.grid`; by
default the points whose measured MACs ratio is within ``--tolerance`` of 2^phi), at the given
phi (default 1, "assuming twice more resources available"): scale the base with
:func:`space.compound`, count the scaled network's MACs with fvcore at its own (scaled)
deployment resolution and record the ratio to the base's beside the formula's
``(alpha beta^2 gamma^2)^phi`` (channel and repeat rounding moves it), then train it on stage 1's
proxy task with the proxy resolution scaled by ``gamma^phi``. The point with the best validation
accuracy wins (ties: fewer MACs); ``select='reward'`` uses stage 1's objective
``ACC x (MACs/T)^-0.07`` with ``T = base MACs x 2^phi`` instead.

The grid's points can be *raced* and the best of them *retrained over seeds*, with the engine's
fidelity ladder and finalists (:mod:`nas.engine.fidelity`, :mod:`nas.engine.finalists`), as in
stage 1: with ``rungs`` every point reports its reward after each epoch and the ``asha`` pruner
keeps the best 1/``reduction_factor`` at each rung (default 3: it stops the worst two thirds);
then the top ``finalists`` distinct points (by reward)
are trained again with ``finalist_seeds`` fresh seeds, and the chosen point is the finalist with
the best **mean** accuracy (or reward, ``select='reward'``) over those seeds, not the luckiest
single training.

``compare_single`` adds the paper's Fig. 3/Table 3 comparison: depth only, width only and
resolution only, each solved for the chosen compound point's measured MACs (within
``--tolerance`` where the rounding allows, and flagged where it does not), all four trained over
``compare_seeds`` seeds, then compared by mean and Welch's t (:mod:`gridsearch.compare`). With a
grid the comparison is the run's third phase (:mod:`gridsearch.phases`, after the search and
the finalists, :mod:`nas.engine.phases`), planned in the same study once they have chosen the
point.

The points are the trials of one Optuna study ``stage2``, all enqueued up front with fixed
parameters (:mod:`gridsearch.plan`); :class:`Stage2` says what one point's trial is, and the
engine (:mod:`nas.engine`) runs them, with stage 1's resume, reuse and backends: a finished point
is never trained again, an interrupted one is enqueued again on ``--resume``, and two points
whose scaled networks train identically (same architecture, same proxy resolution) share one
training run. The outputs are :mod:`gridsearch.outputs`.

``latency`` (``gridsearch --latency``) times the emitted family on this machine once the run is
done (:mod:`gridsearch.latency`): it changes what is reported, not what is trained.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import optuna
from optuna.trial import FrozenTrial

from nas.backends import BackendConfig
from nas.engine import Candidate, run_study
from nas.engine.phases import FINALISTS, SEARCH
from nas.engine.recorder import FINISHED, interrupted_numbers
from nas.evaluate import ProxyConfig, evaluate_proxy
from space import ArchSpec, Counts, compound, count_fvcore, save_spec
from space.errors import checked
from space.objective import Objective
from space.resolve import resolve_spec
from space.scaling import round_resolution
from space.spec import load_spec

from .config import SELECTORS, GridSearchConfig, default_proxy  # noqa: F401 (re-exported)
from .family import available_memory, check_scale
from .grid import Enumeration, Point
from .measure import MacsRatio
from .outputs import choose_point, finalists_done, write_grid, write_outputs
from .phases import COMPARE_SINGLE
from .plan import (ENQUEUE_ATTRS, SINGLE_DIMENSION, Job, compare_jobs, enqueue_missing, job_key,
                   plan, suggest_job, waiting_count)

log = logging.getLogger(__name__)

__all__ = ["STUDY_NAME", "BASE_FILE", "SELECTORS", "GridSearchConfig", "GridSearchResult",
           "PointTask", "Stage2", "default_proxy", "point_task", "reward_objective",
           "run_gridsearch"]

STUDY_NAME = "stage2"
BASE_FILE = "base.json"
@dataclass
class GridSearchResult:
    run_dir: Path
    coefficients: dict[str, Any] | None
    family: list[ArchSpec]
    enumeration: Enumeration | None
    interrupted: bool = False


def reward_objective(base_macs: int, phi: float) -> Objective:
    """Stage 1's soft objective with T = the base's MACs x 2^phi."""
    return Objective(target=max(1, int(round(base_macs * 2.0 ** phi))))


class PointTask(NamedTuple):
    """What one point trains: the scaled network at deployment (what is counted), the network
    that trains (with the proxy's batch-norm momentum), the proxy task at its scaled
    resolution, and the reuse key the engine draws the point's seed from."""

    spec: ArchSpec
    trained: ArchSpec
    proxy: ProxyConfig
    key: str


def point_task(base: ArchSpec, point: Point, phi: float, proxy: ProxyConfig, *,
               name: str | None = None) -> PointTask:
    """``compound(base, alpha, beta, gamma, phi)`` trained on ``proxy`` at
    ``round(proxy.resolution x gamma^phi)``; two points whose networks train identically (same
    architecture, same proxy resolution) get the same key, and so share one training."""
    spec = compound(base, point.alpha, point.beta, point.gamma, phi, name=name)
    proxy = replace(proxy, resolution=round_resolution(proxy.resolution, point.gamma ** phi))
    bn = proxy.bn_momentum  # the evaluator trains with it: the reuse key must say so
    trained = spec if bn is None else spec.replace(bn_momentum=bn)
    return PointTask(spec, trained, proxy,
                     trained.with_task(resolution=proxy.resolution).arch_hash())


class Stage2:
    """A stage-2 trial is one point: scale the base, count it with fvcore, train it, score it."""

    name = "2"
    label = "point"
    study_name = STUDY_NAME
    directions = ["maximize"]
    pruner = "none"  # every point trains fully, unless raced on a ladder (rungs)
    reports_epochs = False
    enqueued_only = True  # every trial is an enqueued point: none is ever sampled
    before_search = None  # nothing to do before the grid's points
    finalist_evaluate = None  # the finalists train as the points do
    enqueue_attrs = ENQUEUE_ATTRS  # a point's coordinates and replicate (plan.job_attrs)
    phases = (SEARCH, FINALISTS, COMPARE_SINGLE)  # nas.engine.phases

    def __init__(self, config: GridSearchConfig, *, base: ArchSpec | None = None,
                 count: Callable[[ArchSpec], Counts] = count_fvcore) -> None:
        self.config = config
        self.count = count
        self.proxy = config.proxy
        self.seed = config.seed
        self.base = base
        self.measure: MacsRatio | None = None
        self.enum: Enumeration | None = None
        self.job_list: list[Job] = []
        self.jobs: dict[str, Job] = {}
        self.compare: list[Job] = []  # --compare-single's points, once planned
        self.finalists = config.finalist_plan()
        ladder = config.ladder()
        if ladder is not None:  # raced: reward after every epoch, ASHA at the rungs
            self.ladder = ladder
            self.pruner, self.reports_epochs = "asha", True
        self.scale_checked = False
        if base is not None:
            self._check_scale()
        if base is not None or config.grid.constraint == "formula":
            self._plan()  # validates the grid before anything is written

    def _check_scale(self) -> None:
        """phi and the family against the base (before anything is built or written)."""
        c = self.config
        check_scale(self.base, c.scale_point(), c.phi, family=tuple(c.family),
                    times_family=c.latency is not None, memory=available_memory())
        self.scale_checked = True

    def _plan(self) -> None:
        """The points to train first: with the base known, the measured constraint and the
        comparison of given coefficients can be planned too."""
        if self.base is not None:
            self.measure = MacsRatio(self.base, self.config.phi)
        self.enum, jobs = plan(self.config, measure=self.measure)
        self.compare = jobs if self.config.coefficients is not None else []
        self._set_jobs(jobs)

    def _set_jobs(self, jobs: Sequence[Job]) -> None:
        self.job_list = list(dict.fromkeys(jobs))
        self.jobs = {j.key: j for j in self.job_list}

    # ------------------------------------------------------------------ the study
    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def make_sampler(self, seed: int | None) -> Any:
        return optuna.samplers.RandomSampler(seed=seed)  # never asked: all enqueued

    def trains(self) -> bool:
        # a grid always trains; given coefficients only for --compare-single
        return self.config.coefficients is None or self.config.compare_single

    def setup(self, run_dir: Path, *, resume: bool) -> None:
        """The base: the run's own base.json on resume, else resolved and saved there."""
        if resume:
            self.base = load_spec(run_dir / BASE_FILE)
        elif self.base is None:
            self.base = resolve_spec(self.config.base)
        if resume or not self.scale_checked:  # a base given to Stage2 was checked there
            self._check_scale()
        self.base_counts = self.count(self.base)
        self._plan()
        if not resume:
            save_spec(self.base, run_dir / BASE_FILE)
        self.objective = reward_objective(self.base_counts.macs, self.config.phi)

    def prepare_study(self, study: optuna.Study, *, resume: bool) -> None:
        """Enqueue the points not in the study yet. A resumed study may hold the comparison's
        points (an earlier session's compare-single phase planned them): they are planned
        again first, so that the points waiting there are points of this run."""
        if resume:
            self.plan_comparison(study)
        enqueue_missing(study, self.job_list)

    def grid_finished(self, study: optuna.Study) -> bool:
        """Whether every grid point has finished (so the chosen point is final): a trial
        that completed or failed on its own; an interrupted one is trained again first."""
        skip = interrupted_numbers(study)
        done = {job_key(t) for t in study.get_trials(deepcopy=False, states=FINISHED)
                if t.number not in skip}
        return self.enum is not None and all(j.key in done for j in self.job_list
                                             if j.kind == "compound" and j.replicate == 0)

    def comparison_due(self, study: optuna.Study) -> FrozenTrial | None:
        """The chosen compound point when ``--compare-single``'s points are to be planned for it
        now (the grid and the finalists have finished, and they are not planned yet)."""
        if not self.config.compare_single or self.compare or not self.grid_finished(study):
            return None
        if self.finalists.enabled and not finalists_done(study, self.finalists):
            return None  # the comparison is for the finalists' winner
        return choose_point(study, self.config)[0]

    def plan_comparison(self, study: optuna.Study) -> bool:
        """Add ``--compare-single``'s points for the chosen compound point once the grid has
        finished; True when they were added now."""
        chosen = self.comparison_due(study)
        if chosen is None:
            return False
        ua = chosen.user_attrs
        self.compare, _ = compare_jobs(self.config, Point(ua["alpha"], ua["beta"], ua["gamma"]),
                                       self.measure)
        self._set_jobs([*self.job_list, *self.compare])
        return True

    def budget(self, study: optuna.Study) -> tuple[int | None, int | None, float | None]:
        total = len(self.job_list)
        if self.config.compare_single and not self.compare:  # planned after the grid
            total += (1 + len(SINGLE_DIMENSION)) * self.config.compare_seeds - 1
        return waiting_count(study), total, None

    # ------------------------------------------------------------------ one point
    def propose(self, trial: optuna.Trial) -> Candidate:
        job = replace(suggest_job(trial), replicate=int(trial.user_attrs.get("replicate", 0)))
        if job.key not in self.jobs:  # only enqueued points run; a sampled one is a bug
            raise ValueError(f"trial {trial.number} holds {job.key!r}, not a point of this run")
        phi, p = self.config.phi, job.point
        task = point_task(self.base, p, phi, self.proxy,
                          name=f"{self.base.name}-{job.kind}-phi{phi:g}")
        spec, trained, proxy, train_key = task
        counts = self.count(spec)
        if job.replicate:  # another seed of the same network: its own seed, never reused
            train_key = f"{train_key}#seed{job.replicate}"
        # --compare-single's networks train fully (never raced), and never take over a raced
        # grid training of the same network, which the ladder may have stopped early
        compared = job.kind != "compound" or job.replicate > 0
        if compared and self.config.rungs is not None and not job.replicate:
            train_key = f"{train_key}#unraced"
        attrs = {"kind": job.kind, "replicate": job.replicate, "alpha": p.alpha, "beta": p.beta,
                 "gamma": p.gamma, "phi": phi,
                 "product": p.product, "depth": p.alpha ** phi, "width": p.beta ** phi,
                 "resolution": spec.resolution, "proxy_resolution": proxy.resolution,
                 "macs": counts.macs, "params": counts.params,
                 "macs_ratio": counts.macs / self.base_counts.macs,
                 "formula_ratio": p.product ** phi, "arch_hash": spec.arch_hash(),
                 # what fvcore saw but does not count (SiLU, sigmoid, mul, add), never hidden
                 "uncounted_ops": dict(counts.uncounted_ops)}
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        # (Candidate.finalist: trains to the top rung, never raced or pruned)
        return Candidate(spec=trained, macs=counts.macs, key=train_key, proxy=proxy,
                         finalist=compared)

    def score(self, trial: optuna.Trial, accuracy: float, cost: float) -> float:
        trial.set_user_attr("accuracy", accuracy)
        trial.set_user_attr("reward", self.objective.reward(accuracy, cost))  # cost: the MACs
        return accuracy

    def progress_text(self, study: optuna.Study) -> str:
        best, _ = choose_point(study, self.config)
        if best is None:
            return ""
        ua = best.user_attrs
        return (f"best acc {ua['accuracy']:.4f} at alpha {ua['alpha']:g} beta {ua['beta']:g} "
                f"gamma {ua['gamma']:g}")

    def describe(self, trial: FrozenTrial) -> str:
        return _describe(trial)

    def log_plan(self, study: optuna.Study, run_dir: Path, n_trials: int | None) -> None:
        _log_plan(self.config, self.base, self.base_counts, self.enum, self.job_list,
                  n_trials or 0, run_dir)

    # ------------------------------------------------------------------ outputs
    def write_outputs(self, study: optuna.Study, run_dir: Path, *, final: bool,
                      interrupted: bool = False, backend: dict[str, Any] | None = None
                      ) -> GridSearchResult | None:
        """grid.csv after every point; at the final write everything else (coefficients,
        comparison, family), returning the run's result."""
        if not final:
            write_grid(study, run_dir)
            return None
        coefficients, family = write_outputs(
            study, self.config, self.base, self.base_counts, self.enum, self.job_list, run_dir,
            count=self.count, compare=self.compare,
            time_family=self._time_family(study, run_dir, interrupted=interrupted))
        if coefficients is None:
            log.warning("no grid point finished; nothing to emit")
        return GridSearchResult(run_dir=run_dir, coefficients=coefficients, family=family,
                                enumeration=self.enum, interrupted=interrupted)

    def _time_family(self, study: optuna.Study, run_dir: Path, *, interrupted: bool) -> bool:
        """Whether this final write times the family (``--latency``): once per run, at its
        last final write; not while a ``--compare-single`` pass is still to follow (the study
        is run again for it, and times the family at its end), nor after a Ctrl-C."""
        if self.config.latency is None:
            return False
        if interrupted:
            log.warning("latency: the family was not timed, as the run was interrupted; "
                        "gridsearch --resume --out %s times it", run_dir)
            return False
        if self.comparison_due(study) is not None:
            log.info("latency: the family is timed after the --compare-single networks")
            return False
        return True


def run_gridsearch(config: GridSearchConfig, *, out: str | Path | None = None,
                   resume: bool = False, storage: str | None = None,
                   base: ArchSpec | None = None,
                   evaluate: Callable[..., Any] | None = None,
                   count: Callable[[ArchSpec], Counts] = count_fvcore,
                   backend: BackendConfig | None = None) -> GridSearchResult:
    """Run (or resume) stage 2 and write the run folder.

    ``base`` overrides resolving ``config.base`` (a fresh run only; a resumed run reads the
    ``base.json`` it saved). ``evaluate`` and ``count`` are injectable for tests; the defaults
    train on the proxy task (:func:`nas.evaluate.evaluate_proxy`) and count with fvcore.
    ``backend`` says where the points train (default: here, one at a time; ``ray``: as Ray Tune
    trials, see :mod:`nas.backends`).
    """
    if base is None and not resume:  # resolved here, so a bad base or grid writes nothing
        base = resolve_spec(config.base)
    if config.latency is not None:  # so does --latency-runtime onnxruntime without the extra
        config.latency.device()
    stage = Stage2(config, base=base, count=count)
    return run_study(stage, out=out, resume=resume, storage=storage, backend=backend,
                     evaluate=evaluate or evaluate_proxy).result


def _log_plan(config: GridSearchConfig, base: ArchSpec, base_counts: Counts,
              enum: Enumeration | None, jobs: Sequence[Job], todo: int, run_dir: Path) -> None:
    if enum is not None:
        g = config.grid
        log.info("stage 2: grid alpha %s beta %s gamma %s step %g: %d points, %d kept with "
                 "|alpha*beta^2*gamma^2 - %g| <= %g", g.alpha_range, g.beta_range,
                 g.gamma_range, g.step, enum.points_total, enum.points_kept, g.target,
                 g.tolerance)
    else:
        c = config.coefficients
        log.info("stage 2: given coefficients alpha %g beta %g gamma %g", c.alpha, c.beta,
                 c.gamma)
    log.info("stage 2: base %s (%.1f MMACs at %d px), phi %g, %d point(s) in the run, %d to "
             "train now, rungs %s, then %s, run folder %s", base.name, base_counts.macs / 1e6,
             base.resolution, config.phi, len(jobs), todo,
             "none" if config.rungs is None else config.ladder().describe(),
             config.finalist_plan().describe(), run_dir, extra=checked())


def _describe(trial: FrozenTrial) -> str:
    ua = trial.user_attrs

    def g(k: str) -> str:
        return f"{ua[k]:g}" if k in ua else "?"

    acc = f"{ua['accuracy']:.4f}" if "accuracy" in ua else "-"
    secs = trial.duration.total_seconds() if trial.duration else 0.0
    reused = f" (reused point {ua['reused_from']})" if "reused_from" in ua else ""
    return (f"point {trial.number} {ua.get('kind', '?')} {trial.state.name} alpha {g('alpha')} "
            f"beta {g('beta')} gamma {g('gamma')}: acc {acc}, {ua.get('macs', 0) / 1e6:.1f} "
            f"MMACs (x{ua.get('macs_ratio', math.nan):.3f} measured, "
            f"x{ua.get('formula_ratio', math.nan):.3f} formula), {secs:.1f}s{reused}")
