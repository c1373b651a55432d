"""How to train (:class:`TrainConfig`) and the tables it names: optimizers (each returns a
``torch.optim.Optimizer``), learning-rate schedules, precisions and compile modes.

Light on purpose: torch is imported inside the optimizer factories, so ``--help`` lists the
names and states the defaults without importing torch. The loop that uses them is
:mod:`nas.train.loop`, which re-exports them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

from space.registry import Registry

OPTIMIZERS: Registry[Callable[[Any, "TrainConfig"], Any]] = Registry("optimizer")
SCHEDULES: Registry[Callable[[float, "TrainConfig"], float]] = Registry("lr schedule")
# --precision: the name of the torch dtype autocast runs forward and loss in (None: none, float32
# throughout); nas.train.loop.PRECISIONS holds the dtypes themselves
PRECISION_DTYPES: Registry[str | None] = Registry("precision")
PRECISION_DTYPES.add("fp32", None)
PRECISION_DTYPES.add("bf16", "bfloat16")
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
    # Speed levers, off by default (BENCHMARKS_train.md): a key of PRECISION_DTYPES (bf16 autocast of
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
        PRECISION_DTYPES.get(self.precision)
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
def _sgd(params: Any, c: TrainConfig) -> Any:
    import torch

    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
                           nesterov=c.momentum > 0)


@OPTIMIZERS.register("adamw")
def _adamw(params: Any, c: TrainConfig) -> Any:
    import torch

    return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(params: Any, c: TrainConfig) -> Any:
    import torch

    # TF's RMSProp: decay 0.9 (PyTorch alpha), eps 1e-3 as in the official EfficientNet code.
    return torch.optim.RMSprop(params, lr=c.lr, alpha=0.9, eps=c.extra.get("rmsprop_eps", 1e-3),
                               momentum=c.momentum, weight_decay=c.weight_decay)


@OPTIMIZERS.register("rmsprop_tf")
def _rmsprop_tf(params: Any, c: TrainConfig) -> Any:
    from .optim import RMSpropTF

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
