"""Elastic blocks: one per block type a search space can choose, each holding its own weights.

A stage of the supernet holds, at every depth position, one elastic block per *family* of the
space's ConvOps (MnasNet Sec. 4.1's per-stage op choice): ``conv``, ``dsconv``, ``dsa``, and
``mbconv`` split in two, since the builder gives an MBConv an expansion conv only when its ratio
is not 1: ``mbconv1`` (no expansion conv) and ``mbconv`` (elastic expansion over the stage's
ratios, as OFA's elastic expand ratio). Within a family every other dimension is elastic:
kernel, width, SE (a switch, squeeze width sliced) and skip (a switch).

Where a block's last batch norm starts at zero (``zero_init_last``) and the space also offers
skip 'none', members without the residual use a batch norm of their own there (``plain_bn``,
starting at one): a zero branch without a shortcut is a constant, and the batch norms after it
divide by a zero variance (on the mnasnet space the weights reached 1e20 in 30 steps). Private
batch norms per switch are Slimmable Networks' (Yu et al., ICLR 2019) switchable batch norm,
here per skip setting rather than per width; the member's own one is what ``export`` gives.

A block runs a member from that member's :class:`space.builder.BlockArgs` (the builder's own
per-block unrolling, channel rules included: ``mid_channels``, ``se_channels``,
``has_residual``), and exports the member's weights in the builder's layer order, so the keys
match ``build(spec).state_dict()`` exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from space.builder import BlockArgs, mid_channels
from space.registry import Registry

from .elastic import ElasticBatchNorm2d, ElasticConvBN, ElasticSE, drop_path


@dataclass(frozen=True)
class BlockSizes:
    """The largest sizes a block position must hold, over every member of the space."""

    in_channels: int
    out_channels: int
    kernels: tuple[int, ...]
    expand_ratios: tuple[float, ...]
    se_ratio: float  # the largest; 0 means no member of this stage uses SE
    eps: float
    momentum: float
    plain_bn: bool = False  # a last batch norm of its own for members without the residual

    @property
    def squeeze(self) -> int:
        # the builder's rule, max(1, int(in * se_ratio)), at the largest input and ratio
        return max(1, int(self.in_channels * self.se_ratio)) if self.se_ratio > 0 else 0


ELASTIC_BLOCKS: Registry[Callable[[BlockSizes], "ElasticBlock"]] = Registry("elastic block family")


def family(block: str, expand_ratio: float) -> str:
    """The weight family of a ConvOp: its block type, with MBConv split by expansion conv."""
    if block == "mbconv" and expand_ratio == 1:
        return "mbconv1"
    return block


class ElasticBlock(nn.Module):
    """A block's branch plus the builder's identity shortcut with stochastic depth."""

    def __init__(self, s: BlockSizes, *, linear_end: bool = True) -> None:
        super().__init__()
        # Only a branch that ends in its batch norm (no activation after it) is zero-initialised
        # (space.builder's zero_init_last), so only such a block needs the skip-'none' twin.
        self.linear_end = linear_end
        self.plain_bn = ElasticBatchNorm2d(s.out_channels, eps=s.eps, momentum=s.momentum) \
            if s.plain_bn and linear_end else None

    def last(self, a: BlockArgs) -> ElasticBatchNorm2d | None:
        """The batch norm a member's last layer uses, when not that layer's own."""
        return self.plain_bn if self.plain_bn is not None and not a.has_residual else None

    def branch(self, x: torch.Tensor, a: BlockArgs, act: nn.Module) -> torch.Tensor:
        raise NotImplementedError

    def layers(self, a: BlockArgs) -> list[dict[str, torch.Tensor]]:
        """Each builder layer's state, in the builder's order (``branch.0``, ``branch.1``, ...)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, a: BlockArgs, act: nn.Module) -> torch.Tensor:
        y = self.branch(x, a, act)
        if a.has_residual:
            y = drop_path(y, a.drop_path, self.training) + x
        return y

    def export(self, a: BlockArgs) -> dict[str, torch.Tensor]:
        return {f"branch.{k}.{name}": v for k, layer in enumerate(self.layers(a))
                for name, v in layer.items()}

    def last_bn(self) -> nn.BatchNorm2d | None:
        """The branch's last batch norm as the residual members use it (for zero-init), or None
        when the branch ends in an activation: a zero there would never train."""
        raise NotImplementedError


class ElasticMBConv(ElasticBlock):
    """Inverted bottleneck (``space.builder.mbconv``): [1x1 expand], k x k depthwise, [SE],
    1x1 linear projection."""

    def __init__(self, s: BlockSizes, *, expand: bool) -> None:
        super().__init__(s)
        mid = max(max(1, int(round(s.in_channels * e))) for e in s.expand_ratios)
        if not expand:
            mid = s.in_channels
        bn = dict(eps=s.eps, momentum=s.momentum)
        self.expand = ElasticConvBN(s.in_channels, mid, (1,), **bn) if expand else None
        self.depthwise = ElasticConvBN(mid, mid, s.kernels, depthwise=True, **bn)
        self.se = ElasticSE(mid, s.squeeze) if s.squeeze else None
        self.project = ElasticConvBN(mid, s.out_channels, (1,), **bn)

    def branch(self, x: torch.Tensor, a: BlockArgs, act: nn.Module) -> torch.Tensor:
        mid = mid_channels(a)
        if a.expand_ratio != 1:
            x = act(self.expand(x, mid, 1, 1))
        x = act(self.depthwise(x, mid, a.kernel, a.stride))
        if a.se_ratio > 0:
            x = self.se(x, a.se_channels, act)
        return self.project(x, a.out_channels, 1, 1, bn=self.last(a))

    def layers(self, a: BlockArgs) -> list[dict[str, torch.Tensor]]:
        mid = mid_channels(a)
        out = []
        if a.expand_ratio != 1:
            out.append(self.expand.export(a.in_channels, mid, 1))
        out.append(self.depthwise.export(mid, mid, a.kernel))
        if a.se_ratio > 0:
            out.append(self.se.export(mid, a.se_channels))
        out.append(self.project.export(mid, a.out_channels, 1, bn=self.last(a)))
        return out

    def last_bn(self) -> nn.BatchNorm2d:
        return self.project.bn


class ElasticSeparable(ElasticBlock):
    """Depthwise-separable conv (``space.builder.dsconv``, and ``dsa`` with ``pw_act``):
    k x k depthwise, [SE], 1x1 pointwise."""

    def __init__(self, s: BlockSizes, *, pw_act: bool) -> None:
        super().__init__(s, linear_end=not pw_act)
        bn = dict(eps=s.eps, momentum=s.momentum)
        self.pw_act = pw_act
        self.depthwise = ElasticConvBN(s.in_channels, s.in_channels, s.kernels, depthwise=True, **bn)
        self.se = ElasticSE(s.in_channels, s.squeeze) if s.squeeze else None
        self.pointwise = ElasticConvBN(s.in_channels, s.out_channels, (1,), **bn)

    def branch(self, x: torch.Tensor, a: BlockArgs, act: nn.Module) -> torch.Tensor:
        x = act(self.depthwise(x, a.in_channels, a.kernel, a.stride))
        if a.se_ratio > 0:
            x = self.se(x, a.se_channels, act)
        x = self.pointwise(x, a.out_channels, 1, 1, bn=self.last(a))
        return act(x) if self.pw_act else x

    def layers(self, a: BlockArgs) -> list[dict[str, torch.Tensor]]:
        out = [self.depthwise.export(a.in_channels, a.in_channels, a.kernel)]
        if a.se_ratio > 0:
            out.append(self.se.export(a.in_channels, a.se_channels))
        out.append(self.pointwise.export(a.in_channels, a.out_channels, 1, bn=self.last(a)))
        return out

    def last_bn(self) -> nn.BatchNorm2d | None:
        return None if self.pw_act else self.pointwise.bn


class ElasticRegularConv(ElasticBlock):
    """MnasNet's regular conv op (``space.builder.regular_conv``): one k x k conv, [SE]."""

    def __init__(self, s: BlockSizes) -> None:
        super().__init__(s, linear_end=False)
        self.conv = ElasticConvBN(s.in_channels, s.out_channels, s.kernels, eps=s.eps,
                                  momentum=s.momentum)
        # the builder excites the output channels, squeezed from the input filters
        self.se = ElasticSE(s.out_channels, s.squeeze) if s.squeeze else None

    def branch(self, x: torch.Tensor, a: BlockArgs, act: nn.Module) -> torch.Tensor:
        x = act(self.conv(x, a.out_channels, a.kernel, a.stride, bn=self.last(a)))
        if a.se_ratio > 0:
            x = self.se(x, a.se_channels, act)
        return x

    def layers(self, a: BlockArgs) -> list[dict[str, torch.Tensor]]:
        out = [self.conv.export(a.in_channels, a.out_channels, a.kernel, bn=self.last(a))]
        if a.se_ratio > 0:
            out.append(self.se.export(a.out_channels, a.se_channels))
        return out

    def last_bn(self) -> nn.BatchNorm2d | None:
        return None  # conv, BN, activation: the branch ends activated


ELASTIC_BLOCKS.add("mbconv", lambda s: ElasticMBConv(s, expand=True))
ELASTIC_BLOCKS.add("mbconv1", lambda s: ElasticMBConv(s, expand=False))
ELASTIC_BLOCKS.add("dsconv", lambda s: ElasticSeparable(s, pw_act=False))
ELASTIC_BLOCKS.add("dsa", lambda s: ElasticSeparable(s, pw_act=True))
ELASTIC_BLOCKS.add("conv", ElasticRegularConv)
