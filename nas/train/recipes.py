"""Training recipes: how to train a found network to completion (EfficientNet Sec. 5.2).

A recipe is a function ``(spec, *, batch_size, epochs) -> Recipe`` looked up by name in
:data:`RECIPES`. It returns the :class:`~nas.train.config.TrainConfig` for the one training loop
(:func:`nas.train.loop.fit`), the spec adjusted for training (batch-norm settings), and the
weight-average (EMA) settings. Both recipes train with :func:`nas.train.loop.fit`, the loop
stage 1's proxy evaluator uses too. :func:`param_groups` applies a recipe's weight-decay rule.

``paper``: the paper's ImageNet recipe as the official code runs it (tensorflow/tpu,
models/official/efficientnet: main.py and utils.py):

- RMSProp with decay 0.9, momentum 0.9, epsilon 1e-3, in TF's form (``rmsprop_tf``: epsilon
  inside the square root, mean square starting at 1);
- batch-norm momentum 0.99 in TF's convention, i.e. 0.01 in PyTorch's; batch-norm epsilon 1e-3;
- weight decay 1e-5 as an L2 term on every weight except batch-norm's;
- learning rate 0.256 per 4096 images, scaled linearly: ``0.256 * batch_size / 4096``;
- linear warm-up over 5 epochs (official ``warmup_epochs=5``), or a fifth of the run when that
  is shorter (a deviation, so that short runs leave warm-up);
- then staircase decay by 0.97 every 2.4 epochs, counted from epoch 0 as the official
  ``exponential_decay`` does (so the rate right after warm-up is 0.97**2 of the peak);
- label smoothing 0.1 (official default); SiLU, dropout and drop-connect as the spec gives them;
- EMA of the weights with decay 0.9999 and TF's ``num_updates`` warm-up (see :mod:`nas.train.ema`);
- 350 epochs and batch 128 by default (the paper: 350 epochs at batch 4096 on TPUs).

Not included: AutoAugment and the TPU's cross-replica batch norm.

``fast``: for short CPU runs (a few epochs). Nesterov SGD at ``0.01 * batch_size / 64`` after a
linear warm-up over 0.1 epoch, cosine decay to zero, weight decay 4e-5 (not on batch norm),
label smoothing 0.1, batch-norm momentum 0.1 (PyTorch's default, so the running statistics keep
up in a few hundred steps), EMA decay 0.999 with the same warm-up (averaging about the last 11%
of steps, at most the last ~1000), 5 epochs and batch 64 by default. The learning rate was
measured (benchmarks/BENCHMARKS_train.md): B0 on 20000 Fashion-MNIST images at 32 px, one
epoch, reached 33% validation accuracy at 0.05, 70% at 0.02, 75% at 0.01, 70% at 0.005, and
77% at 0.01 with the warm-up (the 10-class classifier starts with large logits, as in the
official init, and early steps at 0.05 blow the loss up to ~12).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from space import ArchSpec
from space.registry import Registry

from .loop import TrainConfig

PAPER_LR = 0.256
PAPER_LR_BATCH = 4096
PAPER_WARMUP_EPOCHS = 5.0
FAST_LR = 0.01
FAST_WARMUP_EPOCHS = 0.1
FAST_LR_BATCH = 64


@dataclass(frozen=True)
class Recipe:
    """What a recipe decides. ``ema_decay=None`` means no weight average."""

    name: str
    spec: ArchSpec
    train: TrainConfig
    ema_decay: float | None
    ema_warmup: bool = True
    decay_batch_norm: bool = False  # weight decay on batch-norm weights too


RecipeFn = Callable[..., Recipe]
RECIPES: Registry[RecipeFn] = Registry("recipe")


def _positive(name: str, value: int | None, default: int, flag: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name} >= 1` must hold, but got {name}={value!r}; pass e.g. "
                         f"{flag} {default}")
    return value


def scaled_lr(base_lr: float, *, batch_size: int, base_batch: int) -> float:
    """Linear scaling (Goyal et al.): ``base_lr`` was set for ``base_batch`` images per step."""
    return base_lr * batch_size / base_batch


@RECIPES.register("paper")
def paper(spec: ArchSpec, *, batch_size: int | None = None, epochs: int | None = None) -> Recipe:
    batch_size = _positive("batch_size", batch_size, 128, "--batch-size")
    epochs = _positive("epochs", epochs, 350, "--epochs")
    train = TrainConfig(
        epochs=epochs, batch_size=batch_size, optimizer="rmsprop_tf",
        lr=scaled_lr(PAPER_LR, batch_size=batch_size, base_batch=PAPER_LR_BATCH),
        momentum=0.9, weight_decay=1e-5, schedule="exponential",
        warmup_epochs=min(PAPER_WARMUP_EPOCHS, epochs / 5), label_smoothing=0.1,
        extra={"decay_rate": 0.97, "decay_epochs": 2.4, "rmsprop_eps": 1e-3})
    return Recipe(name="paper", spec=spec.replace(bn_momentum=0.01, bn_eps=1e-3), train=train,
                  ema_decay=0.9999)


@RECIPES.register("fast")
def fast(spec: ArchSpec, *, batch_size: int | None = None, epochs: int | None = None) -> Recipe:
    batch_size = _positive("batch_size", batch_size, 64, "--batch-size")
    epochs = _positive("epochs", epochs, 5, "--epochs")
    train = TrainConfig(
        epochs=epochs, batch_size=batch_size, optimizer="sgd",
        lr=scaled_lr(FAST_LR, batch_size=batch_size, base_batch=FAST_LR_BATCH),
        momentum=0.9, weight_decay=4e-5, schedule="cosine",
        warmup_epochs=min(FAST_WARMUP_EPOCHS, epochs / 2), label_smoothing=0.1)
    return Recipe(name="fast", spec=spec.replace(bn_momentum=0.1), train=train, ema_decay=0.999)


def make_recipe(name: str, spec: ArchSpec, *, batch_size: int | None = None,
                epochs: int | None = None) -> Recipe:
    """The recipe ``name`` applied to ``spec``; KeyError lists the known recipes."""
    return RECIPES.get(name)(spec, batch_size=batch_size, epochs=epochs)


def param_groups(model: nn.Module, *, decay_batch_norm: bool) -> list[dict[str, Any]]:
    """Weight decay on every parameter except batch norm's (the official code's L2 term skips
    ``batch_normalization`` variables), unless ``decay_batch_norm`` (a recipe's setting)."""
    bn_params = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 for p in m.parameters(recurse=False)}
    if decay_batch_norm or not bn_params:
        return [{"params": list(model.parameters())}]
    decay = [p for p in model.parameters() if id(p) not in bn_params]
    no_decay = [p for p in model.parameters() if id(p) in bn_params]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
