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
stops the worst two thirds at each rung; then the top ``finalists`` distinct points (by reward)
are trained again with ``finalist_seeds`` fresh seeds, and the chosen point is the finalist with
the best **mean** accuracy (or reward, ``select='reward'``) over those seeds, not the luckiest
single training.

``compare_single`` adds the paper's Fig. 3/Table 3 comparison: depth only, width only and
resolution only, each solved for the chosen compound point's measured MACs (within
``--tolerance`` where the rounding allows, and flagged where it does not), all four trained over
``compare_seeds`` seeds, then compared by mean and Welch's t (:mod:`gridsearch.compare`). With a
grid the comparison is a second pass of the same study, planned once the grid has finished.

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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import optuna
from optuna.trial import FrozenTrial

from nas.backends import BackendConfig
from nas.engine import Candidate, FinalistPlan, Ladder, parse_rungs, run_study
from nas.engine.recorder import FINISHED, interrupted_numbers
from nas.evaluate import ProxyConfig, evaluate_proxy, stable_train
from nas.latency import LatencySettings
from nas.train import TrainConfig
from space import ArchSpec, Counts, compound, count_fvcore, save_spec
from space.errors import UnknownNameError, checked
from space.objective import Objective
from space.resolve import resolve_spec
from space.scaling import check_coefficients, round_resolution
from space.spec import load_spec

from .family import ROUNDINGS, available_memory, check_phis, check_scale
from .grid import Enumeration, Grid, Point
from .latency import DEFAULT_REPEATS
from .measure import MacsRatio
from .outputs import choose_point, finalists_done, write_grid, write_outputs
from .plan import (SINGLE_DIMENSION, Job, compare_jobs, enqueue_missing, job_key, plan,
                   suggest_job, waiting_count)

log = logging.getLogger(__name__)

__all__ = ["STUDY_NAME", "BASE_FILE", "SELECTORS", "GridSearchConfig", "GridSearchResult",
           "PointTask", "Stage2", "default_proxy", "point_task", "reward_objective",
           "run_gridsearch"]

STUDY_NAME = "stage2"
BASE_FILE = "base.json"
# How the winning point is chosen (results.store.rank_key: larger wins, ties to fewer MACs).
SELECTORS = ("accuracy", "reward")


def default_proxy() -> ProxyConfig:
    """Stage 2's proxy: stage 1's task and stable recipe (:func:`nas.evaluate.stable_train`:
    warm-up, label smoothing, clipping, zero-init of the last BN of each residual branch) with
    one epoch, because the grid holds ~100 points."""
    return ProxyConfig(train=stable_train(epochs=1))


@dataclass(frozen=True)
class GridSearchConfig:
    """Everything that decides what stage 2 trains; written to the run's ``config.json``."""

    base: str = "efficientnet-b0"
    phi: float = 1.0
    grid: Grid = field(default_factory=Grid)
    coefficients: Point | None = None
    select: str = "accuracy"
    compare_single: bool = False
    compare_seeds: int = 3
    family: tuple[int, int] = (0, 7)
    rounding: str = "paper"
    # The fidelity ladder (epochs after which points are compared; None: no racing, every
    # point trains fully) and the finalists: the top `finalists` distinct points retrained with
    # `finalist_seeds` seeds, the best mean wins (0: the grid's best single training wins).
    rungs: tuple[int, ...] | None = None
    finalists: int = 4
    finalist_seeds: int = 3
    seed: int | None = 0
    proxy: ProxyConfig = field(default_factory=default_proxy)
    # gridsearch --latency: time the emitted family on this machine with this setting, once, at
    # the run's final write (None: nothing is timed); `latency_repeats` timed passes per member.
    # Neither changes what is trained, so both may change on --resume.
    latency: LatencySettings | None = None
    latency_repeats: int = DEFAULT_REPEATS

    def __post_init__(self) -> None:
        if isinstance(self.phi, bool) or not isinstance(self.phi, (int, float)) \
                or not math.isfinite(self.phi) or self.phi < 0:
            raise ValueError(f"`phi >= 0` must hold, but got phi={self.phi!r}; pass e.g. --phi 1")
        if self.select not in SELECTORS:
            raise UnknownNameError(f"unknown --select {self.select!r}; known: "
                                   f"{', '.join(SELECTORS)}")
        ROUNDINGS.get(self.rounding)  # an unknown name lists the known ones
        self.finalist_plan()  # validates finalists, finalist_seeds
        if self.rungs is not None:
            object.__setattr__(self, "rungs",
                               parse_rungs(self.rungs, epochs=self.proxy.train.epochs))
        if isinstance(self.compare_seeds, bool) or not isinstance(self.compare_seeds, int) \
                or self.compare_seeds < 1:
            raise ValueError(f"`compare_seeds >= 1` must hold, but got "
                             f"compare_seeds={self.compare_seeds!r}; pass e.g. --compare-seeds 3")
        if self.compare_single and self.phi <= 0:
            raise ValueError(f"--compare-single needs `phi > 0` (at phi 0 every scaling is the "
                             f"base), but got phi={self.phi:g}; pass e.g. --phi 1")
        # the coefficients here; how far phi may go depends on the base, so it is checked
        # once, with the base (Stage2: gridsearch.family.check_scale)
        c = self.scale_point()
        check_coefficients(c.alpha, c.beta, c.gamma, 0)
        object.__setattr__(self, "family", check_phis(tuple(self.family)))
        if self.latency is not None and not isinstance(self.latency, LatencySettings):
            raise TypeError(f"latency must be a LatencySettings or None, but got "
                            f"{type(self.latency).__name__}; pass e.g. LatencySettings()")
        if isinstance(self.latency_repeats, bool) or not isinstance(self.latency_repeats, int) \
                or self.latency_repeats < 1:
            raise ValueError(f"`latency_repeats >= 1` must hold, but got "
                             f"latency_repeats={self.latency_repeats!r}; pass e.g. "
                             f"--latency-repeats {DEFAULT_REPEATS}")

    @property
    def selected_by(self) -> str:
        return "given" if self.coefficients is not None else self.select

    def scale_point(self) -> Point:
        """The point that scales the base furthest: the given coefficients, else the grid's
        largest corner (what phi is bounded by)."""
        if self.coefficients is not None:
            return self.coefficients
        g = self.grid
        return Point(g.alpha_range[1], g.beta_range[1], g.gamma_range[1])

    def finalist_plan(self) -> FinalistPlan:
        """The finalists (none for given coefficients: there is no grid to choose from)."""
        plan = FinalistPlan(self.finalists, self.finalist_seeds)
        return plan if self.coefficients is None else FinalistPlan(0, plan.seeds)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": 2, "base": self.base, "phi": self.phi, "grid": self.grid.to_dict(),
                "coefficients": None if self.coefficients is None else asdict(self.coefficients),
                "select": self.select, "compare_single": self.compare_single,
                "compare_seeds": self.compare_seeds, "family": list(self.family),
                "rounding": self.rounding,
                "rungs": None if self.rungs is None else list(self.rungs),
                "finalists": self.finalists, "finalist_seeds": self.finalist_seeds,
                "seed": self.seed, "proxy": self.proxy.to_dict(),
                "latency": None if self.latency is None else self.latency.to_dict(),
                "latency_repeats": self.latency_repeats}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GridSearchConfig:
        if str(d.get("stage", 2)) != "2" or "grid" not in d:
            raise ValueError(f"not a gridsearch run's config (stage={d.get('stage')!r}, "
                             f"expected 2); pass the --out folder of a gridsearch run")
        c = d.get("coefficients")
        return cls(base=d["base"], phi=d["phi"], grid=Grid.from_dict(d["grid"]),
                   coefficients=None if c is None else Point(**c), select=d["select"],
                   compare_single=d["compare_single"],
                   # runs saved before these settings compared one seed, rounded as the paper
                   compare_seeds=d.get("compare_seeds", 1), family=tuple(d["family"]),
                   rounding=d.get("rounding", "paper"),
                   # runs from before the ladder and the finalists had neither
                   rungs=None if d.get("rungs") is None else tuple(d["rungs"]),
                   finalists=d.get("finalists", 0), finalist_seeds=d.get("finalist_seeds", 3),
                   seed=d["seed"], proxy=ProxyConfig.from_dict(d["proxy"]),
                   # runs from before --latency timed nothing
                   latency=LatencySettings.from_dict(d.get("latency")),
                   latency_repeats=d.get("latency_repeats", DEFAULT_REPEATS))


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
        self.coefficients: dict[str, Any] | None = None
        self.family: list[ArchSpec] = []
        self.finalists = config.finalist_plan()
        if config.rungs is not None:  # raced: reward after every epoch, ASHA at the rungs
            self.ladder = Ladder(config.rungs)
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
                      interrupted: bool = False, backend: dict[str, Any] | None = None) -> None:
        if not final:
            write_grid(study, run_dir)
            return
        self.coefficients, self.family = write_outputs(
            study, self.config, self.base, self.base_counts, self.enum, self.job_list, run_dir,
            count=self.count, compare=self.compare,
            time_family=self._time_family(study, run_dir, interrupted=interrupted))
        if self.coefficients is None:
            log.warning("no grid point finished; nothing to emit")

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
    done = run_study(stage, out=out, resume=resume, storage=storage, backend=backend,
                     evaluate=evaluate or evaluate_proxy)
    if not done.interrupted and stage.plan_comparison(done.study):
        # the grid chose its point: --compare-single's points are a second pass of the study
        log.info("stage 2: comparing the chosen point with single-dimension scaling at the "
                 "same measured MACs over %d seed(s)", config.compare_seeds)
        done = run_study(stage, out=done.run_dir, resume=True, storage=storage,
                         backend=backend, evaluate=evaluate or evaluate_proxy)
    return GridSearchResult(run_dir=done.run_dir, coefficients=stage.coefficients,
                            family=stage.family, enumeration=stage.enum,
                            interrupted=done.interrupted)


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
             "none" if config.rungs is None else Ladder(config.rungs).to_text(),
             f"{config.finalists} finalist(s) x {config.finalist_seeds} seed(s)"
             if config.finalist_plan().enabled else "no finalists", run_dir, extra=checked())


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
