"""Stage 1: search a MnasNet-style space for a base network under a MACs target.

EfficientNet Sec. 4: "we develop our baseline network by leveraging a multi-objective neural
architecture search that optimizes both accuracy and FLOPS ... ACC(m) x [FLOPS(m)/T]^w".
Each trial samples an architecture (define-by-run), counts its MACs at the deployment
configuration (default 224 px, 3 channels, 1000 classes) with the analytic counter (equal to
fvcore; the winner is re-counted with fvcore), trains it on the proxy task, and reports the
reward per epoch so a pruner can stop hopeless trials. The best architecture is emitted as a
frozen spec: the run's B0.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from results.store import trials_frame, write_json, write_table
from space import ArchSpec, count_analytic, count_fvcore, save_spec
from space.registry import Registry
from space.search_space import SearchSpace, load_space

from . import runs
from .backends import BackendConfig, Candidate, open_backend
from .evaluate import ProxyConfig, evaluate_proxy, trial_seed
from .objective import Objective, make_objective

log = logging.getLogger(__name__)

STUDY_NAME = "stage1"


@dataclass(frozen=True)
class SamplerInfo:
    make: Callable[[int | None], optuna.samplers.BaseSampler]
    multi_objective: bool


SAMPLERS: Registry[SamplerInfo] = Registry("sampler")
SAMPLERS.add("tpe", SamplerInfo(lambda seed: optuna.samplers.TPESampler(
    seed=seed, n_startup_trials=8, multivariate=True, group=False, constant_liar=True), False))
SAMPLERS.add("random", SamplerInfo(lambda seed: optuna.samplers.RandomSampler(seed=seed), False))
SAMPLERS.add("nsga2", SamplerInfo(lambda seed: optuna.samplers.NSGAIISampler(
    seed=seed, population_size=8), True))


def _evolution(seed: int | None) -> optuna.samplers.BaseSampler:
    from .evolution import RegularizedEvolutionSampler

    return RegularizedEvolutionSampler(population_size=12, sample_size=4, seed=seed)


SAMPLERS.add("evolution", SamplerInfo(_evolution, False))


@dataclass(frozen=True)
class Deployment:
    """Where the network will run: MACs are counted here, whatever the proxy task is."""

    resolution: int = 224
    in_channels: int = 3
    num_classes: int = 1000


@dataclass(frozen=True)
class SearchConfig:
    target_macs: int
    space: str = "mnasnet"
    trials: int | None = 60
    timeout: float | None = 780.0
    sampler: str = "tpe"
    constraint: str = "soft"
    a: float | None = None
    b: float | None = None
    seed: int | None = 0
    pruner: str = "hyperband"
    enqueue: tuple[str, ...] = ()
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    deploy: Deployment = field(default_factory=Deployment)

    def __post_init__(self) -> None:
        SAMPLERS.get(self.sampler)
        if self.pruner not in PRUNERS:
            raise KeyError(f"unknown pruner {self.pruner!r}; known: {', '.join(PRUNERS)}")
        if self.trials is not None and self.trials < 1:
            raise ValueError(f"`trials >= 1` must hold, but got trials={self.trials}; "
                             f"pass e.g. --trials 60")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"`timeout > 0` must hold, but got timeout={self.timeout}; "
                             f"pass e.g. --timeout 600")
        self.objective()  # validates target, constraint, a, b

    def objective(self) -> Objective:
        return make_objective(self.target_macs, constraint=self.constraint, a=self.a, b=self.b)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["enqueue"] = list(self.enqueue)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchConfig:
        d = {k: v for k, v in d.items() if k not in ("storage", "backend")}  # run settings
        d["proxy"] = ProxyConfig.from_dict(d["proxy"])
        d["deploy"] = Deployment(**d["deploy"])
        d["enqueue"] = tuple(d.get("enqueue", ()))
        return cls(**d)


PRUNERS: dict[str, Callable[[int], optuna.pruners.BasePruner]] = {
    "hyperband": lambda epochs: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=max(epochs, 1), reduction_factor=3),
    "median": lambda epochs: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    "none": lambda epochs: optuna.pruners.NopPruner(),
}


@dataclass
class SearchResult:
    run_dir: Path
    best: ArchSpec | None
    summary: dict[str, Any]
    interrupted: bool = False


def deployment_spec(space: SearchSpace, params: dict[str, Any], deploy: Deployment,
                    name: str) -> ArchSpec:
    return space.to_spec(params, name=name).with_task(
        in_channels=deploy.in_channels, num_classes=deploy.num_classes,
        resolution=deploy.resolution)


class Stage1Objective:
    """The Optuna objective: one trial = sample, count, train, score.

    :meth:`prepare` (sample, count, record; reuse a repeated architecture) and :meth:`finish`
    (score) are shared with the ``ray`` backend, which trains between the two on a worker;
    ``pruner`` and ``reports_epochs`` tell it what to do with the per-epoch rewards.
    """

    def __init__(self, config: SearchConfig, space: SearchSpace,
                 evaluate: Callable[..., Any] = evaluate_proxy) -> None:
        self.config = config
        self.space = space
        self.objective = config.objective()
        self.multi = SAMPLERS.get(config.sampler).multi_objective
        self.evaluate = evaluate
        self.proxy = config.proxy
        self.reports_epochs = not self.multi  # the per-epoch reward, as intermediate values
        self.pruner = "none" if self.multi else config.pruner

    def prepare(self, trial: optuna.Trial) -> Candidate | float | tuple[float, float]:
        """Sample and count the trial's architecture and record it; a repeated architecture
        gets the earlier result instead (returned as the trial's value)."""
        params = self.space.sample(trial)
        spec = deployment_spec(self.space, params, self.config.deploy, f"trial-{trial.number}")
        counts = count_analytic(spec)
        h = spec.arch_hash()
        for k, v in (("macs", counts.macs), ("params", counts.params), ("arch_hash", h),
                     ("node", runs.node_name())):
            trial.set_user_attr(k, v)
        earlier = self._same_architecture(trial, h)
        if earlier is not None:
            return self._reuse(trial, earlier, counts.macs)
        seed = trial_seed(self.config.seed, h)
        trial.set_user_attr("seed", seed)
        return Candidate(spec=spec, macs=counts.macs, seed=seed)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        got = self.prepare(trial)
        if not isinstance(got, Candidate):
            return got
        spec, macs, seed = got.spec, got.macs, got.seed
        curve: list[float] = []

        def on_epoch(res: Any) -> None:
            curve.append(res.val_accuracy)
            trial.set_user_attr("val_accuracy_per_epoch", list(curve))
            if self.multi:
                return
            trial.report(self.objective.reward(res.val_accuracy, macs), res.epoch)
            if res.epoch < self.config.proxy.train.epochs and trial.should_prune():
                trial.set_user_attr("accuracy", res.val_accuracy)
                trial.set_user_attr("pruned_at_epoch", res.epoch)
                raise optuna.TrialPruned(f"pruned after epoch {res.epoch}")

        try:
            result = self.evaluate(spec, self.config.proxy, seed=seed, on_epoch=on_epoch)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", runs.INTERRUPTED)
            raise
        except Exception as e:  # recorded, and the study goes on
            trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:500])
            log.warning("trial %d failed: %s: %s", trial.number, type(e).__name__, e)
            raise
        if not math.isfinite(result.accuracy):
            trial.set_user_attr("fail_reason", f"accuracy is {result.accuracy}")
            raise FloatingPointError(f"trial {trial.number}: accuracy is {result.accuracy}")
        return self.finish(trial, result.accuracy, macs, images_per_sec=result.images_per_sec)

    def finish(self, trial: optuna.Trial, accuracy: float, macs: int,
               **extra: Any) -> float | tuple[float, float]:
        reward = self.objective.reward(accuracy, macs)
        trial.set_user_attr("accuracy", accuracy)
        trial.set_user_attr("reward", reward)
        for k, v in extra.items():
            trial.set_user_attr(k, v)
        return (accuracy, float(macs)) if self.multi else reward

    def _same_architecture(self, trial: optuna.Trial, arch_hash: str) -> Any:
        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.user_attrs.get("arch_hash") == arch_hash and "accuracy" in t.user_attrs:
                return t
        return None

    def _reuse(self, trial: optuna.Trial, earlier: Any, macs: int) -> float | tuple[float, float]:
        # Same architecture, same per-architecture seed: training again would give the same
        # number, so take it (the trial is still recorded, with where it came from).
        trial.set_user_attr("reused_from", earlier.number)
        curve = earlier.user_attrs.get("val_accuracy_per_epoch", [])
        trial.set_user_attr("val_accuracy_per_epoch", curve)
        return self.finish(trial, earlier.user_attrs["accuracy"], macs)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "reward" in t.user_attrs]
    return max(done, key=lambda t: (t.user_attrs["reward"], -t.number), default=None)


def write_outputs(study: optuna.Study, config: SearchConfig, space: SearchSpace, run_dir: Path,
                  *, started: float, verify_fvcore: bool = False) -> tuple[ArchSpec | None,
                                                                            dict[str, Any]]:
    """trials.csv/.parquet, best.json and summary.json from the study (idempotent)."""
    trials = study.get_trials(deepcopy=False)
    write_table(trials_frame(trials), run_dir, "trials")
    states = {s.name: 0 for s in TrialState}
    for t in trials:
        states[t.state.name] += 1
    best = best_trial(study)
    spec = None
    summary: dict[str, Any] = {
        "stage": 1, "target_macs": config.target_macs, "space": space.name,
        "space_size": dict(zip(("nominal", "distinct"), space.size())),
        "objective": asdict(config.objective()), "sampler": config.sampler,
        "trials": len(trials), "states": {k: v for k, v in states.items() if v},
        "reused": sum(1 for t in trials if t.user_attrs.get("reused_from") is not None),
        "elapsed_s": time.time() - started, "best": None,
    }
    if best is not None:
        spec = deployment_spec(space, best.params, config.deploy, "nas-b0")
        ua = best.user_attrs
        provenance = {
            "stage": 1, "target_macs": config.target_macs, "reward": ua["reward"],
            "accuracy": ua["accuracy"], "macs": ua["macs"], "params": ua["params"],
            "objective": asdict(config.objective()), "space": space.name,
            "dataset": config.proxy.dataset, "proxy": config.proxy.to_dict(),
            "seed": config.seed, "trial_seed": ua.get("seed"), "trial": best.number,
            "arch_hash": ua["arch_hash"], "params_sampled": dict(best.params),
        }
        if verify_fvcore:
            fv = count_fvcore(spec)
            provenance["macs_fvcore"] = fv.macs
            if fv.macs != ua["macs"]:
                log.warning("fvcore counts %d MACs for the best spec, the analytic counter %d",
                            fv.macs, ua["macs"])
        spec = spec.replace(meta=provenance)
        save_spec(spec, run_dir / "best.json")
        summary["best"] = {k: provenance[k] for k in
                           ("trial", "reward", "accuracy", "macs", "params", "arch_hash")}
        if "macs_fvcore" in provenance:
            summary["best"]["macs_fvcore"] = provenance["macs_fvcore"]
    write_json(summary, run_dir / "summary.json")
    return spec, summary


def run_search(config: SearchConfig, *, out: str | Path | None = None, resume: bool = False,
               storage: str | None = None, evaluate: Callable[..., Any] = evaluate_proxy,
               backend: BackendConfig | None = None) -> SearchResult:
    """Run (or resume) stage 1 and write the run folder. ``backend`` says where the trials run
    (default: here, one at a time; see :mod:`nas.backends`)."""
    backend = backend or BackendConfig()
    with open_backend(backend) as executor:
        return _run_search(config, out=out, resume=resume, storage=storage, evaluate=evaluate,
                           backend=backend, executor=executor)


def _run_search(config: SearchConfig, *, out: str | Path | None, resume: bool,
                storage: str | None, evaluate: Callable[..., Any], backend: BackendConfig,
                executor: Any) -> SearchResult:
    run_dir = runs.latest_run_dir() if (resume and out is None) else runs.new_run_dir(out)
    space = load_space(config.space)
    if evaluate is evaluate_proxy:  # fail fast on a dataset that cannot be read (on each node)
        executor.check_dataset(config.proxy)
    info = SAMPLERS.get(config.sampler)
    if resume:
        saved = runs.load_config(run_dir)
        storage = storage or saved.get("storage")
    elif (run_dir / runs.CONFIG).exists():
        raise ValueError(f"{str(run_dir)!r} already holds a run; pass --resume to continue it "
                         f"or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json({**config.to_dict(), "storage": storage, "backend": backend.to_dict()},
               run_dir / runs.CONFIG)
    directions = ["maximize", "minimize"] if info.multi_objective else ["maximize"]
    pruner = optuna.pruners.NopPruner() if info.multi_objective else \
        PRUNERS[config.pruner](config.proxy.train.epochs)
    study = runs.open_study(run_dir=run_dir, storage=storage, study_name=STUDY_NAME,
                            directions=directions, sampler=info.make(config.seed), pruner=pruner,
                            resume=resume)
    if not resume:
        study.set_user_attr("config", config.to_dict())
        for name in config.enqueue:
            _enqueue_known(study, space, name)
    done_before = runs.finished_count(study)
    remaining = None if config.trials is None else max(config.trials - done_before, 0)
    log.info("stage 1: space %s (%d distinct architectures), target %.3g MACs, sampler %s, "
             "%s trial(s) to run, run folder %s", space.name, space.size()[1],
             config.target_macs, config.sampler,
             "unbounded" if remaining is None else remaining, run_dir)
    started = time.time()
    objective = Stage1Objective(config, space, evaluate)
    interrupted = False
    with runs.progress(config.trials, "stage 1") as bar:
        def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            write_outputs(study, config, space, run_dir, started=started)
            best = best_trial(study)
            text = "" if best is None else (f"best reward {best.user_attrs['reward']:.4f} "
                                            f"acc {best.user_attrs['accuracy']:.4f}")
            bar.advance(runs.finished_count(study), text)
            ua = trial.user_attrs
            log.info("trial %d %s: acc %s, %.1f MMACs, %.1fs%s", trial.number, trial.state.name,
                     f"{ua['accuracy']:.4f}" if "accuracy" in ua else "-",
                     ua.get("macs", 0) / 1e6,
                     trial.duration.total_seconds() if trial.duration else 0.0,
                     f" ({text})" if text else "")

        if remaining != 0:
            interrupted = executor.optimize(study, objective, n_trials=remaining,
                                            timeout=config.timeout, callbacks=[after_trial],
                                            run_dir=run_dir)
            if interrupted:
                log.warning("interrupted: finished trials are kept; continue with "
                            "nas search --resume --out %s", run_dir)
    best, summary = write_outputs(study, config, space, run_dir, started=started,
                                  verify_fvcore=True)
    summary["interrupted"] = interrupted
    summary["backend"] = executor.report()
    write_json(summary, run_dir / "summary.json")
    _write_dashboard(run_dir)
    return SearchResult(run_dir=run_dir, best=best, summary=summary, interrupted=interrupted)


def _enqueue_known(study: optuna.Study, space: SearchSpace, name: str) -> None:
    from space.resolve import resolve_spec

    spec = resolve_spec(name)
    params = space.encode(spec)
    if params is None:
        raise ValueError(f"--enqueue {name}: that architecture is not a member of the space "
                         f"{space.name!r}; enqueue a member (e.g. efficientnet-b0 with "
                         f"--space efficientnet)")
    study.enqueue_trial(params, user_attrs={"enqueued": name})


def _write_dashboard(run_dir: Path) -> None:
    try:
        from results.dashboard import write_dashboard
    except ImportError:
        return
    try:
        write_dashboard(run_dir)
    except Exception as e:  # a dashboard must never lose a finished search
        log.warning("dashboard not written: %s", e)


def update_proxy(config: SearchConfig, **changes: Any) -> SearchConfig:
    return replace(config, proxy=replace(config.proxy, **changes))
