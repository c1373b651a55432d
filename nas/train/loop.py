"""The one training loop: stage 1's proxy evaluator, stage 2's grid points and ``nas train``.

:class:`TrainConfig` says how to train; :func:`fit` trains a model in place on in-memory tensors
and validates after every epoch; :func:`evaluate` gives top-k accuracies; :func:`lr_at` is the
learning rate the schedule plans for any (fractional) epoch.

Optimizers and learning-rate schedules are looked up by name in registries. Training runs on
in-memory tensors (the proxy data are small), in channels_last by default (about 3x faster for
convs on CPU, see BENCHMARKS.md), with an explicit torch thread count and a seeded shuffle.
A non-finite loss raises ``FloatingPointError`` so a search can record the trial as failed.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import nn

from space.registry import Registry

log = logging.getLogger(__name__)

OPTIMIZERS: Registry[Callable[[Any, "TrainConfig"], torch.optim.Optimizer]] = Registry("optimizer")
SCHEDULES: Registry[Callable[[float, "TrainConfig"], float]] = Registry("lr schedule")


class ReadOnlyDict(dict):
    """A dict that refuses changes, so a frozen :class:`TrainConfig` is frozen all the way down.

    A ``dict`` subclass rather than a ``types.MappingProxyType`` because callers serialize
    configs with ``dataclasses.asdict`` (which deep-copies, and cannot copy a mappingproxy) and
    ``json.dumps`` (which writes a dict subclass as a plain object): both stay as they were.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("TrainConfig.extra is read-only; make a new config with "
                        "dataclasses.replace(config, extra={**config.extra, key: value})")

    __setitem__ = __delitem__ = __ior__ = _refuse  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and deepcopy without __setitem__
        return (type(self), (dict(self),))


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``lr`` is for ``batch_size`` as given (scale it yourself, or use a recipe).

    ``extra`` holds schedule and optimizer settings only some of them read (``decay_rate``,
    ``decay_epochs``, ``rmsprop_eps``); it is stored read-only (:class:`ReadOnlyDict`).
    """

    epochs: int = 1
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    threads: int | None = None
    channels_last: bool = True
    eval_batch_size: int = 500
    grad_clip: float | None = None
    extra: Mapping[str, Any] = field(default_factory=ReadOnlyDict)

    def __post_init__(self) -> None:
        def need(cond: bool, rule: str, name: str, example: Any) -> None:
            if not cond:
                raise ValueError(f"`{rule}` must hold, but got {name}={getattr(self, name)!r}; "
                                 f"pass e.g. --{name.replace('_', '-')} {example}")

        need(isinstance(self.epochs, int) and self.epochs >= 1, "epochs >= 1", "epochs", 2)
        need(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size >= 1",
             "batch_size", 64)
        need(self.lr > 0, "lr > 0", "lr", 0.02)
        need(self.weight_decay >= 0, "weight_decay >= 0", "weight_decay", 4e-5)
        need(self.warmup_epochs >= 0, "warmup_epochs >= 0", "warmup_epochs", 0.2)
        need(0 <= self.label_smoothing < 1, "0 <= label_smoothing < 1", "label_smoothing", 0.1)
        need(self.threads is None or self.threads >= 1, "threads >= 1", "threads", 1)
        OPTIMIZERS.get(self.optimizer)
        SCHEDULES.get(self.schedule)
        if not isinstance(self.extra, Mapping):
            raise TypeError(f"TrainConfig.extra must be a mapping of setting names to values, "
                            f"but got {type(self.extra).__name__}; pass e.g. "
                            f"extra={{'decay_rate': 0.97}}")
        if not isinstance(self.extra, ReadOnlyDict):
            object.__setattr__(self, "extra", ReadOnlyDict(self.extra))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``extra`` as a plain dict); :meth:`from_dict` reads it back."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        return cls(**d)


@OPTIMIZERS.register("sgd")
def _sgd(params: Any, c: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
                           nesterov=c.momentum > 0)


@OPTIMIZERS.register("adamw")
def _adamw(params: Any, c: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(params: Any, c: TrainConfig) -> torch.optim.Optimizer:
    # TF's RMSProp: decay 0.9 (PyTorch alpha), eps 1e-3 as in the official EfficientNet code.
    return torch.optim.RMSprop(params, lr=c.lr, alpha=0.9, eps=c.extra.get("rmsprop_eps", 1e-3),
                               momentum=c.momentum, weight_decay=c.weight_decay)


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp as TensorFlow 1 (and so the official EfficientNet code) computes it.

    PyTorch's RMSprop differs in three ways that matter at the paper's settings: TF starts the
    mean square at 1 (not 0), adds ``eps`` inside the square root (not outside), and folds the
    learning rate into the momentum buffer. Per parameter, with ``g`` the gradient plus
    ``weight_decay * w`` (the official code's L2 term in the loss)::

        ms  = alpha * ms + (1 - alpha) * g**2            # alpha: TF's ``decay`` (0.9)
        mom = momentum * mom + lr * g / sqrt(ms + eps)   # eps 1e-3, as the official code
        w   = w - mom
    """

    def __init__(self, params: Any, *, lr: float, alpha: float = 0.9, eps: float = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum,
                                      weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p)
                    state["momentum_buffer"] = torch.zeros_like(p)
                square_avg, buf = state["square_avg"], state["momentum_buffer"]
                square_avg.mul_(group["alpha"]).addcmul_(grad, grad, value=1 - group["alpha"])
                buf.mul_(group["momentum"]).addcdiv_(grad, square_avg.add(group["eps"]).sqrt_(),
                                                     value=group["lr"])
                p.sub_(buf)
        return loss


@OPTIMIZERS.register("rmsprop_tf")
def _rmsprop_tf(params: Any, c: TrainConfig) -> torch.optim.Optimizer:
    return RMSpropTF(params, lr=c.lr, alpha=0.9, eps=c.extra.get("rmsprop_eps", 1e-3),
                     momentum=c.momentum, weight_decay=c.weight_decay)


def _warmup(epoch: float, c: TrainConfig) -> float | None:
    if c.warmup_epochs > 0 and epoch < c.warmup_epochs:
        return (epoch + 1e-9) / c.warmup_epochs
    return None


@SCHEDULES.register("cosine")
def _cosine(epoch: float, c: TrainConfig) -> float:
    w = _warmup(epoch, c)
    if w is not None:
        return w
    span = max(c.epochs - c.warmup_epochs, 1e-9)
    t = min(max(epoch - c.warmup_epochs, 0.0) / span, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * t))


@SCHEDULES.register("constant")
def _constant(epoch: float, c: TrainConfig) -> float:
    w = _warmup(epoch, c)
    return 1.0 if w is None else w


@SCHEDULES.register("exponential")
def _exponential(epoch: float, c: TrainConfig) -> float:
    """The paper's: decay by ``decay_rate`` (0.97) every ``decay_epochs`` (2.4), staircase."""
    w = _warmup(epoch, c)
    if w is not None:
        return w
    rate = c.extra.get("decay_rate", 0.97)
    every = c.extra.get("decay_epochs", 2.4)
    return rate ** math.floor(epoch / every)


def lr_at(epoch: float, config: TrainConfig) -> float:
    """The learning rate at a (fractional) epoch."""
    return config.lr * SCHEDULES.get(config.schedule)(epoch, config)


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    val_accuracy: float
    lr: float  # the learning rate of the epoch's last step
    seconds: float
    images_per_sec: float


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


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def _to_model_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s weights live; batches (kept on the CPU) are moved there one by one."""
    return next(iter(model.parameters()), torch.empty(0)).device


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500,
             channels_last: bool = True, topk: tuple[int, ...] = (1,)) -> tuple[float, ...]:
    """Top-k accuracies of ``model`` on (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    correct = [0] * len(topk)
    kmax = min(max(topk), int(model(x[:1].to(device)).shape[1]) if len(x) else 1)
    for idx in _batches(len(x), batch_size, None):
        logits = model(_to_model_layout(x[idx].to(device), channels_last))
        pred = logits.topk(kmax, dim=1).indices
        hit = pred.eq(y[idx].to(device).unsqueeze(1))
        for j, k in enumerate(topk):
            correct[j] += int(hit[:, :min(k, kmax)].any(dim=1).sum())
    model.train(was_training)
    return tuple(c / max(len(x), 1) for c in correct)


EpochCallback = Callable[[EpochResult], None]


def fit(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor,
        val_y: torch.Tensor, *, config: TrainConfig, seed: int | None = 0,
        on_epoch: EpochCallback | None = None, start_epoch: int = 0,
        optimizer: torch.optim.Optimizer | None = None,
        on_step: Callable[[nn.Module], None] | None = None) -> FitResult:
    """Train ``model`` in place and validate after every epoch.

    ``on_epoch`` sees each epoch's result; it may raise (e.g. ``optuna.TrialPruned``) to stop.
    ``start_epoch``/``optimizer`` let a caller resume; ``on_step`` runs after every optimizer step
    (e.g. an EMA update).
    """
    set_threads(config.threads)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = optimizer or OPTIMIZERS.get(config.optimizer)(model.parameters(), config)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    gen = torch.Generator().manual_seed(0 if seed is None else seed)
    for _ in range(start_epoch):  # keep the shuffle stream identical across a resume
        torch.randperm(len(train_x), generator=gen)
    steps_per_epoch = max(1, math.ceil(len(train_x) / config.batch_size))
    device = model_device(model)
    results: list[EpochResult] = []
    t_start = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        model.train()
        t0 = time.perf_counter()
        total_loss, seen = 0.0, 0
        lr = lr_at(epoch, config)
        for step, idx in enumerate(_batches(len(train_x), config.batch_size, gen)):
            lr = lr_at(epoch + step / steps_per_epoch, config)
            for g in opt.param_groups:
                g["lr"] = lr
            xb = _to_model_layout(train_x[idx].to(device, non_blocking=True), config.channels_last)
            loss = loss_fn(model(xb), train_y[idx].to(device, non_blocking=True))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                    f"lower the learning rate (lr={config.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            if on_step is not None:
                on_step(model)
            total_loss += float(loss.detach()) * len(idx)
            seen += len(idx)
        train_seconds = time.perf_counter() - t0
        (acc,) = evaluate(model, val_x, val_y, batch_size=config.eval_batch_size,
                          channels_last=config.channels_last)
        res = EpochResult(epoch=epoch + 1, train_loss=total_loss / max(seen, 1), val_accuracy=acc,
                          lr=lr, seconds=time.perf_counter() - t0,
                          images_per_sec=seen / train_seconds if train_seconds > 0 else 0.0)
        results.append(res)
        log.debug("epoch %d: loss %.4f val acc %.4f (%.0f img/s)", res.epoch, res.train_loss,
                  acc, res.images_per_sec)
        if on_epoch is not None:
            on_epoch(res)
    return FitResult(epochs=results, seconds=time.perf_counter() - t_start)
