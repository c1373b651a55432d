"""``nas train``: train a found (or zoo) network to completion, resumably (EfficientNet Sec. 5.2).

:func:`train` resolves the model (zoo name, spec file or search run folder), retargets it at the
dataset, applies a recipe (:mod:`nas.train.recipes`), and trains it with the one training loop,
:func:`nas.train.loop.fit`, on a GPU when one is visible and on the CPU otherwise. Validation
uses a split held out from the training set (:func:`nas.data.proxy_data`); the test split is
evaluated once, at the end, with top-1 and top-5.

A run folder holds:

``config.json``       ``"stage": "train"``, the job (:class:`~nas.train.job.TrainJob`), the
                      recipe's TrainConfig, the spec's hash, and ``replanned_from`` once a
                      ``--resume --epochs N`` changed the run's length
``spec.json``         the trained spec: retargeted (channels, classes, resolution) and with the
                      recipe's batch-norm settings; ``arch_hash`` is this spec's
``checkpoints/epoch-NNNN.pt``
                      one per finished epoch, the newest ``keep`` kept (:mod:`.checkpoint`)
``metrics.csv``       one row per epoch: :data:`METRIC_COLUMNS`
``results.json``      test top-1/top-5 of the raw and EMA weights, written at the end

``resume=True`` continues from the newest checkpoint: same weights, optimizer, EMA, RNG state
and shuffle order, so the resumed run continues at the right epoch and learning-rate step and
ends where an uninterrupted one would. A resume with another ``epochs`` (not below those
already trained) re-plans the schedule to end there, as a fresh run of that length plans it,
and trains the epochs not yet done: ``nas train --resume --epochs N`` extends a finished run.
"""
from __future__ import annotations

import csv
import io
import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from nas.data.ondevice import device_splits
from results.rundir import check_new_run_dir, read_config, run_lock, write_config
from space import ArchSpec, build, save_spec
from space.errors import checked
from space.io import atomic_write_text, write_json

from .checkpoint import (Checkpoint, check_classes, check_same_spec, checkpoint_path,
                         list_checkpoints, load_checkpoint, rng_state, save_checkpoint,
                         set_rng_state)
from .device import resolve_device
from .ema import ModelEma
from .job import Setup, TrainJob, check_resume_epochs, check_resume_job, load_job, prepare
from .loop import OPTIMIZERS, EpochResult, TrainConfig, evaluate, fit, set_threads
from .recipes import param_groups

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.csv"
RESULTS_FILE = "results.json"
SPEC_FILE = "spec.json"
METRIC_COLUMNS = ("epoch", "lr", "train_loss", "val_top1", "val_top1_ema", "seconds",
                  "images_per_sec")


@dataclass
class TrainResult:
    run_dir: Path
    spec: ArchSpec
    epochs: list[dict[str, Any]]
    test: dict[str, float]
    checkpoint: Path | None
    val_images: int | None = None  # the validation split's size (what nas cam draws from)

    @property
    def top1(self) -> float:
        return self.test.get("top1_ema", self.test["top1"])

    @property
    def top5(self) -> float:
        return self.test.get("top5_ema", self.test["top5"])


EpochRowCallback = Callable[[dict[str, Any]], None]


def train(job: TrainJob, *, out: str | Path, resume: bool = False,
          on_epoch: EpochRowCallback | None = None) -> TrainResult:
    """Train ``job`` into the run folder ``out``; ``resume`` continues it from its newest
    checkpoint (to ``job.epochs``, re-planning the schedule if that changed). ``on_epoch`` sees
    each epoch's metrics row after its checkpoint is written (raising there stops the run; the
    checkpoint stays). ``job.threads`` holds for the whole run (evaluation included); the
    caller's torch thread count is restored afterwards. A second process on the same folder is
    refused (:class:`results.rundir.RunFolderInUse`)."""
    resolve_device(job.device)  # a device not here is bad input: nothing is written
    if not resume:
        check_new_run_dir(out)  # a file, or a folder of someone's files: refused
    before = torch.get_num_threads()
    try:
        set_threads(job.threads)
        with run_lock(Path(out), command="nas train"):
            return _train(job, run_dir=Path(out), resume=resume, on_epoch=on_epoch)
    finally:
        torch.set_num_threads(before)


def _train(job: TrainJob, *, run_dir: Path, resume: bool,
           on_epoch: EpochRowCallback | None) -> TrainResult:
    previous: dict[str, Any] = {}
    if resume:
        check_resume_job(load_job(run_dir), job)
        previous = read_config(run_dir)
    elif existing := list_checkpoints(run_dir):
        raise FileExistsError(f"{str(run_dir)!r} already holds a nas train run (checkpoints up to "
                              f"{existing[-1].name}); pass --resume to continue it, or another "
                              f"--out for a new run")
    setup = prepare(job)
    spec, cfg, device, data = setup.spec, setup.train, setup.device, setup.data
    ckpt = _checkpoint_to_resume(run_dir, setup, job) if resume else None
    replanned_from = previous.get("replanned_from")
    if ckpt is not None:
        replanned_from = _replan(ckpt, cfg) or replanned_from
    config = {"job": job.to_dict(), "train": cfg.to_dict(), "recipe": setup.recipe.name,
              "ema_decay": setup.ema_decay, "arch_hash": spec.arch_hash(),
              "device": {"requested": job.device, "resolved": str(device)}}
    if replanned_from is not None:
        config["replanned_from"] = replanned_from
    write_config(run_dir, "train", config)
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
             cfg.batch_size, cfg.lr, extra=checked())
    data_info = {"dataset": setup.dataset.name, "data_dir": job.data_dir,
                 "resolution": spec.resolution, "train_samples": job.train_samples,
                 "val_samples": len(data.val_y), "seed": job.seed, "mean": list(data.mean),
                 "std": list(data.std), "classes": list(setup.dataset.classes)}
    last_path: list[Path] = [ckpt.path] if ckpt is not None else []
    # the splits as uint8 on the device, once; resized and normalized there batch by batch
    train_split, val_split = device_splits(setup.dataset, data, device=device)

    def end_of_epoch(res: EpochResult) -> None:
        ema_top1 = None
        if ema is not None:
            (ema_top1,) = evaluate(ema.module, val_split, batch_size=cfg.eval_batch_size,
                                   channels_last=cfg.channels_last, precision=cfg.precision)
        row = {"epoch": res.epoch, "lr": res.lr, "train_loss": res.train_loss,
               "val_top1": res.val_accuracy, "val_top1_ema": ema_top1, "seconds": res.seconds,
               "images_per_sec": res.images_per_sec}
        history.append(row)
        path = save_checkpoint(checkpoint_path(run_dir, res.epoch), {
            "spec": spec.to_dict(), "arch_hash": spec.arch_hash(), "epoch": res.epoch,
            "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(), "rng": rng_state(device),
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
            set_rng_state(ckpt.rng, device)
        else:
            torch.manual_seed(job.seed)

        def on_step(m: nn.Module) -> None:
            if ema is not None:
                ema.update(m)
            advance()

        if start < cfg.epochs:
            fit(model, train_split, None, val_split, None, config=cfg, seed=job.seed,
                on_epoch=end_of_epoch, start_epoch=start, optimizer=optimizer, on_step=on_step)
        else:
            log.info("all %d epochs were already done; evaluating on the test split", cfg.epochs)
    write_metrics(run_dir, history)
    test = final_test(model, ema, setup)
    _write_results(run_dir, job=job, setup=setup, test=test, history=history,
                   replanned_from=replanned_from)
    log.info("test split: top-1 %.4f  top-5 %.4f%s", test["top1"], test["top5"],
             "" if "top1_ema" not in test else
             f"  (EMA weights: top-1 {test['top1_ema']:.4f}  top-5 {test['top5_ema']:.4f})")
    return TrainResult(run_dir=run_dir, spec=spec, epochs=history, test=test,
                       checkpoint=last_path[0] if last_path else None,
                       val_images=len(data.val_y))


def _checkpoint_to_resume(run_dir: Path, setup: Setup, job: TrainJob) -> Checkpoint:
    if not list_checkpoints(run_dir):
        raise FileNotFoundError(f"--resume: {str(run_dir)!r} has no checkpoint yet (no epoch "
                                f"finished); start the run again without --resume (same --out)")
    ckpt = load_checkpoint(run_dir)
    check_classes(ckpt, dataset=setup.dataset.name, num_classes=setup.dataset.num_classes)
    check_same_spec(ckpt, setup.spec, given=job.model)
    return ckpt


def _replan(ckpt: Checkpoint, cfg: TrainConfig) -> int | None:
    """The epochs the run was planned for, if ``cfg`` changes that (else None). The loop's
    schedule reads ``cfg.epochs``, so the remaining epochs follow the new plan."""
    planned = int(ckpt.train["epochs"])
    check_resume_epochs(done=ckpt.epoch, epochs=cfg.epochs)
    if cfg.epochs == planned:
        return None
    log.info("%s the run from %d to %d epochs: the schedule is re-planned to end at %d",
             "extending" if cfg.epochs > planned else "shortening", planned, cfg.epochs,
             cfg.epochs)
    return planned


def _restore(ckpt: Checkpoint, *, model: nn.Module, optimizer: torch.optim.Optimizer,
             ema: ModelEma | None) -> None:
    model.load_state_dict(ckpt.model)
    optimizer.load_state_dict(ckpt.optimizer)
    if ema is not None and ckpt.ema is not None:
        ema.load_state_dict(ckpt.ema)


# --------------------------------------------------------------------------- outputs
def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in METRIC_COLUMNS})
    return atomic_write_text(run_dir / METRICS_FILE, buf.getvalue())


def _write_results(run_dir: Path, *, job: TrainJob, setup: Setup, test: dict[str, float],
                   history: list[dict[str, Any]], replanned_from: int | None) -> None:
    last = history[-1] if history else {}
    replanned = {} if replanned_from is None else {"replanned_from": replanned_from}
    write_json({"model": job.model, "spec": setup.spec.name, "arch_hash": setup.spec.arch_hash(),
                "dataset": setup.dataset.name, "recipe": setup.recipe.name,
                "epochs": setup.train.epochs, **replanned, "resolution": setup.spec.resolution,
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


def final_test(model: nn.Module, ema: ModelEma | None, setup: Setup) -> dict[str, float]:
    """Top-1/top-5 on the untouched test split, raw and (when kept) EMA weights."""
    from nas.data import test_data

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
