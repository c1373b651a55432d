"""Elastic layers: one set of weights sized for the largest member, sliced for smaller ones.

The slicing rules are Once-for-All's (Cai et al., ICLR 2020, Sec. 3.2 and its
``ofa/utils/layers`` dynamic modules) and BigNAS's (Yu et al., ECCV 2020, Sec. 3):

- **elastic width** (expansion ratio, output filters, a stage's input channels): a member uses
  the *first* channels of every weight, batch norm and squeeze-and-excitation tensor;
- **elastic kernel**: a ``k x k`` kernel is the centre of the next larger one, passed through a
  learned ``k^2 x k^2`` linear map (OFA's kernel transform matrix, one per layer and kernel pair,
  shared by all channels, initialised to the identity), applied from the largest kernel down;
- **elastic batch norm**: the first ``c`` entries of the affine parameters and running
  statistics; the running statistics are meaningless for a member until recalibrated
  (:func:`nas.supernet.calibrate.recalibrate_bn`).

Every layer computes its effective weight with one method (``weight``); the forward pass and
the export to a stand-alone network (``export``) both call it, so the two cannot drift apart.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over the first ``x.shape[1]`` channels (OFA's DynamicBatchNorm2d).

    The running statistics of those channels are updated in place, with ``momentum`` or, when
    it is None, the cumulative average (what recalibration uses), as ``nn.BatchNorm2d`` does.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c],
                            self.bias[:c], self.training, factor, self.eps)

    def export(self, c: int) -> dict[str, torch.Tensor]:
        """The state of an ``nn.BatchNorm2d(c)`` holding this layer's first ``c`` channels."""
        return {"weight": self.weight[:c], "bias": self.bias[:c],
                "running_mean": self.running_mean[:c], "running_var": self.running_var[:c],
                "num_batches_tracked": self.num_batches_tracked}


class ElasticConvBN(nn.Module):
    """A convolution (regular or depthwise) and its batch norm, elastic in channels and kernel.

    Exported as the builder's ``conv_bn``: ``0`` the conv (no bias), ``1`` the batch norm.
    """

    def __init__(self, in_channels: int, out_channels: int, kernels: tuple[int, ...], *,
                 depthwise: bool = False, eps: float, momentum: float) -> None:
        super().__init__()
        if depthwise and in_channels != out_channels:
            raise ValueError(f"a depthwise conv keeps its channels, but got {in_channels} -> "
                             f"{out_channels}")
        self.kernels = tuple(sorted(set(kernels), reverse=True))  # largest first
        k = self.kernels[0]
        self.depthwise = depthwise
        self.weight = nn.Parameter(torch.empty(out_channels, 1 if depthwise else in_channels, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")  # as space.builder's init
        # OFA's kernel transform: "5to3" maps the centre 3x3 of the (transformed) 5x5 to the 3x3.
        self.transforms = nn.ParameterDict({
            f"{big}to{small}": nn.Parameter(torch.eye(small * small))
            for big, small in zip(self.kernels, self.kernels[1:])})
        self.bn = ElasticBatchNorm2d(out_channels, eps=eps, momentum=momentum)
        self.channels_last = False  # the conv's layout (SuperNet.set_channels_last)
        self._cached: tuple[tuple, torch.Tensor] | None = None  # (key, weight), _conv_weight's

    # Reuse a member's effective weight across batches when autograd is off (_conv_weight);
    # a switch so a benchmark can time the path without it.
    cache_weights = True

    def weight_for(self, in_channels: int, out_channels: int, kernel: int) -> torch.Tensor:
        """The effective ``(out, in or 1, kernel, kernel)`` conv weight of a member."""
        if kernel not in self.kernels:
            raise ValueError(f"kernel {kernel} is not among this layer's kernels "
                             f"{sorted(self.kernels)}")
        w = self.weight[:out_channels] if self.depthwise else \
            self.weight[:out_channels, :in_channels]
        for big, small in zip(self.kernels, self.kernels[1:]):
            if big == kernel:
                break
            start = (big - small) // 2
            w = w[:, :, start:start + small, start:start + small]
            shape = w.shape
            w = F.linear(w.reshape(-1, small * small), self.transforms[f"{big}to{small}"])
            w = w.reshape(shape)
        return w

    def forward(self, x: torch.Tensor, out_channels: int, kernel: int, stride: int, *,
                bn: ElasticBatchNorm2d | None = None) -> torch.Tensor:
        """The conv, then ``bn`` (default: this layer's own batch norm)."""
        c_in = x.shape[1]
        if self.depthwise:
            out_channels = c_in
        w = self._conv_weight(c_in, out_channels, kernel)
        y = F.conv2d(x, w, None, stride, kernel // 2, 1, c_in if self.depthwise else 1)
        return (bn or self.bn)(y)

    def _conv_weight(self, c_in: int, out_channels: int, kernel: int) -> torch.Tensor:
        """:meth:`weight_for` in the conv's layout. Without autograd (scoring) the result is
        kept and reused while the member's sizes and the parameters' version counters (which
        every in-place update, an optimizer step or ``load_state_dict``, advances) stay the
        same (the storage's address too: ``Module.to`` swaps it): a candidate's evaluation batches
        slice, transform and restride each weight once, not once per batch."""
        cache = self.cache_weights and not torch.is_grad_enabled()
        if cache:
            key = (c_in, out_channels, kernel, self.channels_last,
                   *((t.data_ptr(), t._version) for t in (self.weight, *self.transforms.values())))
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
        w = self.weight_for(c_in, out_channels, kernel)
        if self.channels_last:
            # A sliced or transformed weight is strided NCHW; restrided (``to``, not
            # ``contiguous``, which keeps an ambiguous (C, 1, k, k) as it is) the conv runs
            # channels_last kernels, 1.5-2x faster on CPU, as a built network's would.
            w = w.to(memory_format=torch.channels_last)
        if cache:
            self._cached = (key, w)
        return w

    def export(self, in_channels: int, out_channels: int, kernel: int, *,
               bn: ElasticBatchNorm2d | None = None) -> dict[str, torch.Tensor]:
        if self.depthwise:
            out_channels = in_channels
        state = {"0.weight": self.weight_for(in_channels, out_channels, kernel)}
        state.update({f"1.{k}": v for k, v in (bn or self.bn).export(out_channels).items()})
        return state


class ElasticSE(nn.Module):
    """Squeeze-and-excitation sized for the largest member (``channels`` x ``squeeze``), sliced.

    As the builder's ``SqueezeExcite``: average pool, 1x1 reduce (with bias), activation, 1x1
    expand (with bias), sigmoid gate. Off (the switch) simply means it is not called.
    """

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce_weight = nn.Parameter(torch.empty(squeeze, channels, 1, 1))
        self.reduce_bias = nn.Parameter(torch.zeros(squeeze))
        self.expand_weight = nn.Parameter(torch.empty(channels, squeeze, 1, 1))
        self.expand_bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_normal_(self.reduce_weight, mode="fan_out")
        nn.init.kaiming_normal_(self.expand_weight, mode="fan_out")

    def forward(self, x: torch.Tensor, squeeze: int, act: nn.Module) -> torch.Tensor:
        c = x.shape[1]
        s = F.adaptive_avg_pool2d(x, 1)
        s = act(F.conv2d(s, self.reduce_weight[:squeeze, :c], self.reduce_bias[:squeeze]))
        s = torch.sigmoid(F.conv2d(s, self.expand_weight[:c, :squeeze], self.expand_bias[:c]))
        return x * s

    def export(self, channels: int, squeeze: int) -> dict[str, torch.Tensor]:
        return {"reduce.weight": self.reduce_weight[:squeeze, :channels],
                "reduce.bias": self.reduce_bias[:squeeze],
                "expand.weight": self.expand_weight[:channels, :squeeze],
                "expand.bias": self.expand_bias[:channels]}


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth as ``space.builder.DropPath``: drop the branch per sample."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep
