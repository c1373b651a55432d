"""``nas train``: train a found (or zoo) network to completion, resumably (EfficientNet Sec. 5.2).

:func:`train` resolves the model (zoo name, spec file or search run folder), retargets it at the
dataset, applies a recipe (:mod:`nas.recipes`), and trains it with the one training loop,
:func:`nas.training.fit`, on a GPU when one is visible and on the CPU otherwise. Validation uses
a split held out from the training set (:func:`nas.data.proxy_data`); the test split is evaluated
once, at the end, with top-1 and top-5.

A run folder holds:

``config.json``       the job (:class:`TrainJob`), the recipe's TrainConfig and the spec's hash
``spec.json``         the trained spec: retargeted (channels, classes, resolution) and with the
                      recipe's batch-norm settings; ``arch_hash`` is this spec's
``checkpoints/epoch-NNNN.pt``
                      one per finished epoch, the newest ``keep`` kept; each holds the spec
                      JSON and its ``arch_hash``, the epoch, the model, optimizer and EMA states,
                      the torch RNG state(s), the data settings (incl. normalization), the job
                      and the metrics history (see :func:`save_checkpoint`)
``metrics.csv``       one row per epoch: :data:`METRIC_COLUMNS`
``results.json``      test top-1/top-5 of the raw and EMA weights, written at the end

``resume=True`` continues from the newest checkpoint: same weights, optimizer, EMA, RNG state
and shuffle order, so the resumed run continues at the right epoch and learning-rate step and
ends where an uninterrupted one would.
"""
from __future__ import annotations

import csv
import dataclasses
import fcntl
import os
import io
import json
import logging
import math
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from results.store import write_json
from space import ArchSpec, build, resolve_spec, save_spec

from .ema import ModelEma
from .recipes import Recipe, make_recipe
from .training import OPTIMIZERS, EpochResult, TrainConfig, evaluate, fit, set_threads

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "efficientnas-train-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
RESULTS_FILE = "results.json"
SPEC_FILE = "spec.json"
METRIC_COLUMNS = ("epoch", "lr", "train_loss", "val_top1", "val_top1_ema", "seconds",
                  "images_per_sec")
DEFAULT_MAX_VAL_SAMPLES = 5000
MIN_DEFAULT_RESOLUTION = 32
_CKPT_NAME = re.compile(r"^epoch-(\d{4,})\.pt$")


# --------------------------------------------------------------------------- the job
@dataclass(frozen=True)
class TrainJob:
    """One ``nas train`` run as the user asked for it. ``None`` means "the default":
    the recipe's epochs/batch size/EMA decay; resolution ``min(spec.resolution, max(32, image
    size))``; all training images; ``min(5000, n // 10)`` held-out validation images.
    ``ema_decay=0`` turns the weight average off."""

    model: str
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    recipe: str = "fast"
    epochs: int | None = None
    batch_size: int | None = None
    resolution: int | None = None
    train_samples: int | None = None
    val_samples: int | None = None
    ema_decay: float | None = None
    seed: int = 0
    channels_last: bool = True
    # How, not what: these may change on --resume.
    device: str = "auto"
    threads: int | None = None
    keep: int = 3

    def __post_init__(self) -> None:
        # The rest (epochs, batch size, samples, decay) is checked where it is used.
        for name, minimum, example in (("keep", 1, 3), ("threads", 1, 1), ("resolution", 8, 32),
                                       ("val_samples", 1, 5000)):
            value = getattr(self, name)
            if value is None and name != "keep":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"`{name} >= {minimum}` must hold, but got {name}={value!r}; "
                                 f"pass e.g. {flag} {example}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainJob:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


RESUME_MUTABLE = ("device", "threads", "keep")
FLAG_NAMES = {"channels_last": "--no-channels-last"}


def check_resume_job(saved: TrainJob, job: TrainJob) -> None:
    """A resumed run keeps its meaning; every setting but device/threads/keep must match. The
    model is checked by architecture hash against the checkpoint instead (see
    :func:`check_same_spec`), so another path to the same spec is fine."""
    for f in dataclasses.fields(TrainJob):
        if f.name in RESUME_MUTABLE or f.name == "model":
            continue
        have, want = getattr(saved, f.name), getattr(job, f.name)
        if have != want:
            flag = FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
            raise ValueError(f"{flag} {want!r} differs from the resumed run's {have!r}; a resumed "
                             f"run keeps its settings: drop {flag} or start a new run with "
                             f"another --out")


def load_job(run_dir: str | Path) -> TrainJob:
    p = Path(run_dir) / CONFIG_FILE
    if not p.is_file():
        raise FileNotFoundError(f"--resume: {str(run_dir)!r} is not a nas train run folder (no "
                                f"{CONFIG_FILE}); pass the --out of an earlier nas train run")
    return TrainJob.from_dict(json.loads(p.read_text())["job"])


# --------------------------------------------------------------------------- devices
def pick_device(name: str) -> torch.device:
    """``auto``: the first CUDA GPU if torch sees one, else the CPU; ``cpu``; ``cuda[:N]``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; pass --device auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name} needs a CUDA GPU, but torch sees none "
                         f"(torch.cuda.is_available() is False); pass --device auto or cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r} is not supported; pass --device auto, cpu or cuda[:N]")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # an index, for RNG state
    return device


# --------------------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint. ``data`` holds what is needed to rebuild the inputs: dataset,
    data_dir, resolution, train_samples, val_samples, seed, mean, std, classes."""

    path: Path
    spec: ArchSpec
    arch_hash: str
    epoch: int
    model: dict[str, torch.Tensor]
    ema: dict[str, Any] | None
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    train: dict[str, Any]
    data: dict[str, Any]
    job: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    def weights(self, which: str = "ema") -> dict[str, torch.Tensor]:
        """``ema`` (the averaged weights, falling back to raw when the run kept none) or ``raw``."""
        if which not in ("ema", "raw"):
            raise ValueError(f"weights must be 'ema' or 'raw', but got {which!r}")
        if which == "ema" and self.ema is not None:
            return self.ema["module"]
        return self.model


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / CHECKPOINT_DIR / f"epoch-{epoch:04d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (a killed run never leaves half a checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint file, or the newest checkpoint of a ``nas train`` run folder.

    Raises FileNotFoundError when there is none, ValueError for a file that is not a checkpoint
    or whose spec does not hash to the ``arch_hash`` it records.
    """
    p = Path(path)
    if p.is_dir():
        found = list_checkpoints(p)
        if not found:
            raise FileNotFoundError(f"no checkpoint in {str(p)!r} (expected "
                                    f"{CHECKPOINT_DIR}/epoch-NNNN.pt); pass a checkpoint file or "
                                    f"a folder written by nas train --out")
        p = found[-1]
    elif not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist; pass a .pt file or a "
                                f"folder written by nas train --out")
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors have no common base class
        raise ValueError(f"{str(p)!r} is not a nas train checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); pass a file written by "
                         f"nas train") from None
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(p)!r} is not a nas train checkpoint (format "
                         f"{raw.get('format') if isinstance(raw, dict) else type(raw).__name__!r}"
                         f", expected {CHECKPOINT_FORMAT!r}); pass a file written by nas train")
    if raw.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{str(p)!r}: checkpoint version {raw.get('version')!r} is not "
                         f"{CHECKPOINT_VERSION}, which this efficientnas reads")
    spec = ArchSpec.from_dict(raw["spec"])
    if spec.arch_hash() != raw["arch_hash"]:
        raise ValueError(f"{str(p)!r}: its spec hashes to {spec.arch_hash()} but the checkpoint "
                         f"records arch_hash {raw['arch_hash']}; the file was edited or corrupted")
    return Checkpoint(path=p, spec=spec, arch_hash=raw["arch_hash"], epoch=int(raw["epoch"]),
                      model=raw["model"], ema=raw.get("ema"), optimizer=raw["optimizer"],
                      rng=raw["rng"], train=raw["train"], data=raw["data"], job=raw["job"],
                      history=list(raw.get("history", [])))


def check_same_spec(ckpt: Checkpoint, spec: ArchSpec, *, given: str) -> None:
    """The checkpoint must hold the architecture ``spec`` describes; say which hashes differ."""
    if ckpt.arch_hash == spec.arch_hash():
        return
    mine, theirs = ckpt.spec.to_dict(include_meta=False), spec.to_dict(include_meta=False)
    differ = [k for k in mine if k != "name" and mine[k] != theirs.get(k)]
    raise ValueError(f"checkpoint {str(ckpt.path)!r} is from another spec: it holds "
                     f"{ckpt.spec.name!r} with arch_hash {ckpt.arch_hash}, but {given!r} gives "
                     f"{spec.name!r} with arch_hash {spec.arch_hash()} (fields that differ: "
                     f"{', '.join(differ) or 'none'}); pass the model the run was trained from, "
                     f"or start a new run with another --out")


def check_classes(ckpt: Checkpoint, *, dataset: str, num_classes: int) -> None:
    if ckpt.spec.num_classes != num_classes:
        raise ValueError(f"dataset {dataset!r} has {num_classes} classes, but checkpoint "
                         f"{str(ckpt.path)!r} was trained for {ckpt.spec.num_classes} (on "
                         f"{ckpt.data.get('dataset')!r}); pass --dataset "
                         f"{ckpt.data.get('dataset')} or a checkpoint trained on {dataset!r}")


# --------------------------------------------------------------------------- setup
@dataclass(frozen=True)
class Setup:
    """Everything a job resolves to before training starts."""

    spec: ArchSpec
    recipe: Recipe
    train: TrainConfig
    ema_decay: float | None
    device: torch.device
    dataset: Any  # nas.data.Dataset
    data: Any  # nas.data.ProxyData


def default_resolution(spec: ArchSpec, image_size: int) -> int:
    """The spec's resolution, but no larger than the images (or 32, if they are smaller)."""
    return min(spec.resolution, max(MIN_DEFAULT_RESOLUTION, image_size))


def prepare(job: TrainJob) -> Setup:
    """Resolve the model, data, recipe and device of ``job`` (raises on any bad input)."""
    from .data import load_dataset, proxy_data

    base = resolve_spec(job.model)
    device = pick_device(job.device)
    ds = load_dataset(job.dataset, data_dir=job.data_dir)
    resolution = job.resolution or default_resolution(base, ds.image_size)
    n = len(ds.train_labels)
    val_samples = job.val_samples or max(1, min(DEFAULT_MAX_VAL_SAMPLES, n // 10))
    data = proxy_data(ds, resolution=resolution, train_samples=job.train_samples,
                      val_samples=val_samples, seed=job.seed)
    task = base.with_task(in_channels=ds.in_channels, num_classes=ds.num_classes,
                          resolution=resolution)
    recipe = make_recipe(job.recipe, task, batch_size=job.batch_size, epochs=job.epochs)
    train = dataclasses.replace(recipe.train, threads=job.threads,
                                channels_last=job.channels_last)
    ema_decay = recipe.ema_decay if job.ema_decay is None else (job.ema_decay or None)
    return Setup(spec=recipe.spec, recipe=recipe, train=train, ema_decay=ema_decay,
                 device=device, dataset=ds, data=data)


def param_groups(model: nn.Module, *, decay_batch_norm: bool) -> list[dict[str, Any]]:
    """Weight decay on every parameter except batch norm's (the official code's L2 term skips
    ``batch_normalization`` variables), unless ``decay_batch_norm``."""
    bn_params = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 for p in m.parameters(recurse=False)}
    if decay_batch_norm or not bn_params:
        return [{"params": list(model.parameters())}]
    decay = [p for p in model.parameters() if id(p) not in bn_params]
    no_decay = [p for p in model.parameters() if id(p) in bn_params]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


# --------------------------------------------------------------------------- outputs
def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in METRIC_COLUMNS})
    path = run_dir / METRICS_FILE
    tmp = run_dir / f".{METRICS_FILE}.tmp"
    tmp.write_text(buf.getvalue())
    tmp.replace(path)
    return path


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


@dataclass
class TrainResult:
    run_dir: Path
    spec: ArchSpec
    epochs: list[dict[str, Any]]
    test: dict[str, float]
    checkpoint: Path | None

    @property
    def top1(self) -> float:
        return self.test.get("top1_ema", self.test["top1"])

    @property
    def top5(self) -> float:
        return self.test.get("top5_ema", self.test["top5"])


EpochRowCallback = Callable[[dict[str, Any]], None]


# --------------------------------------------------------------------------- the run
def train(job: TrainJob, *, out: str | Path, resume: bool = False,
          on_epoch: EpochRowCallback | None = None) -> TrainResult:
    """Train ``job`` into the run folder ``out``; ``resume`` continues it from its newest
    checkpoint. ``on_epoch`` sees each epoch's metrics row after its checkpoint is written
    (raising there stops the run; the checkpoint stays). ``job.threads`` holds for the whole
    run (evaluation included); the caller's torch thread count is restored afterwards."""
    before = torch.get_num_threads()
    try:
        set_threads(job.threads)
        with run_lock(Path(out)):
            return _train(job, run_dir=Path(out), resume=resume, on_epoch=on_epoch)
    finally:
        torch.set_num_threads(before)


LOCK_FILE = ".lock"


class RunFolderInUse(OSError):
    """Another process holds the run folder."""


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder for one process: a second ``nas train`` (or ``--resume``) on the
    same folder would interleave checkpoints and metrics rows. The lock is an OS file lock, so
    a killed run never leaves it held. A folder this call created is removed again if the run
    fails before writing anything into it (bad input leaves no trace)."""
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    with open(path, "a+") as f:
        locked = False
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise RunFolderInUse(f"run folder {str(run_dir)!r} is in use by another nas train "
                                 f"(pid {holder}); wait for it to finish or stop it, or pass "
                                 f"another --out") from None
        except OSError as e:  # a file system without locks (some network mounts): go on
            log.warning("could not lock %s (%s); make sure no other nas train uses this folder",
                        run_dir, e)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        except BaseException:
            if created and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
                path.unlink()
                run_dir.rmdir()
            raise
        finally:
            if locked:
                fcntl.flock(f, fcntl.LOCK_UN)


def _train(job: TrainJob, *, run_dir: Path, resume: bool,
           on_epoch: EpochRowCallback | None) -> TrainResult:
    if resume:
        check_resume_job(load_job(run_dir), job)
    elif existing := list_checkpoints(run_dir):
        raise FileExistsError(f"{str(run_dir)!r} already holds a nas train run (checkpoints up to "
                              f"{existing[-1].name}); pass --resume to continue it, or another "
                              f"--out for a new run")
    setup = prepare(job)
    spec, cfg, device, data = setup.spec, setup.train, setup.device, setup.data
    ckpt = _checkpoint_to_resume(run_dir, setup, job) if resume else None
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json({"job": job.to_dict(), "train": cfg.to_dict(), "recipe": setup.recipe.name,
                "ema_decay": setup.ema_decay, "arch_hash": spec.arch_hash()},
               run_dir / CONFIG_FILE)
    save_spec(spec, run_dir / SPEC_FILE)

    memory_format = torch.channels_last if cfg.channels_last else torch.preserve_format
    model = build(spec, seed=job.seed).to(device, memory_format=memory_format)
    optimizer = OPTIMIZERS.get(cfg.optimizer)(
        param_groups(model, decay_batch_norm=setup.recipe.decay_batch_norm), cfg)
    ema = (ModelEma(model, decay=setup.ema_decay, warmup=setup.recipe.ema_warmup)
           if setup.ema_decay else None)
    history: list[dict[str, Any]] = []
    start = 0
    if ckpt is not None:
        _restore(ckpt, model=model, optimizer=optimizer, ema=ema)
        history, start = [r for r in ckpt.history if r["epoch"] <= ckpt.epoch], ckpt.epoch
        log.info("resuming %s at epoch %d of %d from %s", spec.name, start + 1, cfg.epochs,
                 ckpt.path)
    log.info("training %s (arch_hash %s) on %s at %dpx with recipe %r on %s: %d train / %d val "
             "images, batch %d, lr %.4g", spec.name, spec.arch_hash(), setup.dataset.name,
             spec.resolution, setup.recipe.name, device, len(data.train_y), len(data.val_y),
             cfg.batch_size, cfg.lr)
    data_info = {"dataset": setup.dataset.name, "data_dir": job.data_dir,
                 "resolution": spec.resolution, "train_samples": job.train_samples,
                 "val_samples": len(data.val_y), "seed": job.seed, "mean": list(data.mean),
                 "std": list(data.std), "classes": list(setup.dataset.classes)}
    last_path: list[Path] = [ckpt.path] if ckpt is not None else []

    def end_of_epoch(res: EpochResult) -> None:
        ema_top1 = None
        if ema is not None:
            (ema_top1,) = evaluate(ema.module, data.val_x, data.val_y,
                                   batch_size=cfg.eval_batch_size, channels_last=cfg.channels_last)
        row = {"epoch": res.epoch, "lr": res.lr, "train_loss": res.train_loss,
               "val_top1": res.val_accuracy, "val_top1_ema": ema_top1, "seconds": res.seconds,
               "images_per_sec": res.images_per_sec}
        history.append(row)
        path = save_checkpoint(checkpoint_path(run_dir, res.epoch), {
            "spec": spec.to_dict(), "arch_hash": spec.arch_hash(), "epoch": res.epoch,
            "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(), "rng": _rng_state(device),
            "train": cfg.to_dict(), "data": data_info, "job": job.to_dict(),
            "history": list(history)})
        last_path[:] = [path]
        for old in list_checkpoints(run_dir)[:-job.keep]:
            old.unlink(missing_ok=True)
        write_metrics(run_dir, history)
        log.info("epoch %d/%d: loss %.4f  val top-1 %.4f%s  lr %.4g  %.0f img/s", res.epoch,
                 cfg.epochs, res.train_loss, res.val_accuracy,
                 "" if ema_top1 is None else f" (EMA {ema_top1:.4f})", row["lr"],
                 res.images_per_sec)
        if on_epoch is not None:
            on_epoch(row)

    devices = [device.index] if device.type == "cuda" else []
    steps_per_epoch = max(1, math.ceil(len(data.train_y) / cfg.batch_size))
    with torch.random.fork_rng(devices=devices), \
            _progress(steps_per_epoch, start, cfg.epochs) as advance:
        if ckpt is not None:
            _set_rng_state(ckpt.rng, device)
        else:
            torch.manual_seed(job.seed)

        def on_step(m: nn.Module) -> None:
            if ema is not None:
                ema.update(m)
            advance()

        if start < cfg.epochs:
            fit(model, data.train_x, data.train_y, data.val_x, data.val_y, config=cfg,
                seed=job.seed, on_epoch=end_of_epoch, start_epoch=start, optimizer=optimizer,
                on_step=on_step)
        else:
            log.info("all %d epochs were already done; evaluating on the test split", cfg.epochs)
    if not history:  # an already finished run resumed: keep its rows
        history = list(ckpt.history) if ckpt is not None else []
    write_metrics(run_dir, history)
    test = final_test(model, ema, setup)
    _write_results(run_dir, job=job, setup=setup, test=test, history=history)
    log.info("test split: top-1 %.4f  top-5 %.4f%s", test["top1"], test["top5"],
             "" if "top1_ema" not in test else
             f"  (EMA weights: top-1 {test['top1_ema']:.4f}  top-5 {test['top5_ema']:.4f})")
    return TrainResult(run_dir=run_dir, spec=spec, epochs=history, test=test,
                       checkpoint=last_path[0] if last_path else None)


def _checkpoint_to_resume(run_dir: Path, setup: Setup, job: TrainJob) -> Checkpoint:
    if not list_checkpoints(run_dir):
        raise FileNotFoundError(f"--resume: {str(run_dir)!r} has no checkpoint yet (no epoch "
                                f"finished); start the run again without --resume (same --out)")
    ckpt = load_checkpoint(run_dir)
    check_classes(ckpt, dataset=setup.dataset.name, num_classes=setup.dataset.num_classes)
    check_same_spec(ckpt, setup.spec, given=job.model)
    return ckpt


def _restore(ckpt: Checkpoint, *, model: nn.Module, optimizer: torch.optim.Optimizer,
             ema: ModelEma | None) -> None:
    model.load_state_dict(ckpt.model)
    optimizer.load_state_dict(ckpt.optimizer)
    if ema is not None and ckpt.ema is not None:
        ema.load_state_dict(ckpt.ema)


def _write_results(run_dir: Path, *, job: TrainJob, setup: Setup, test: dict[str, float],
                   history: list[dict[str, Any]]) -> None:
    last = history[-1] if history else {}
    write_json({"model": job.model, "spec": setup.spec.name, "arch_hash": setup.spec.arch_hash(),
                "dataset": setup.dataset.name, "recipe": setup.recipe.name,
                "epochs": setup.train.epochs, "resolution": setup.spec.resolution,
                "test_images": test["images"],
                **{f"test_{k}": v for k, v in test.items() if k != "images"},
                "val_top1": last.get("val_top1", math.nan),
                "val_top1_ema": last.get("val_top1_ema", math.nan),
                "device": str(setup.device)}, run_dir / RESULTS_FILE)


@contextmanager
def _progress(steps_per_epoch: int, start: int, epochs: int) -> Iterator[Callable[[], None]]:
    """A rich progress bar over the remaining steps (epoch n/N); silent when not a terminal."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    console = Console(stderr=True)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                   disable=not console.is_terminal, transient=True)
    done = [start * steps_per_epoch]
    with bar:
        task = bar.add_task(f"epoch {start + 1}/{epochs}", total=steps_per_epoch)

        def advance() -> None:
            done[0] += 1
            epoch, step = divmod(done[0], steps_per_epoch)
            if step == 0:  # an epoch just ended
                bar.update(task, completed=0, description=f"epoch {min(epoch + 1, epochs)}/"
                                                          f"{epochs}")
            else:
                bar.update(task, completed=step)

        yield advance


def model_from_checkpoint(ckpt: Checkpoint, *, weights: str = "ema") -> nn.Module:
    """The checkpoint's network in eval mode, with its EMA (default) or raw weights, on the CPU."""
    model = build(ckpt.spec)
    model.load_state_dict(ckpt.weights(weights))
    return model.eval()


def final_test(model: nn.Module, ema: ModelEma | None, setup: Setup) -> dict[str, float]:
    """Top-1/top-5 on the untouched test split, raw and (when kept) EMA weights."""
    from .data import test_data

    x, y = test_data(setup.dataset, resolution=setup.spec.resolution, normalize_like=setup.data)
    cfg = setup.train
    out: dict[str, float] = {"images": len(y)}
    out["top1"], out["top5"] = evaluate(model, x, y, batch_size=cfg.eval_batch_size,
                                        channels_last=cfg.channels_last, topk=(1, 5))
    if ema is not None:
        out["top1_ema"], out["top5_ema"] = evaluate(ema.module, x, y,
                                                    batch_size=cfg.eval_batch_size,
                                                    channels_last=cfg.channels_last, topk=(1, 5))
    return out
