"""Exponential moving average of a model's weights, as the official EfficientNet code keeps one.

The official training script (tensorflow/tpu, models/official/efficientnet/main.py) builds
``tf.train.ExponentialMovingAverage(decay=0.9999, num_updates=global_step)`` over the trainable
variables *and* the batch-norm moving statistics, and evaluates the averaged weights. With
``num_updates`` TensorFlow lowers the decay early in training::

    decay_t = min(decay, (1 + t) / (10 + t))        # t: optimizer steps taken so far

so the average first covers roughly the last ``t / 9`` steps (about the last 11% of training)
and settles at ``decay`` once ``t > 9 / (1 - decay) - 10`` (90k steps for 0.9999, 9k for 0.999).
:class:`ModelEma` does exactly this when ``warmup=True``; pass ``warmup=False`` for a constant
decay. Short CPU runs (a few thousand steps) never reach 0.9999, so the warm-up is what makes
the average useful there; the ``fast`` recipe also caps the decay at 0.999 (see nas.train.recipes).

Floating-point parameters and buffers are averaged; integer buffers (``num_batches_tracked``)
are copied.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


def ema_decay_at(step: int, *, decay: float, warmup: bool = True) -> float:
    """The decay applied at the ``step``-th update (0-based), TF's ``num_updates`` rule."""
    if warmup:
        return min(decay, (1.0 + step) / (10.0 + step))
    return decay


class ModelEma:
    """A frozen copy of ``model`` whose weights follow the model's by an exponential average.

    ``update(model)`` after each optimizer step (``fit(..., on_step=ema.update)``); evaluate
    ``ema.module``. ``decay`` in [0, 1): 0 copies the weights, 0.9999 is the official setting.
    """

    def __init__(self, model: nn.Module, *, decay: float = 0.9999, warmup: bool = True) -> None:
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
            raise ValueError(f"`0 <= ema decay < 1` must hold, but got decay={decay!r}; pass e.g. "
                             f"--ema-decay 0.9999 (the official value) or 0.999 for short runs")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @property
    def current_decay(self) -> float:
        """The decay the next update will use."""
        return ema_decay_at(self.updates, decay=self.decay, warmup=self.warmup)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay
        mine = self.module.state_dict()
        averaged, values = [], []
        for name, value in model.state_dict().items():
            target = mine[name]
            if target.is_floating_point():
                averaged.append(target)
                values.append(value.detach())
            else:
                target.copy_(value)
        # d * ema + (1 - d) * w, one fused kernel per tensor list (as timm's ModelEmaV3)
        torch._foreach_lerp_(averaged, values, 1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates,
                "decay": self.decay, "warmup": self.warmup}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])
        self.warmup = bool(state["warmup"])
