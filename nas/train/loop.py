"""The one training loop: stage 1's proxy evaluator, stage 2's grid points and ``nas train``.

:class:`TrainConfig` (:mod:`.config`, with :func:`lr_at`, the learning rate the schedule plans
for any fractional epoch) says how to train; :func:`fit` trains a model in place on in-memory
tensors and validates after every epoch; :func:`evaluate` gives top-k accuracies.

Optimizers and learning-rate schedules are looked up by name in registries. Training runs on
in-memory tensors (the proxy data are small), in channels_last by default (about 3x faster for
convs on CPU, see BENCHMARKS.md), with an explicit torch thread count and a seeded shuffle.
A non-finite loss raises ``FloatingPointError`` so a search can record the trial as failed.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn

from space.registry import Registry

# the config and its tables live in the light .config (--help reads them without torch)
from .config import (COMPILE_MODES, OPTIMIZERS, PRECISION_DTYPES, SCHEDULES,  # noqa: F401
                     ReadOnlyDict, TrainConfig, lr_at)
from .optim import RMSpropTF  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)



def _precisions() -> Registry[torch.dtype | None]:
    table: Registry[torch.dtype | None] = Registry("precision")
    for name in PRECISION_DTYPES:
        dtype = PRECISION_DTYPES.get(name)
        table.add(name, None if dtype is None else getattr(torch, dtype))
    return table


# --precision: the dtype autocast runs forward and loss in (None: none, float32 throughout), by
# the names of nas.train.config.PRECISION_DTYPES (which --help and TrainConfig read without torch)
PRECISIONS = _precisions()


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    val_accuracy: float
    lr: float  # the learning rate of the epoch's last step
    seconds: float
    images_per_sec: float
    val_loss: float = float("nan")  # mean cross-entropy on the validation split


@dataclass
class FitResult:
    epochs: list[EpochResult]
    seconds: float

    @property
    def accuracy(self) -> float:
        return self.epochs[-1].val_accuracy if self.epochs else float("nan")

    @property
    def images_per_sec(self) -> float:
        done = [e for e in self.epochs if e.images_per_sec > 0]
        return sum(e.images_per_sec for e in done) / len(done) if done else 0.0


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads explicitly; returns the count in force."""
    if threads is not None:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def _batches(n: int, batch_size: int, generator: torch.Generator | None,
             device: torch.device | None = None) -> Iterator[torch.Tensor]:
    """Index batches of a seeded shuffle (drawn on the CPU, so every device sees the same
    order), moved to ``device`` in one copy per epoch."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    if device is not None:
        order = order.to(device, non_blocking=True)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def _to_model_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s weights live; the data are moved there once, at the start."""
    return next(iter(model.parameters()), torch.empty(0)).device


def as_split(x: Any, y: torch.Tensor | None = None) -> Any:
    """A split with ``len``, ``to(device)`` and ``batch(idx) -> (input, labels)``:
    ``x`` itself when it is one (:class:`nas.data.ImageSplit`), else tensors ``(x, y)``."""
    if isinstance(x, torch.Tensor):
        from nas.data.ondevice import TensorSplit

        if y is None:
            raise TypeError("labels are needed with an input tensor: pass (x, y)")
        return TensorSplit(x, y)
    return x


def _autocast(device: torch.device, precision: str) -> Any:
    dtype = PRECISIONS.get(precision)
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)


@torch.no_grad()
def evaluate(model: nn.Module, x: Any, y: torch.Tensor | None = None, *, batch_size: int = 500,
             channels_last: bool = True, topk: tuple[int, ...] = (1,),
             precision: str = "fp32") -> tuple[float, ...]:
    """Top-k accuracies of ``model`` on (x, y) (or on the split ``x``), in eval mode. Hits are
    counted on the model's device and read once, at the end."""
    accs, _ = evaluate_with_loss(model, x, y, batch_size=batch_size, channels_last=channels_last,
                                 topk=topk, precision=precision)
    return accs


@torch.no_grad()
def evaluate_with_loss(model: nn.Module, x: Any, y: torch.Tensor | None = None, *,
                       batch_size: int = 500, channels_last: bool = True,
                       topk: tuple[int, ...] = (1,),
                       precision: str = "fp32") -> tuple[tuple[float, ...], float]:
    """:func:`evaluate`'s top-k accuracies and the mean cross-entropy (no label smoothing) on
    the same pass."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    data = as_split(x, y).to(device)
    n = len(data)
    correct = torch.zeros(len(topk), dtype=torch.int64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    if n:
        with _autocast(device, precision):
            first = model(_to_model_layout(data.batch(slice(0, 1))[0], channels_last))
        kmax = min(max(topk), int(first.shape[1]))
        ks = torch.tensor([min(k, kmax) for k in topk], device=device)
        for idx in _batches(n, batch_size, None, device):
            xb, yb = data.batch(idx)
            with _autocast(device, precision):
                logits = model(_to_model_layout(xb, channels_last))
            hit = logits.topk(kmax, dim=1).indices.eq(yb.unsqueeze(1)).cumsum(dim=1) > 0
            correct += hit.index_select(1, ks - 1).sum(dim=0)
            loss_sum += nn.functional.cross_entropy(logits.float(), yb, reduction="sum").double()
    model.train(was_training)
    (loss,) = (loss_sum / max(n, 1)).view(1).tolist()
    return tuple(c / max(n, 1) for c in correct.tolist()), loss


EpochCallback = Callable[[EpochResult], None]


def _step_model(model: nn.Module, config: TrainConfig) -> Callable[[torch.Tensor], Any]:
    """The module a training step calls: ``model``, or torch.compile of it (the same weights;
    evaluation uses ``model`` itself, so eval mode never recompiles)."""
    mode = COMPILE_MODES.get(config.compile)
    return model if mode is None else torch.compile(model, mode=mode)


def fit(model: nn.Module, train_x: Any, train_y: torch.Tensor | None, val_x: Any,
        val_y: torch.Tensor | None, *, config: TrainConfig, seed: int | None = 0,
        on_epoch: EpochCallback | None = None, start_epoch: int = 0,
        optimizer: torch.optim.Optimizer | None = None,
        on_step: Callable[[nn.Module], None] | None = None) -> FitResult:
    """Train ``model`` in place and validate after every epoch.

    The data are tensors ``(x, y)`` or splits (``train_x``/``val_x`` an
    :class:`nas.data.ImageSplit`, ``train_y``/``val_y`` None); they move to the model's device
    once. Within an epoch nothing waits for the device: the loss is summed there and read once
    per epoch, with the first step whose loss was not finite (then ``FloatingPointError``).
    ``on_epoch`` sees each epoch's result; it may raise (e.g. ``optuna.TrialPruned``) to stop.
    ``start_epoch``/``optimizer`` let a caller resume; ``on_step`` runs after every optimizer step
    (e.g. an EMA update).
    """
    set_threads(config.threads)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    device = model_device(model)
    train, val = as_split(train_x, train_y).to(device), as_split(val_x, val_y).to(device)
    opt = optimizer or OPTIMIZERS.get(config.optimizer)(model.parameters(), config)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    step_model = _step_model(model, config)
    n = len(train)
    gen = torch.Generator().manual_seed(0 if seed is None else seed)
    for _ in range(start_epoch):  # keep the shuffle stream identical across a resume
        torch.randperm(n, generator=gen)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    results: list[EpochResult] = []
    t_start = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        model.train()
        t0 = time.perf_counter()
        # float64, as the Python float sum it replaces: the same train_loss to the last bit
        total_loss = torch.zeros((), dtype=torch.float64, device=device)
        first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        seen = 0
        lr = lr_at(epoch, config)
        for step, idx in enumerate(_batches(n, config.batch_size, gen, device)):
            lr = lr_at(epoch + step / steps_per_epoch, config)
            for g in opt.param_groups:
                g["lr"] = lr
            xb, yb = train.batch(idx)
            with _autocast(device, config.precision):
                loss = loss_fn(step_model(_to_model_layout(xb, config.channels_last)), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            if on_step is not None:
                on_step(model)
            batch = len(idx)
            loss = loss.detach()
            total_loss += loss.double() * batch
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss),
                                    torch.full_like(first_bad, step), first_bad)
            seen += batch
        summed, bad = torch.stack([total_loss, first_bad.double()]).tolist()  # one sync
        if bad >= 0:
            raise FloatingPointError(
                f"training loss became {summed / max(seen, 1)} (mean of epoch {epoch + 1}; "
                f"first not finite at step {int(bad) + 1}); lower the learning rate "
                f"(lr={config.lr})")
        train_seconds = time.perf_counter() - t0
        (acc,), val_loss = evaluate_with_loss(model, val, batch_size=config.eval_batch_size,
                                              channels_last=config.channels_last,
                                              precision=config.precision)
        res = EpochResult(epoch=epoch + 1, train_loss=summed / max(seen, 1), val_accuracy=acc,
                          lr=lr, seconds=time.perf_counter() - t0,
                          images_per_sec=seen / train_seconds if train_seconds > 0 else 0.0,
                          val_loss=val_loss)
        results.append(res)
        log.debug("epoch %d: loss %.4f val acc %.4f (%.0f img/s)", res.epoch, res.train_loss,
                  acc, res.images_per_sec)
        if on_epoch is not None:
            on_epoch(res)
    return FitResult(epochs=results, seconds=time.perf_counter() - t_start)
