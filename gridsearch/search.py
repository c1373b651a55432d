"""Stage 2: grid-search the compound-scaling coefficients (EfficientNet Sec. 3.3, Eq. 3).

For every (alpha, beta, gamma) the grid and the constraint keep (:mod:`gridsearch.grid`), at the
given phi (default 1, "assuming twice more resources available"): scale the base with
:func:`space.compound`, count the scaled network's MACs with fvcore at its own (scaled)
deployment resolution and record the ratio to the base's beside the formula's
``(alpha beta^2 gamma^2)^phi`` (channel and repeat rounding moves it), then train it on stage 1's
proxy task with the proxy resolution scaled by ``gamma^phi``. The point with the best validation
accuracy wins (ties: fewer MACs); ``select='reward'`` uses stage 1's objective
``ACC x (MACs/T)^-0.07`` with ``T = base MACs x 2^phi`` instead.

``compare_single`` adds the paper's Fig. 3/Table 3 comparison: depth only (d = 2^phi), width only
(w = sqrt(2)^phi) and resolution only (r = sqrt(2)^phi) at the same MACs factor.

Storage and resume follow stage 1 (:mod:`nas.runs`): one Optuna study ``stage2`` in the run folder
whose trials are the points, all enqueued up front with fixed parameters. A finished point is
never trained again; a point interrupted by Ctrl-C or a killed driver is enqueued again on
``--resume``; two points whose scaled networks train identically (same architecture, same proxy
resolution) share one training run.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas import runs
from nas.backends import BackendConfig, Candidate, open_backend
from nas.evaluate import ProxyConfig, evaluate_proxy, trial_seed
from nas.objective import Objective
from nas.training import TrainConfig
from results.store import trial_rows, write_json, write_table
from space import ArchSpec, Counts, compound, count_fvcore, save_spec
from space.resolve import resolve_spec
from space.scaling import check_coefficients, round_resolution
from space.spec import load_spec

from .family import check_phis, scale_family, write_family
from .grid import Enumeration, Grid, Point, enumerate_grid

log = logging.getLogger(__name__)

STUDY_NAME = "stage2"
BASE_FILE = "base.json"
COEFFICIENTS_FILE = "coefficients.json"
GRID_TABLE = "grid"
SQRT2 = math.sqrt(2.0)

# The single-dimension scalings of the paper's Fig. 3 / Table 3, as coefficients: each alone
# multiplies the MACs by 2 per unit of phi, like the compound point.
SINGLE_DIMENSION: dict[str, Point] = {
    "depth": Point(2.0, 1.0, 1.0),
    "width": Point(1.0, SQRT2, 1.0),
    "resolution": Point(1.0, 1.0, SQRT2),
}
KINDS = ("compound", *SINGLE_DIMENSION)

# Batch-norm momentum (PyTorch convention) a point trains with on the proxy task. The paper's
# 0.01 (TF 0.99) lets the running statistics move ~1% per step, so after the proxy's ~100 steps
# eval-mode accuracy sits at chance: EfficientNet-B0, 1 epoch of 6000 Fashion-MNIST images at
# 32 px, scored 0.100 with 0.01 and 0.483 with 0.1 (BENCHMARKS_gridsearch.md). Training only:
# counted MACs and the emitted family keep the base's value; ``nas train --recipe fast`` uses 0.1
# for the same reason.
PROXY_BN_MOMENTUM = 0.1

# grid.csv: these first (the dashboard reads them by name), then the shared store's other columns.
GRID_COLUMNS = ["number", "state", "kind", "alpha", "beta", "gamma", "phi", "product", "depth",
                "width", "resolution", "proxy_resolution", "accuracy", "macs", "params",
                "macs_ratio", "formula_ratio", "reward", "duration_s", "node", "fail_reason",
                "arch_hash"]
POINT_ATTRS = ("kind", "alpha", "beta", "gamma", "phi", "product", "depth", "width", "resolution",
               "proxy_resolution", "macs_ratio", "formula_ratio")


def _by_accuracy(t: FrozenTrial) -> tuple[float, float, int]:
    return (t.user_attrs["accuracy"], -t.user_attrs["macs"], -t.number)


def _by_reward(t: FrozenTrial) -> tuple[float, float, int]:
    return (t.user_attrs["reward"], -t.user_attrs["macs"], -t.number)


# How the winning point is chosen: a sort key over finished compound trials (larger wins).
SELECTORS: dict[str, Callable[[FrozenTrial], tuple[float, float, int]]] = {
    "accuracy": _by_accuracy,
    "reward": _by_reward,
}


def default_proxy() -> ProxyConfig:
    """Stage 2's proxy: stage 1's task with one epoch, because the grid holds ~100 points.
    The warm-up matters most here: without it, at 0.05, EfficientNet-B0 itself reached only
    0.16-0.36 in one epoch over 3 seeds (0.47-0.60 with it), so the grid compared noise."""
    return ProxyConfig(train=TrainConfig(epochs=1, batch_size=64, lr=0.02, warmup_epochs=0.2))


@dataclass(frozen=True)
class GridSearchConfig:
    """Everything that decides what stage 2 trains; written to the run's ``config.json``."""

    base: str = "efficientnet-b0"
    phi: float = 1.0
    grid: Grid = field(default_factory=Grid)
    coefficients: Point | None = None
    select: str = "accuracy"
    compare_single: bool = False
    family: tuple[int, int] = (0, 7)
    seed: int | None = 0
    proxy: ProxyConfig = field(default_factory=default_proxy)

    def __post_init__(self) -> None:
        if isinstance(self.phi, bool) or not isinstance(self.phi, (int, float)) \
                or not math.isfinite(self.phi) or self.phi < 0:
            raise ValueError(f"`phi >= 0` must hold, but got phi={self.phi!r}; pass e.g. --phi 1")
        if self.select not in SELECTORS:
            raise KeyError(f"unknown --select {self.select!r}; known: {', '.join(SELECTORS)}")
        if self.coefficients is not None:
            c = self.coefficients
            check_coefficients(c.alpha, c.beta, c.gamma, self.phi)
        object.__setattr__(self, "family", check_phis(tuple(self.family)))

    @property
    def selected_by(self) -> str:
        return "given" if self.coefficients is not None else self.select

    def to_dict(self) -> dict[str, Any]:
        return {"stage": 2, "base": self.base, "phi": self.phi, "grid": self.grid.to_dict(),
                "coefficients": None if self.coefficients is None else asdict(self.coefficients),
                "select": self.select, "compare_single": self.compare_single,
                "family": list(self.family), "seed": self.seed, "proxy": self.proxy.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GridSearchConfig:
        if d.get("stage") != 2:
            raise ValueError(f"not a gridsearch run's config (stage={d.get('stage')!r}, "
                             f"expected 2); pass the --out folder of a gridsearch run")
        c = d.get("coefficients")
        return cls(base=d["base"], phi=d["phi"], grid=Grid.from_dict(d["grid"]),
                   coefficients=None if c is None else Point(**c), select=d["select"],
                   compare_single=d["compare_single"], family=tuple(d["family"]),
                   seed=d["seed"], proxy=ProxyConfig.from_dict(d["proxy"]))


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


@dataclass
class GridSearchResult:
    run_dir: Path
    coefficients: dict[str, Any] | None
    family: list[ArchSpec]
    enumeration: Enumeration | None
    interrupted: bool = False


class Stage2Objective:
    """One trial = one point: scale, count with fvcore, train on the proxy, score.

    :meth:`prepare` (scale, count, record; reuse an identical training) and :meth:`finish`
    (score) are shared with the ``ray`` backend, which trains between the two on a worker.
    """

    def __init__(self, config: GridSearchConfig, base: ArchSpec, base_counts: Counts,
                 jobs: Sequence[Job], *, evaluate: Callable[..., Any] = evaluate_proxy,
                 count: Callable[[ArchSpec], Counts] = count_fvcore) -> None:
        self.config = config
        self.base = base
        self.base_counts = base_counts
        self.jobs = {j.key: j for j in jobs}
        self.evaluate = evaluate
        self.count = count
        self.objective = reward_objective(base_counts.macs, config.phi)
        self.proxy = config.proxy
        self.pruner = "none"  # every point trains fully
        self.reports_epochs = False

    def __call__(self, trial: optuna.Trial) -> float:
        job = suggest_job(trial)
        try:
            got = self._prepare(trial, job)
            return got if not isinstance(got, Candidate) else self._train(trial, got)
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", runs.INTERRUPTED)
            raise
        except Exception as e:  # recorded, and the grid goes on
            trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:500])
            log.warning("point %d (%s) failed: %s: %s", trial.number, job.key,
                        type(e).__name__, e)
            raise

    def prepare(self, trial: optuna.Trial) -> Candidate | float:
        """Record the trial's point; the network to train, or the point's value when an
        identical training already finished."""
        return self._prepare(trial, suggest_job(trial))

    def _prepare(self, trial: optuna.Trial, job: Job) -> Candidate | float:
        if job.key not in self.jobs:  # only enqueued points run; a sampled one is a bug
            raise ValueError(f"trial {trial.number} holds {job.key!r}, not a point of this run")
        phi, p = self.config.phi, job.point
        spec = compound(self.base, p.alpha, p.beta, p.gamma, phi,
                        name=f"{self.base.name}-{job.kind}-phi{phi:g}")
        counts = self.count(spec)
        proxy_res = round_resolution(self.config.proxy.resolution, p.gamma ** phi)
        train_spec = spec.replace(bn_momentum=PROXY_BN_MOMENTUM)
        train_key = train_spec.with_task(resolution=proxy_res).arch_hash()
        attrs = {"kind": job.kind, "alpha": p.alpha, "beta": p.beta, "gamma": p.gamma, "phi": phi,
                 "product": p.product, "depth": p.alpha ** phi, "width": p.beta ** phi,
                 "resolution": spec.resolution, "proxy_resolution": proxy_res,
                 "macs": counts.macs, "params": counts.params,
                 "macs_ratio": counts.macs / self.base_counts.macs,
                 "formula_ratio": p.product ** phi, "arch_hash": spec.arch_hash(),
                 "train_key": train_key, "node": runs.node_name(),
                 # what fvcore saw but does not count (SiLU, sigmoid, mul, add), never hidden
                 "uncounted_ops": dict(counts.uncounted_ops)}
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        earlier = _same_training(trial.study, train_key)
        if earlier is not None:
            # Same network at the same proxy resolution and seed: training again would give
            # the same number, so take it (the point keeps its own MACs and reward).
            trial.set_user_attr("reused_from", earlier.number)
            return self.finish(trial, earlier.user_attrs["accuracy"], counts.macs)
        seed = trial_seed(self.config.seed, train_key)
        trial.set_user_attr("seed", seed)
        return Candidate(spec=train_spec, macs=counts.macs, seed=seed,
                         proxy=replace(self.config.proxy, resolution=proxy_res))

    def _train(self, trial: optuna.Trial, c: Candidate) -> float:
        curve: list[float] = []

        def on_epoch(res: Any) -> None:
            curve.append(res.val_accuracy)
            trial.set_user_attr("val_accuracy_per_epoch", list(curve))

        result = self.evaluate(c.spec, c.proxy, seed=c.seed, on_epoch=on_epoch)
        if not math.isfinite(result.accuracy):
            raise FloatingPointError(f"point {trial.number}: accuracy is {result.accuracy}")
        return self.finish(trial, result.accuracy, c.macs, images_per_sec=result.images_per_sec)

    def finish(self, trial: optuna.Trial, accuracy: float, macs: int, **extra: Any) -> float:
        trial.set_user_attr("accuracy", float(accuracy))
        trial.set_user_attr("reward", self.objective.reward(accuracy, macs))
        for k, v in extra.items():
            trial.set_user_attr(k, v)
        return float(accuracy)


def reward_objective(base_macs: int, phi: float) -> Objective:
    """Stage 1's soft objective with T = the base's MACs x 2^phi."""
    return Objective(target_macs=max(1, int(round(base_macs * 2.0 ** phi))))


def _same_training(study: optuna.Study, train_key: str) -> FrozenTrial | None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("train_key") == train_key and "accuracy" in t.user_attrs:
            return t
    return None


# ----------------------------------------------------------------------------- the study
# A trial's parameters are its point: kind, alpha, beta, gamma, always enqueued with fixed values.
# The distributions never change with the grid, so a resumed run may add points (and Optuna's own
# tools show the coefficients).
MAX_COEFFICIENT = 1000.0


def job_params(job: Job) -> dict[str, Any]:
    return {"kind": job.kind, "alpha": job.point.alpha, "beta": job.point.beta,
            "gamma": job.point.gamma}


def suggest_job(trial: optuna.Trial) -> Job:
    kind = trial.suggest_categorical("kind", KINDS)
    alpha, beta, gamma = (trial.suggest_float(n, 1.0, MAX_COEFFICIENT)
                          for n in ("alpha", "beta", "gamma"))
    return Job(str(kind), Point(alpha, beta, gamma))


def _job_key(t: FrozenTrial) -> str | None:
    params = t.params or t.system_attrs.get("fixed_params", {})
    if not all(k in params for k in ("kind", "alpha", "beta", "gamma")):
        return None
    return Job(params["kind"], Point(params["alpha"], params["beta"], params["gamma"])).key


def _interrupted(t: FrozenTrial) -> bool:
    return t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") == runs.INTERRUPTED


def enqueue_missing(study: optuna.Study, jobs: Sequence[Job]) -> int:
    """Enqueue every job that has no trial yet (finished, waiting or running); returns how
    many. Fresh runs and resumed runs go through here alike."""
    have = {_job_key(t) for t in study.get_trials(deepcopy=False) if not _interrupted(t)}
    n = 0
    for job in jobs:
        if job.key not in have:
            study.enqueue_trial(job_params(job), user_attrs={**job_params(job),
                                "product": job.point.product}, skip_if_exists=False)
            n += 1
    return n


def waiting_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def point_trials(study: optuna.Study, kind: str | None = None) -> list[FrozenTrial]:
    """COMPLETE trials with an accuracy, of one kind (all kinds for None)."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "accuracy" in t.user_attrs and (kind is None or t.user_attrs.get("kind") == kind)]


def select(study: optuna.Study, by: str) -> FrozenTrial | None:
    """The winning compound point: best accuracy (or reward), then fewer MACs, then earlier."""
    key = SELECTORS[by]
    return max(point_trials(study, "compound"), key=key, default=None)


# ----------------------------------------------------------------------------- outputs
def grid_frame(trials: Sequence[FrozenTrial]):
    """``grid.csv``: one row per point trial, :data:`GRID_COLUMNS` first."""
    import pandas as pd

    rows = trial_rows(trials)
    for row, t in zip(rows, trials, strict=True):
        for k in POINT_ATTRS:
            row[k] = t.user_attrs.get(k)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=GRID_COLUMNS)
    df = df[GRID_COLUMNS + [c for c in df.columns if c not in GRID_COLUMNS]]
    for c in ("macs", "params", "resolution", "proxy_resolution"):
        df[c] = df[c].astype("Int64")
    return df


def write_grid(study: optuna.Study, run_dir: Path) -> None:
    write_table(grid_frame(study.get_trials(deepcopy=False)), run_dir, GRID_TABLE)


def _single_summary(study: optuna.Study, jobs: Sequence[Job]) -> list[dict[str, Any]]:
    out = []
    for kind in SINGLE_DIMENSION:
        if not any(j.kind == kind for j in jobs):
            continue
        done = point_trials(study, kind)
        ua = done[-1].user_attrs if done else {}
        p = SINGLE_DIMENSION[kind]
        out.append({"kind": kind, "alpha": p.alpha, "beta": p.beta, "gamma": p.gamma,
                    "depth": ua.get("depth"), "width": ua.get("width"),
                    "resolution": ua.get("resolution"),
                    "proxy_resolution": ua.get("proxy_resolution"),
                    "accuracy": ua.get("accuracy"), "macs": ua.get("macs"),
                    "params": ua.get("params"), "macs_ratio": ua.get("macs_ratio"),
                    "reward": ua.get("reward"), "trial": done[-1].number if done else None})
    return out


def coefficients_summary(study: optuna.Study, config: GridSearchConfig, base: ArchSpec,
                         base_counts: Counts, enum: Enumeration | None, jobs: Sequence[Job], *,
                         count: Callable[[ArchSpec], Counts] = count_fvcore
                         ) -> dict[str, Any] | None:
    """``coefficients.json``: the chosen point and how it was chosen; None while no compound
    point has finished (and none was given)."""
    phi = config.phi
    chosen = select(study, config.select) if config.coefficients is None else None
    if config.coefficients is not None:
        point = config.coefficients
        trained = [t for t in point_trials(study, "compound")
                   if (t.user_attrs["alpha"], t.user_attrs["beta"], t.user_attrs["gamma"])
                   == (point.alpha, point.beta, point.gamma)]
        chosen = trained[-1] if trained else None
        if chosen is None:
            counts = count(compound(base, point.alpha, point.beta, point.gamma, phi))
            ua: dict[str, Any] = {"macs": counts.macs, "params": counts.params,
                                  "macs_ratio": counts.macs / base_counts.macs}
        else:
            ua = dict(chosen.user_attrs)
    elif chosen is None:
        return None
    else:
        ua = dict(chosen.user_attrs)
        point = Point(ua["alpha"], ua["beta"], ua["gamma"])
    compound_jobs = [j for j in jobs if j.kind == "compound"]
    done = {_job_key(t) for t in point_trials(study, "compound")}
    return {
        "alpha": point.alpha, "beta": point.beta, "gamma": point.gamma, "phi": phi,
        "product": point.product,
        "tolerance": None if enum is None else config.grid.tolerance,
        "grid": None if enum is None else enum.summary(),
        "macs_ratio": ua.get("macs_ratio"), "formula_ratio": point.product ** phi,
        "nominal_ratio": 2.0 ** phi,
        "selected_by": config.selected_by,
        "accuracy": ua.get("accuracy"), "reward": ua.get("reward"),
        "macs": ua.get("macs"), "params": ua.get("params"),
        "resolution": ua.get("resolution"), "proxy_resolution": ua.get("proxy_resolution"),
        "trial": None if chosen is None else chosen.number,
        "points_done": sum(1 for j in compound_jobs if j.key in done),
        "points_to_train": len(compound_jobs),
        "complete": all(j.key in done for j in compound_jobs),
        "base": {"name": base.name, "source": config.base, "arch_hash": base.arch_hash(),
                 "macs": base_counts.macs, "params": base_counts.params,
                 "resolution": base.resolution},
        "compare_single": _single_summary(study, jobs) if config.compare_single else None,
        "proxy": config.proxy.to_dict(), "seed": config.seed,
        "macs_counter": "fvcore",
    }


def write_outputs(study: optuna.Study, config: GridSearchConfig, base: ArchSpec,
                  base_counts: Counts, enum: Enumeration | None, jobs: Sequence[Job],
                  run_dir: Path, *, count: Callable[[ArchSpec], Counts] = count_fvcore
                  ) -> tuple[dict[str, Any] | None, list[ArchSpec]]:
    """grid.csv/.parquet, coefficients.json, family/b*.json and family.csv (idempotent)."""
    write_grid(study, run_dir)
    coef = coefficients_summary(study, config, base, base_counts, enum, jobs, count=count)
    if coef is None:
        return None, []
    write_json(coef, run_dir / COEFFICIENTS_FILE)
    point = Point(coef["alpha"], coef["beta"], coef["gamma"])
    provenance = {"selected_by": coef["selected_by"], "accuracy": coef["accuracy"],
                  "search_phi": config.phi, "run": str(run_dir)}
    members = scale_family(base, point, phis=config.family, provenance=provenance)
    write_family(run_dir, base, members)
    return coef, [m.spec for m in members]


# ----------------------------------------------------------------------------- the driver
def _open_run(config: GridSearchConfig, out: str | Path | None, resume: bool,
              storage: str | None, base: ArchSpec | None,
              backend: BackendConfig) -> tuple[Path, ArchSpec, str | None]:
    run_dir = runs.latest_run_dir() if (resume and out is None) else runs.new_run_dir(out)
    if resume:
        saved = runs.load_config(run_dir)
        GridSearchConfig.from_dict(saved)  # refuses a stage-1 run folder
        storage = storage or saved.get("storage")
        base = load_spec(run_dir / BASE_FILE)
    else:
        if (run_dir / runs.CONFIG).exists():
            raise ValueError(f"{str(run_dir)!r} already holds a run; pass --resume to continue "
                             f"it or choose another --out")
        base = base if base is not None else resolve_spec(config.base)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_spec(base, run_dir / BASE_FILE)
    write_json({**config.to_dict(), "storage": storage, "backend": backend.to_dict()},
               run_dir / runs.CONFIG)
    return run_dir, base, storage


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
    backend = backend or BackendConfig()
    with open_backend(backend) as executor:
        return _run_gridsearch(config, out=out, resume=resume, storage=storage, base=base,
                               evaluate=evaluate or evaluate_proxy, count=count,
                               backend=backend, executor=executor)


def _run_gridsearch(config: GridSearchConfig, *, out: str | Path | None, resume: bool,
                    storage: str | None, base: ArchSpec | None, evaluate: Callable[..., Any],
                    count: Callable[[ArchSpec], Counts], backend: BackendConfig,
                    executor: Any) -> GridSearchResult:
    enum, jobs = plan(config)  # validates the grid before anything is written
    if evaluate is evaluate_proxy and jobs:  # fail fast on a dataset unreadable (on a node)
        executor.check_dataset(config.proxy)
    run_dir, base, storage = _open_run(config, out, resume, storage, base, backend)
    base_counts = count(base)
    study = runs.open_study(run_dir=run_dir, storage=storage, study_name=STUDY_NAME,
                            directions=["maximize"],
                            sampler=optuna.samplers.RandomSampler(seed=config.seed),
                            pruner=optuna.pruners.NopPruner(), resume=resume)
    if not resume:
        study.set_user_attr("config", config.to_dict())
    enqueue_missing(study, jobs)
    todo = waiting_count(study)
    _log_plan(config, base, base_counts, enum, jobs, todo, run_dir)
    objective = Stage2Objective(config, base, base_counts, jobs, evaluate=evaluate, count=count)
    interrupted = False
    with runs.progress(len(jobs), "stage 2") as bar:
        def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
            write_grid(study, run_dir)
            best = select(study, config.select)
            text = "" if best is None else (
                f"best acc {best.user_attrs['accuracy']:.4f} at alpha {best.user_attrs['alpha']:g}"
                f" beta {best.user_attrs['beta']:g} gamma {best.user_attrs['gamma']:g}")
            bar.advance(runs.finished_count(study), text)
            _log_trial(trial)

        bar.advance(runs.finished_count(study), "")
        if todo:
            interrupted = executor.optimize(study, objective, n_trials=todo, timeout=None,
                                            callbacks=[after_trial], run_dir=run_dir)
            if interrupted:
                log.warning("interrupted: finished points are kept; continue with "
                            "gridsearch --resume --out %s", run_dir)
    coef, family = write_outputs(study, config, base, base_counts, enum, jobs, run_dir,
                                 count=count)
    if coef is None:
        log.warning("no grid point finished; nothing to emit")
    if study.get_trials(deepcopy=False):  # given coefficients alone train nothing to show
        _write_dashboard(run_dir)
    return GridSearchResult(run_dir=run_dir, coefficients=coef, family=family,
                            enumeration=enum, interrupted=interrupted)


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
             "train now, run folder %s", base.name, base_counts.macs / 1e6, base.resolution,
             config.phi, len(jobs), todo, run_dir)


def _log_trial(trial: FrozenTrial) -> None:
    ua = trial.user_attrs
    log.info("point %d %s %s alpha %s beta %s gamma %s: acc %s, %.1f MMACs (x%.3f measured, "
             "x%.3f formula), %.1fs%s", trial.number, ua.get("kind", "?"), trial.state.name,
             f"{ua['alpha']:g}" if "alpha" in ua else "?",
             f"{ua['beta']:g}" if "beta" in ua else "?",
             f"{ua['gamma']:g}" if "gamma" in ua else "?",
             f"{ua['accuracy']:.4f}" if "accuracy" in ua else "-",
             ua.get("macs", 0) / 1e6, ua.get("macs_ratio", math.nan),
             ua.get("formula_ratio", math.nan),
             trial.duration.total_seconds() if trial.duration else 0.0,
             f" (reused point {ua['reused_from']})" if "reused_from" in ua else "")


def _write_dashboard(run_dir: Path) -> None:
    try:
        from results.dashboard import write_dashboard
    except ImportError:
        return
    try:
        write_dashboard(run_dir)
    except Exception as e:  # a dashboard must never lose a finished search
        log.warning("dashboard not written: %s", e)
