"""Build a PyTorch module from an :class:`ArchSpec` (EfficientNet paper, Sec. 4 and Table 1).

``build(spec)`` is pure: it reads the spec and never changes it. Block types and activations are
looked up in registries. Stochastic depth follows the official code: block ``i`` of ``n`` drops
its residual branch with probability ``drop_connect * i / n``. Dropout sits before the classifier.
Every op is channels_last-friendly (plain convs, BN, adaptive pooling).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .registry import Registry
from .spec import ArchSpec

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")
ACTIVATIONS.add("relu", lambda: nn.ReLU(inplace=True))
ACTIVATIONS.add("relu6", lambda: nn.ReLU6(inplace=True))
ACTIVATIONS.add("silu", lambda: nn.SiLU(inplace=True))
ACTIVATIONS.add("swish", lambda: nn.SiLU(inplace=True))
ACTIVATIONS.add("hard_swish", lambda: nn.Hardswish(inplace=True))

BLOCKS: Registry[Callable[["BlockArgs"], nn.Module]] = Registry("block type")


@dataclass(frozen=True)
class BlockArgs:
    """Everything one block needs: its stage's settings resolved for its position."""

    block: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    expand_ratio: float
    se_ratio: float
    skip: str
    activation: str
    bn_eps: float
    bn_momentum: float
    drop_path: float

    def act(self) -> nn.Module:
        return ACTIVATIONS.get(self.activation)()

    def bn(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.bn_eps, momentum=self.bn_momentum)

    @property
    def se_channels(self) -> int:
        # Official EfficientNet: squeeze from the block's *input* filters.
        return max(1, int(self.in_channels * self.se_ratio))

    @property
    def has_residual(self) -> bool:
        return self.skip == "identity" and self.stride == 1 and self.in_channels == self.out_channels


def block_args(spec: ArchSpec) -> list[BlockArgs]:
    """Per-block arguments in network order; the single place that unrolls stages."""
    out: list[BlockArgs] = []
    total = spec.num_blocks
    in_ch = spec.stem.channels
    idx = 0
    for stage in spec.stages:
        for r in range(stage.repeats):
            out.append(BlockArgs(
                block=stage.block, in_channels=in_ch, out_channels=stage.out_channels, kernel=stage.kernel,
                stride=stage.stride if r == 0 else 1, expand_ratio=stage.expand_ratio,
                se_ratio=stage.se_ratio, skip=stage.skip, activation=spec.activation,
                bn_eps=spec.bn_eps, bn_momentum=spec.bn_momentum,
                drop_path=spec.drop_connect * idx / total,
            ))
            in_ch = stage.out_channels
            idx += 1
    return out


def mid_channels(args: BlockArgs) -> int:
    """Width inside a block: ``in * expand`` for mbconv, ``out * expand`` for bottleneck."""
    base = args.out_channels if args.block == "bottleneck" else args.in_channels
    return max(1, int(round(base * args.expand_ratio)))


def conv_bn(in_ch: int, out_ch: int, k: int, stride: int, args: BlockArgs, *, groups: int = 1,
            act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, k, stride, k // 2, groups=groups, bias=False),
        args.bn(out_ch),
    ]
    if act:
        layers.append(args.act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int, act: nn.Module) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = act
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * s


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}"


class _Residual(nn.Module):
    """A branch plus an identity (or projection) shortcut, with stochastic depth."""

    def last_bn(self) -> nn.BatchNorm2d | None:
        """The batch norm whose output is the branch's output (the one before the sum), or None
        when the branch ends in an activation or a squeeze-excite (regular conv, dsa): there a
        batch norm started at zero would stay zero for good, since ReLU passes no gradient at 0."""
        last = list(self.branch.children())[-1:] if isinstance(self.branch, nn.Sequential) else []
        if last and isinstance(last[0], nn.Sequential) and isinstance(last[0][-1], nn.BatchNorm2d):
            return last[0][-1]
        return None

    def __init__(self, branch: nn.Module, args: BlockArgs, *, shortcut: nn.Module | None = None,
                 post_act: nn.Module | None = None, use_residual: bool) -> None:
        super().__init__()
        self.branch = branch
        self.use_residual = use_residual
        self.shortcut = shortcut if use_residual else None
        self.drop_path = DropPath(args.drop_path) if use_residual else nn.Identity()
        self.post_act = post_act if post_act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch(x)
        if self.use_residual:
            sc = x if self.shortcut is None else self.shortcut(x)
            y = self.drop_path(y) + sc
        return self.post_act(y)


def _with_se(layers: list[nn.Module], channels: int, args: BlockArgs) -> list[nn.Module]:
    if args.se_ratio > 0:
        layers.append(SqueezeExcite(channels, args.se_channels, args.act()))
    return layers


@BLOCKS.register("mbconv")
def mbconv(args: BlockArgs) -> nn.Module:
    """Inverted bottleneck (MobileNetV2/MnasNet/EfficientNet MBConv), linear projection."""
    mid = mid_channels(args)
    layers: list[nn.Module] = []
    if args.expand_ratio != 1:
        layers.append(conv_bn(args.in_channels, mid, 1, 1, args))
    layers.append(conv_bn(mid, mid, args.kernel, args.stride, args, groups=mid))
    _with_se(layers, mid, args)
    layers.append(conv_bn(mid, args.out_channels, 1, 1, args, act=False))
    return _Residual(nn.Sequential(*layers), args, use_residual=args.has_residual)


@BLOCKS.register("dsconv")
def dsconv(args: BlockArgs) -> nn.Module:
    """Depthwise-separable conv with a linear pointwise (MnasNet's SepConv, timm 'ds')."""
    layers = [conv_bn(args.in_channels, args.in_channels, args.kernel, args.stride, args,
                      groups=args.in_channels)]
    _with_se(layers, args.in_channels, args)
    layers.append(conv_bn(args.in_channels, args.out_channels, 1, 1, args, act=False))
    return _Residual(nn.Sequential(*layers), args, use_residual=args.has_residual)


@BLOCKS.register("dsa")
def dsa(args: BlockArgs) -> nn.Module:
    """Depthwise-separable conv with an activated pointwise (MobileNetV1, timm 'dsa')."""
    layers = [conv_bn(args.in_channels, args.in_channels, args.kernel, args.stride, args,
                      groups=args.in_channels)]
    _with_se(layers, args.in_channels, args)
    layers.append(conv_bn(args.in_channels, args.out_channels, 1, 1, args))
    return _Residual(nn.Sequential(*layers), args, use_residual=args.has_residual)


@BLOCKS.register("conv")
def regular_conv(args: BlockArgs) -> nn.Module:
    """MnasNet's "regular conv" op: one full k x k convolution."""
    layers = [conv_bn(args.in_channels, args.out_channels, args.kernel, args.stride, args)]
    _with_se(layers, args.out_channels, args)
    return _Residual(nn.Sequential(*layers), args, use_residual=args.has_residual)


@BLOCKS.register("bottleneck")
def bottleneck(args: BlockArgs) -> nn.Module:
    """ResNet v1.5 bottleneck: 1x1, k x k (strided), 1x1; projection shortcut when shapes change;
    activation after the sum."""
    mid = mid_channels(args)
    layers = [conv_bn(args.in_channels, mid, 1, 1, args),
              conv_bn(mid, mid, args.kernel, args.stride, args)]
    _with_se(layers, mid, args)
    layers.append(conv_bn(mid, args.out_channels, 1, 1, args, act=False))
    use_residual = args.skip == "identity"
    shortcut = None
    if use_residual and (args.stride != 1 or args.in_channels != args.out_channels):
        shortcut = conv_bn(args.in_channels, args.out_channels, 1, args.stride, args, act=False)
    return _Residual(nn.Sequential(*layers), args, shortcut=shortcut, post_act=args.act(),
                     use_residual=use_residual)


class Network(nn.Module):
    """stem -> stages -> [head conv] -> global pool -> dropout -> classifier."""

    def __init__(self, spec: ArchSpec, *, zero_init_last: bool = False,
                 zero_init_head: bool = False) -> None:
        super().__init__()
        first = BlockArgs("conv", spec.in_channels, spec.stem.channels, spec.stem.kernel, spec.stem.stride,
                          1.0, 0.0, "none", spec.activation, spec.bn_eps, spec.bn_momentum, 0.0)
        stem: list[nn.Module] = list(conv_bn(spec.in_channels, spec.stem.channels, spec.stem.kernel,
                                             spec.stem.stride, first))
        if spec.stem.maxpool:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        all_args = block_args(spec)
        stages: list[nn.Module] = []
        i = 0
        for stage in spec.stages:
            blocks = [BLOCKS.get(stage.block)(a) for a in all_args[i:i + stage.repeats]]
            stages.append(nn.Sequential(*blocks))
            i += stage.repeats
        self.stages = nn.Sequential(*stages)
        if spec.head_channels is not None:
            self.head = conv_bn(spec.stages[-1].out_channels, spec.head_channels, 1, 1, first)
        else:
            self.head = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(spec.feature_channels, spec.num_classes)
        self.num_features = spec.feature_channels
        _init_weights(self, zero_init_last=zero_init_last, zero_init_head=zero_init_head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv feature map (N, C, H, W): what class activation maps are made from."""
        return self.head(self.stages(self.stem(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(torch.flatten(self.pool(features), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(model: nn.Module, *, zero_init_last: bool = False,
                  zero_init_head: bool = False) -> None:
    # torchvision's EfficientNet init: kaiming fan_out for convs, uniform 1/sqrt(out) for the FC.
    # zero_init_last (timm's name; Goyal et al. 2017, "Accurate, large minibatch SGD"): the last
    # BN of every residual branch starts at gamma = 0, so each residual block starts as its
    # shortcut and the network as a shallow one. Only a linear branch's last BN: a branch that
    # ends activated (regular conv, dsa) keeps its init, as its zeroed BN would never train. On the proxy task this is what lets deep
    # members train at all in a few hundred steps (benchmarks/BENCHMARKS_recipe.md).
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            r = 1.0 / m.out_features ** 0.5
            nn.init.uniform_(m.weight, -r, r)
            nn.init.zeros_(m.bias)
    if zero_init_last:
        for m in model.modules():
            if isinstance(m, _Residual) and m.use_residual and (bn := m.last_bn()) is not None:
                nn.init.zeros_(bn.weight)
    if zero_init_head:
        # zero_init_head (timm's ViT/ConvNeXt heads start at zero or scaled down): the uniform
        # 1/sqrt(classes) init above gives 1,280 features logits of std ~4, a first loss of
        # ~7 (chance is ln 10 = 2.3) and gradient norms of ~100, so a short proxy spends its
        # first steps shrinking the logits. A zero classifier starts every network at chance.
        nn.init.zeros_(model.classifier.weight)


def build(spec: ArchSpec, *, seed: int | None = None, zero_init_last: bool = False,
          zero_init_head: bool = False) -> Network:
    """Build the network a spec describes. ``seed`` makes the initial weights reproducible.

    ``zero_init_last`` starts the last batch norm of every residual branch at zero (timm's
    option of that name), where that batch norm is the branch's output; a branch that ends in an
    activation keeps its init (:func:`zero_init_skips`): the same network, other initial weights. It is part of how a network
    is trained, so it is recorded with the training settings (``ProxyConfig.zero_init_last``),
    not in the spec: an exported spec builds the same module either way."""
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"build() needs an ArchSpec, got {type(spec).__name__}")
    if seed is None:
        return Network(spec, zero_init_last=zero_init_last, zero_init_head=zero_init_head)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Network(spec, zero_init_last=zero_init_last, zero_init_head=zero_init_head)


def zero_init_skips(spec: ArchSpec) -> int:
    """How many residual blocks of ``spec`` ``zero_init_last`` leaves as initialised, because
    their branch ends in an activation (regular conv, dsa). Until 2026-12-06 those were
    zeroed too and, behind a ReLU whose gradient at 0 is 0, never trained: a training of such a
    spec with zero_init_last is not the same training as before (benchmarks key caches on it)."""
    return sum(1 for m in Network(spec).modules()
               if isinstance(m, _Residual) and m.use_residual and m.last_bn() is None)
