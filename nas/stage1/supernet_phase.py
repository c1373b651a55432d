"""``nas search --evaluator supernet`` (issue 24): stage 1 scored by one weight-sharing supernet.

Once-for-All (Cai et al., ICLR 2020) and BigNAS (Yu et al., ECCV 2020): train one network whose
sub-networks are the candidates, then score each candidate with the weights it inherits. Here
that is three phases, all in the run folder, all resumable after kill -9 or Ctrl-C:

1. **train** (:meth:`SupernetStage.before_search`): :func:`nas.supernet.train_supernet` over the
   proxy's training images with the proxy's (stable) recipe, checkpointed to ``supernet.pt``
   every :data:`CHECKPOINT_EVERY` steps and on Ctrl-C, so a killed run resumes mid-training.
   The supernet's settings and fingerprint go into config.json and summary.json.
2. **score** (:class:`SupernetScorer`): each search trial of the Optuna study (sampled as for the
   proxy evaluator) is scored with :func:`nas.supernet.score_candidate`: its weights inherited,
   batch norm recalibrated on fixed training images, top-1 on the validation split. The reward
   is the search's objective, ACC x (MACs/T)^w or the latency target. The scorer loads the
   checkpoint once per process (a local run, each ``--trials-per-device`` worker, each Ray
   worker: the checkpoint's path is absolute, so a Ray cluster needs the run folder on a file
   system its nodes share). trials.csv's ``evaluator`` column says ``supernet`` for these rows.
3. **finalists**: the engine's finalists phase (:mod:`nas.engine.finalists`) trains the top K
   distinct candidates from scratch with S seeds by the proxy evaluator (``evaluator`` column
   ``proxy``); B0 is the best mean, so the choice rests on real training.
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import optuna
import torch

from nas.engine.driver import progress
from nas.engine.finalists import FINALIST
from nas.evaluate import EvalResult, check_proxy_task, evaluate_proxy, proxy_spec
from nas.supernet import (SuperNet, calibration_batches, check_supported, check_training,
                          fingerprint, load_trained_supernet, score_candidate, supernet_settings,
                          supernet_steps, train_supernet)
from nas.train import EpochResult, TrainConfig
from nas.train.device import resolve_device
from nas.train.loop import set_threads
from results.rundir import SUMMARY, write_json
from space.search_space import SearchSpace

from .config import SearchConfig
from .supernet_config import SupernetConfig

log = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_EVERY", "EVALUATOR_ATTR", "SupernetScorer",
           "SupernetStage", "check_supernet_search", "supernet_train_config"]

CHECKPOINT_FILE = "supernet.pt"
# Steps between periodic checkpoints: what a kill -9 can lose (Ctrl-C loses nothing).
CHECKPOINT_EVERY = 25
EVALUATOR_ATTR = "evaluator"  # the trial attribute (and trials.csv column): who scored it
# Study attributes: the supernet every driver of the study scores with, and its training time.
FINGERPRINT_ATTR = "supernet_fingerprint"
TRAIN_SECONDS_ATTR = "supernet_train_s"
SPLIT_SEED = 0  # the proxy's held-out split (nas.evaluate.prepare_proxy)
# The inherited accuracies carry no ranking signal while the median candidate's lies within
# this many binomial standard deviations of chance (1 / classes) on the images scored: on
# Fashion-MNIST a supernet trained 3 epochs on the mnasnet space scored 2,038 candidates at
# 0.05-0.19 on 500 images (chance 0.100 +- 0.013; benchmarks/BENCHMARKS_supernet.md).
CHANCE_SDS = 3.0


def supernet_train_config(config: SearchConfig) -> TrainConfig:
    """How the supernet trains: the proxy's recipe, for ``--supernet-epochs``."""
    return replace(config.proxy.train, epochs=config.supernet.epochs)


def _data_key(config: SearchConfig) -> dict[str, Any]:
    """Which images the supernet trains on (part of its fingerprint; not where they live)."""
    p = config.proxy
    return {"dataset": p.dataset, "resolution": p.resolution, "train_samples": p.train_samples,
            "val_samples": p.val_samples, "split_seed": SPLIT_SEED}


def _seed(config: SearchConfig) -> int:
    return 0 if config.seed is None else int(config.seed)


def check_supernet_search(config: SearchConfig, space: SearchSpace) -> None:
    """Raise a one-line ValueError for a supernet search that cannot run: a space or option the
    supernet cannot hold, settings it cannot train with, more calibration or scoring images
    than the splits hold, a dataset that cannot be read. Run before anything is written."""
    check_supported(space)
    sn = config.supernet
    check_training(supernet_train_config(config), n_random=sn.n_random, distill=sn.distill,
                   rule=sn.rule)
    p = config.proxy
    if sn.score_val_samples is not None and sn.score_val_samples > p.val_samples:
        raise ValueError(f"`score_val_samples <= val_samples` must hold, but got "
                         f"--score-val-samples {sn.score_val_samples} with --val-samples "
                         f"{p.val_samples}; pass at most {p.val_samples}")
    check_proxy_task(p)  # the dataset reads and holds the images asked for
    from nas.data import load_dataset

    train_n = p.train_samples
    if train_n is None:
        train_n = len(load_dataset(p.dataset, data_dir=p.data_dir).train_labels) - p.val_samples
    batches, size = sn.calib_batches
    if batches * size > train_n:
        raise ValueError(f"`calib_images <= training images` must hold, but got --calib-images "
                         f"{sn.calib_images} ({batches} batch(es) of {size}) with {train_n} "
                         f"training images; pass e.g. --calib-images {min(train_n, 512)}")


def _splits(config: SearchConfig, device: torch.device) -> tuple[Any, Any, Any]:
    """(proxy data, train split, val split) on ``device``: the proxy evaluator's images."""
    from nas.data import device_splits, load_dataset, proxy_data

    p = config.proxy
    ds = load_dataset(p.dataset, data_dir=p.data_dir)
    data = proxy_data(ds, resolution=p.resolution, train_samples=p.train_samples,
                      val_samples=p.val_samples, seed=SPLIT_SEED)
    train, val = device_splits(ds, data, device=device)
    return data, train, val


@dataclass
class _Plan:
    """The supernet a driver trains (phase 1), its images and its settings."""

    net: SuperNet | None
    train: Any
    settings: dict[str, Any]
    fingerprint: str
    val_images: int  # the validation images a candidate is scored on (SupernetScorer's)


# ------------------------------------------------------------------------------ phase 2
@dataclass
class _Held:
    net: SuperNet
    calib: list[torch.Tensor]
    val: Any


_HELD: dict[tuple[Any, ...], _Held] = {}  # per process: the one supernet it scores with


class SupernetScorer:
    """The search trials' evaluator, ``evaluate(spec, proxy, *, seed, on_epoch)`` as
    :func:`nas.evaluate.evaluate_proxy`'s: the candidate's validation accuracy with the weights
    it inherits from the trained supernet in ``checkpoint``. The checkpoint, the calibration
    batches and the validation images are loaded once per process and kept. Picklable (the
    local pool's workers get a copy); ``checkpoint`` and ``fingerprint`` are set by the stage
    once the run folder and the supernet's settings are known."""

    def __init__(self, *, config: SearchConfig, space: SearchSpace) -> None:
        self.config = config
        self.space = space
        self.checkpoint: str | None = None
        self.fingerprint: str | None = None

    def held(self, proxy: Any, device: str | None = None) -> _Held:
        where = resolve_device(proxy.device if device is None else device)
        key = (self.checkpoint, self.fingerprint, str(where))
        if key not in _HELD:
            _HELD.clear()  # one supernet per process
            _HELD[key] = self._load(where)
        return _HELD[key]

    def _load(self, where: torch.device) -> _Held:
        if self.checkpoint is None:
            raise RuntimeError("SupernetScorer.checkpoint is unset; the stage sets it in setup")
        net, info = load_trained_supernet(self.checkpoint, self.space, device=where)
        if info["fingerprint"] != self.fingerprint:
            raise ValueError(f"supernet checkpoint {self.checkpoint!r} holds fingerprint "
                             f"{info['fingerprint']}, not this search's {self.fingerprint}; "
                             f"resume the run it belongs to, or start a new --out")
        if info["step"] < info["total_steps"]:
            raise ValueError(f"supernet checkpoint {self.checkpoint!r} is trained to step "
                             f"{info['step']} of {info['total_steps']}; resume the run to "
                             f"finish its training")
        net.set_channels_last(self.config.proxy.train.channels_last)
        _, train, val = _splits(self.config, where)
        sn = self.config.supernet
        batches, size = sn.calib_batches
        seed = _seed(self.config)
        calib = calibration_batches(train, num_batches=batches, batch_size=size, seed=seed)
        n = sn.scored_images(len(val))
        if n < len(val):
            pick = torch.randperm(len(val), generator=torch.Generator().manual_seed(seed))
            idx = pick[:n].sort().values.to(val.device)
            val = type(val)(val.images[idx], val.labels[idx], val.resolution, val.mean, val.std)
        log.info("supernet scorer: loaded %s (fingerprint %s) on %s; %d calibration and %d "
                 "validation images", Path(self.checkpoint).name, info["fingerprint"], where,
                 batches * size, len(val))
        return _Held(net=net, calib=calib, val=val)

    def __call__(self, spec: Any, proxy: Any, *, seed: int,
                 on_epoch: Callable[[EpochResult], None] | None = None,
                 device: str | None = None, **_: Any) -> EvalResult:
        held = self.held(proxy, device)
        set_threads(proxy.train.threads)
        t0 = time.perf_counter()
        member = proxy_spec(spec, in_channels=held.net.in_channels,
                            num_classes=held.net.num_classes, resolution=proxy.resolution)
        acc = score_candidate(held.net, member, calib_batches=held.calib, val_split=held.val)
        seconds = time.perf_counter() - t0
        # one "epoch" at the top rung: the engine (and a Ray searcher) read it as finished
        res = EpochResult(epoch=proxy.train.epochs, train_loss=float("nan"), val_accuracy=acc,
                          lr=0.0, seconds=seconds, images_per_sec=0.0)
        if on_epoch is not None:
            on_epoch(res)
        return EvalResult(accuracy=acc, epochs=[res], seconds=seconds, images_per_sec=0.0,
                          seed=seed)


def inherited_signal(accuracies: list[float], *, num_classes: int,
                     images: int) -> dict[str, Any] | None:
    """summary.json's ``inherited_accuracy``: whether the candidates' inherited accuracies can
    rank them at all. The median candidate is compared with chance (1 / ``num_classes``), in
    binomial standard deviations of one accuracy on ``images`` images; within
    :data:`CHANCE_SDS` of it the scores are noise, and ``text`` says so and what to do. None
    before any candidate is scored."""
    if not accuracies:
        return None
    chance = 1.0 / num_classes
    sd = (chance * (1.0 - chance) / images) ** 0.5
    median = statistics.median(accuracies)
    above = (median - chance) / sd
    at_chance = above <= CHANCE_SDS
    if at_chance:
        text = (f"the supernet's inherited accuracies lie at chance (median {median:.3f} over "
                f"{len(accuracies)} candidates; chance {chance:.3f} +- {sd:.3f} on {images} "
                f"images): they do not rank the candidates, so only the finalists' stand-alone "
                f"trainings decide; train the supernet longer (--supernet-epochs) or search "
                f"with --evaluator proxy")
    else:
        text = (f"the median candidate's inherited accuracy ({median:.3f} over "
                f"{len(accuracies)} candidates) lies {above:.1f} binomial stds above chance "
                f"({chance:.3f} on {images} images)")
    return {"candidates": len(accuracies), "median": median, "min": min(accuracies),
            "max": max(accuracies), "chance": chance, "binomial_sd": sd, "images": images,
            "stds_above_chance": above, "at_chance": at_chance, "text": text}


# ------------------------------------------------------------------------------ the stage
class SupernetStage:
    """Stage 1 with the supernet evaluator: a stage-1 stage (:class:`nas.search.Stage1`: its
    study, sampler, objective, outputs and finalists, read through this wrapper) with phase 1
    (:meth:`before_search`) before the trials, search trials scored by :attr:`scorer`, and the
    finalists by ``finalist_evaluate`` (the proxy evaluator: trained from scratch). A wrapper,
    not a subclass, so this module does not import the stage it extends."""

    def __init__(self, inner: Any, *, finalist_evaluate: Callable[..., Any] | None = None) -> None:
        self.inner = inner
        config: SearchConfig = inner.config
        check_supernet_search(config, inner.space)
        # one score per candidate: nothing to prune on (and the log line says so)
        self.reports_epochs = inner.reports_epochs = False
        self.pruner = inner.pruner = "none"
        self.train_config = supernet_train_config(config)
        self.finalist_evaluate = finalist_evaluate or evaluate_proxy
        self.scorer = SupernetScorer(config=config, space=inner.space)
        self._plan: _Plan | None = None
        self.last_step = 0
        self.total_steps = 0

    def __getattr__(self, name: str) -> Any:  # everything else is the stage-1 stage's
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def config(self) -> SearchConfig:
        return self.inner.config

    def plan(self) -> _Plan:
        """The supernet, seeded, and its settings (built once: config.json needs the settings
        and phase 1 trains the same module)."""
        if self._plan is None:
            c, sn = self.config, self.config.supernet
            where = resolve_device(c.proxy.device)
            data, train, val = _splits(c, where)
            with torch.random.fork_rng(devices=[where.index or 0] if where.type == "cuda"
                                       else []):
                torch.manual_seed(_seed(c))
                net = SuperNet(self.space, in_channels=data.in_channels,
                               num_classes=data.num_classes, bn_momentum=c.proxy.bn_momentum,
                               zero_init_last=c.proxy.zero_init_last,
                               zero_init_head=c.proxy.zero_init_head).to(where)
            settings = supernet_settings(net, config=self.train_config, seed=_seed(c),
                                         n_random=sn.n_random, distill=sn.distill,
                                         train_images=len(train), rule=sn.rule,
                                         data=_data_key(c))
            self._plan = _Plan(net=net, train=train, settings=settings,
                               fingerprint=fingerprint(settings),
                               val_images=sn.scored_images(len(val)))
            self.scorer.fingerprint = self._plan.fingerprint
            self.total_steps = supernet_steps(len(train), self.train_config)[1]
        return self._plan

    def config_dict(self) -> dict[str, Any]:
        p = self.plan()
        return {**self.inner.config_dict(), "supernet_settings": p.settings,
                "supernet_fingerprint": p.fingerprint}

    def setup(self, run_dir: Path, *, resume: bool) -> None:
        self.inner.setup(run_dir, resume=resume)
        self.scorer.checkpoint = str((Path(run_dir) / CHECKPOINT_FILE).resolve())

    def prepare_study(self, study: optuna.Study, *, resume: bool) -> None:
        self.inner.prepare_study(study, resume=resume)
        fp = self.plan().fingerprint
        held = study.user_attrs.get(FINGERPRINT_ATTR)
        if held is None:
            study.set_user_attr(FINGERPRINT_ATTR, fp)
        elif held != fp:  # a joined driver whose images or settings differ
            raise ValueError(f"this driver's supernet has fingerprint {fp}, the study's "
                             f"{held}: its dataset or settings differ; run every driver of "
                             f"one study on the same data")

    def log_plan(self, study: optuna.Study, run_dir: Path, n_trials: int | None) -> None:
        self.inner.log_plan(study, run_dir, n_trials)
        sn = self.config.supernet
        log.info("evaluator supernet: %d epoch(s) (%d steps of batch %d), largest + smallest + "
                 "%d random member(s) per step, %s distillation; candidates scored after "
                 "batch-norm recalibration on %d training images; fingerprint %s",
                 sn.epochs, self.total_steps, self.train_config.batch_size, sn.n_random,
                 sn.distill, sn.calib_images, self.plan().fingerprint)

    # ------------------------------------------------------------------ phase 1
    def before_search(self, study: optuna.Study, run_dir: Path) -> bool:
        """Train the supernet to the end (resuming its checkpoint); True when interrupted
        (Ctrl-C: the checkpoint keeps every finished step)."""
        plan = self.plan()
        path = Path(run_dir) / CHECKPOINT_FILE
        sn = self.config.supernet
        per_epoch, total = supernet_steps(len(plan.train), self.train_config)
        if plan.net is None:  # trained already in this process
            return False
        if path.exists():
            log.info("supernet: resuming its training from %s", path)
        every = max(1, per_epoch // 4)

        with progress(total, "supernet") as bar:
            def on_step(r: Any) -> None:
                self.last_step = r.step
                epoch, within = divmod(r.step - 1, per_epoch)
                bar.advance(r.step, f"epoch {epoch + 1}/{sn.epochs} step {within + 1}/"
                                    f"{per_epoch} loss {r.loss_largest:.3f}")
                if r.step % every == 0 or r.step == total:
                    log.info("supernet epoch %d/%d, step %d/%d (%d/%d overall): loss largest "
                             "%.4f, others %.4f, lr %.4g", epoch + 1, sn.epochs, within + 1,
                             per_epoch, r.step, total, r.loss_largest, r.loss_members, r.lr)

            try:
                res = train_supernet(plan.net, plan.train, config=self.train_config,
                                     seed=_seed(self.config), n_random=sn.n_random,
                                     distill=sn.distill, rule=sn.rule, checkpoint_path=path,
                                     checkpoint_every=CHECKPOINT_EVERY, on_step=on_step,
                                     data=_data_key(self.config))
            except KeyboardInterrupt:
                log.warning("supernet training interrupted after step %d of %d; its checkpoint "
                            "%s keeps every finished step", self.last_step, total, path)
                return True
        self.last_step = res.steps
        if res.steps > res.resumed_from:
            spent = float(study.user_attrs.get(TRAIN_SECONDS_ATTR, 0.0)) + res.seconds
            study.set_user_attr(TRAIN_SECONDS_ATTR, spent)
            log.info("supernet trained: steps %d..%d of %d in %.1fs", res.resumed_from + 1,
                     res.steps, total, res.seconds)
        plan.net = None  # phase 2 scores with the checkpoint, loaded once per process
        return False

    # ------------------------------------------------------------------ phase 2
    def propose(self, trial: optuna.Trial) -> Any:
        cand = self.inner.propose(trial)
        if trial.user_attrs.get(FINALIST):  # trained stand-alone by the finalists' phase
            trial.set_user_attr(EVALUATOR_ATTR, "proxy")
            return cand
        trial.set_user_attr(EVALUATOR_ATTR, "supernet")
        # an identical candidate scores identically with this supernet (reused, not rescored);
        # never confused with a stand-alone training of the same network
        return replace(cand, key=f"{cand.key}@supernet-{self.plan().fingerprint}")

    # ------------------------------------------------------------------ outputs
    def write_outputs(self, study: optuna.Study, run_dir: Path, *, final: bool,
                      interrupted: bool = False, backend: dict[str, Any] | None = None) -> Any:
        """The stage-1 outputs, and summary.json's ``supernet`` block; returns the stage-1
        result (its summary with the block)."""
        result = self.inner.write_outputs(study, run_dir, final=final, interrupted=interrupted,
                                          backend=backend)
        block = self.supernet_summary(study, study.get_trials(deepcopy=False))
        result.summary["supernet"] = block
        write_json(result.summary, Path(run_dir) / SUMMARY)
        signal = block["inherited_accuracy"]
        if final and signal is not None and signal["at_chance"]:
            log.warning("%s", signal["text"])
        return result

    def supernet_summary(self, study: optuna.Study, trials: list[Any]) -> dict[str, Any]:
        """summary.json's ``supernet`` block: what was trained, and what scoring cost."""
        plan = self.plan()
        scored = [t for t in trials if t.user_attrs.get(EVALUATOR_ATTR) == "supernet"
                  and t.state == optuna.trial.TrialState.COMPLETE]
        fresh = [t for t in scored if t.user_attrs.get("reused_from") is None]
        timed = [t.duration.total_seconds() for t in fresh if t.duration is not None]

        return {
            "fingerprint": plan.fingerprint, "settings": plan.settings,
            "checkpoint": CHECKPOINT_FILE, "steps": self.last_step,
            "total_steps": self.total_steps,
            "train_s": study.user_attrs.get(TRAIN_SECONDS_ATTR),
            "scored": len(scored),
            "score_s_mean": (sum(timed) / len(timed)) if timed else None,
            # whether the scores can rank at all (candidates scored here, not reused)
            "inherited_accuracy": inherited_signal(
                [float(t.user_attrs["accuracy"]) for t in fresh if "accuracy" in t.user_attrs],
                num_classes=plan.settings["supernet"]["num_classes"], images=plan.val_images),
        }
