"""RMSProp as TensorFlow 1 computes it (:class:`RMSpropTF`, the optimizer ``rmsprop_tf`` of
:data:`nas.train.config.OPTIMIZERS`)."""
from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["RMSpropTF"]


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
