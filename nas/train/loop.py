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
# --precision: the dtype autocast runs forward and loss in (None: none, float32 throughout)
PRECISIONS: Registry[torch.dtype | None] = Registry("precision")
PRECISIONS.add("fp32", None)
PRECISIONS.add("bf16", torch.bfloat16)
# --compile: torch.compile's mode for the training step (None: eager). reduce-overhead records
# CUDA graphs of the fixed-shape step on a GPU.
COMPILE_MODES: Registry[str | None] = Registry("compile mode")
COMPILE_MODES.add("off", None)
COMPILE_MODES.add("default", "default")
COMPILE_MODES.add("reduce-overhead", "reduce-overhead")
COMPILE_MODES.add("max-autotune", "max-autotune")


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
    # Speed levers, off by default (BENCHMARKS_train.md): a key of PRECISIONS (bf16 autocast of
    # forward and loss) and of COMPILE_MODES (torch.compile of the training step's model).
    precision: str = "fp32"
    compile: str = "off"

    def __post_init__(self) -> None:
        def need(cond: bool, rule: str, name: str, example: Any) -> None:
            if not cond:
                raise ValueError(f"`{rule}` must hold, but got {name}={getattr(self, name)!r}; "
                                 f"pass e.g. --{name.replace('_', '-')} {example}")

        need(isinstance(self.epochs, int) and self.epochs >= 1, "epochs >= 1", "epochs", 2)
        need(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size >= 1",
             "batch_size", 64)
        need(math.isfinite(self.lr) and self.lr > 0, "0 < lr < inf", "lr", 0.02)
        need(math.isfinite(self.weight_decay) and self.weight_decay >= 0,
             "0 <= weight_decay < inf", "weight_decay", 4e-5)
        need(self.warmup_epochs >= 0, "warmup_epochs >= 0", "warmup_epochs", 0.2)
        need(0 <= self.label_smoothing < 1, "0 <= label_smoothing < 1", "label_smoothing", 0.1)
        need(self.grad_clip is None or (math.isfinite(self.grad_clip) and self.grad_clip > 0),
             "grad_clip > 0", "grad_clip", "2 (or 0: no clipping)")
        need(self.threads is None or self.threads >= 1, "threads >= 1", "threads", 1)
        OPTIMIZERS.get(self.optimizer)
        SCHEDULES.get(self.schedule)
        PRECISIONS.get(self.precision)
        COMPILE_MODES.get(self.compile)
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
