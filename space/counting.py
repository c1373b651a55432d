"""Counting parameters and multiply-adds (MACs) of a spec.

The EfficientNet and MnasNet papers' "FLOPS" are multiply-adds. fvcore's ``FlopCountAnalysis``
counts one fused multiply-add as one flop, so fvcore's total is the number to hold against the
papers' FLOPS (B0 at 224: fvcore 0.40 G vs the paper's 0.39B). In code and columns we call them
``macs``.

Two counters:

* :func:`count_fvcore` builds the network and traces it with fvcore in eval mode at a given
  resolution, and reports every operator fvcore did not count (it never falls back silently).
* :func:`count_analytic` computes the same totals from the spec alone, following fvcore's
  op handles (conv: ``out * in/groups * k*k * Hout*Wout``, bias ignored; eval batch-norm:
  ``2 * numel``; adaptive average pooling: input numel; linear: ``in * out``; activations, sigmoid,
  mul, add, max-pool and dropout: 0). It gives exactly fvcore's total for every spec the builder
  accepts and is what the searches use in their hot paths.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from .builder import BlockArgs, block_args, build, mid_channels
from .errors import UnknownNameError
from .registry import Registry
from .spec import ArchSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Counts:
    params: int
    macs: int
    resolution: int
    uncounted_ops: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6


def _resolution(spec: ArchSpec, resolution: int | None) -> int:
    r = spec.resolution if resolution is None else resolution
    if isinstance(r, bool) or not isinstance(r, int) or r < 8:
        raise ValueError(f"`resolution >= 8` must hold, but got resolution={r!r}; "
                         f"pass e.g. --resolution 224")
    return r


def count_params(spec: ArchSpec) -> int:
    return count_analytic(spec).params


def count_fvcore(spec: ArchSpec, resolution: int | None = None) -> Counts:
    """Params of the built module and fvcore's MACs in eval mode at ``resolution``."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    r = _resolution(spec, resolution)
    model = build(spec, seed=0).eval()
    x = torch.zeros(1, spec.in_channels, r, r)
    with torch.no_grad():
        fca = FlopCountAnalysis(model, x)
        fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        macs = int(fca.total())
        uncounted = dict(fca.unsupported_ops())
    params = sum(p.numel() for p in model.parameters())
    return Counts(params=params, macs=macs, resolution=r, uncounted_ops=uncounted)


# ----------------------------------------------------------------------------- analytic
class _Tally(NamedTuple):
    params: int
    macs: int
    hw: tuple[int, int]


def _out(size: int, k: int, s: int) -> int:
    return (size + 2 * (k // 2) - k) // s + 1


class _Counter:
    """Accumulates params/MACs of a path through the network, op by op, as fvcore sees it."""

    def __init__(self, hw: tuple[int, int]) -> None:
        self.params = 0
        self.macs = 0
        self.hw = hw

    def conv(self, cin: int, cout: int, k: int, s: int = 1, *, groups: int = 1,
             bias: bool = False) -> None:
        h, w = _out(self.hw[0], k, s), _out(self.hw[1], k, s)
        weight = cout * (cin // groups) * k * k
        self.params += weight + (cout if bias else 0)
        self.macs += weight * h * w
        self.hw = (h, w)

    def bn(self, c: int) -> None:
        self.params += 2 * c
        self.macs += 2 * c * self.hw[0] * self.hw[1]

    def conv_bn(self, cin: int, cout: int, k: int, s: int = 1, *, groups: int = 1) -> None:
        self.conv(cin, cout, k, s, groups=groups)
        self.bn(cout)

    def se(self, c: int, squeeze: int) -> None:
        self.macs += c * self.hw[0] * self.hw[1]  # adaptive_avg_pool2d
        self.params += c * squeeze + squeeze + squeeze * c + c
        self.macs += c * squeeze + squeeze * c  # two 1x1 convs on a 1x1 map

    def maxpool(self, k: int = 3, s: int = 2) -> None:
        self.hw = (_out(self.hw[0], k, s), _out(self.hw[1], k, s))

    def tally(self) -> _Tally:
        return _Tally(self.params, self.macs, self.hw)


BLOCK_COUNTERS: Registry[Callable[[BlockArgs, tuple[int, int]], _Tally]] = Registry(
    "block counter")


@BLOCK_COUNTERS.register("mbconv")
def _mbconv(a: BlockArgs, hw: tuple[int, int]) -> _Tally:
    c = _Counter(hw)
    mid = mid_channels(a)
    if a.expand_ratio != 1:
        c.conv_bn(a.in_channels, mid, 1)
    c.conv_bn(mid, mid, a.kernel, a.stride, groups=mid)
    if a.se_ratio > 0:
        c.se(mid, a.se_channels)
    c.conv_bn(mid, a.out_channels, 1)
    return c.tally()


def _ds(a: BlockArgs, hw: tuple[int, int]) -> _Tally:
    c = _Counter(hw)
    c.conv_bn(a.in_channels, a.in_channels, a.kernel, a.stride, groups=a.in_channels)
    if a.se_ratio > 0:
        c.se(a.in_channels, a.se_channels)
    c.conv_bn(a.in_channels, a.out_channels, 1)
    return c.tally()


BLOCK_COUNTERS.add("dsconv", _ds)
BLOCK_COUNTERS.add("dsa", _ds)


@BLOCK_COUNTERS.register("conv")
def _conv(a: BlockArgs, hw: tuple[int, int]) -> _Tally:
    c = _Counter(hw)
    c.conv_bn(a.in_channels, a.out_channels, a.kernel, a.stride)
    if a.se_ratio > 0:
        c.se(a.out_channels, a.se_channels)
    return c.tally()


@BLOCK_COUNTERS.register("bottleneck")
def _bottleneck(a: BlockArgs, hw: tuple[int, int]) -> _Tally:
    c = _Counter(hw)
    mid = mid_channels(a)
    c.conv_bn(a.in_channels, mid, 1)
    c.conv_bn(mid, mid, a.kernel, a.stride)
    if a.se_ratio > 0:
        c.se(mid, a.se_channels)
    c.conv_bn(mid, a.out_channels, 1)
    if a.skip == "identity" and (a.stride != 1 or a.in_channels != a.out_channels):
        sc = _Counter(hw)
        sc.conv_bn(a.in_channels, a.out_channels, 1, a.stride)
        c.params += sc.params
        c.macs += sc.macs
    return c.tally()


def count_blocks(spec: ArchSpec, resolution: int | None = None) -> list[tuple[BlockArgs, _Tally]]:
    """Per-block (args, params/MACs/output size) from the spec alone."""
    r = _resolution(spec, resolution)
    c = _Counter((r, r))
    c.conv_bn(spec.in_channels, spec.stem.channels, spec.stem.kernel, spec.stem.stride)
    if spec.stem.maxpool:
        c.maxpool()
    out = [(None, c.tally())]
    hw = c.hw
    for a in block_args(spec):
        t = BLOCK_COUNTERS.get(a.block)(a, hw)
        out.append((a, t))
        hw = t.hw
    return out  # type: ignore[return-value]


def count_analytic(spec: ArchSpec, resolution: int | None = None) -> Counts:
    """Exactly fvcore's params and MACs, computed from the spec alone (no torch)."""
    r = _resolution(spec, resolution)
    parts = count_blocks(spec, r)
    params = sum(t.params for _, t in parts)
    macs = sum(t.macs for _, t in parts)
    c = _Counter(parts[-1][1].hw)
    if spec.head_channels is not None:
        c.conv_bn(spec.stages[-1].out_channels, spec.head_channels, 1)
    feat = spec.feature_channels
    c.macs += feat * c.hw[0] * c.hw[1]  # global adaptive_avg_pool2d
    c.params += feat * spec.num_classes + spec.num_classes
    c.macs += feat * spec.num_classes
    return Counts(params=params + c.params, macs=macs + c.macs, resolution=r)


# float32; while a network is built and traced once at batch 1 (count_fvcore), about three
# feature maps of a block are alive at once (its input, its widest map, its output)
FLOAT_BYTES = 4
LIVE_MAPS = 3


def build_bytes(spec: ArchSpec, resolution: int | None = None) -> int:
    """Roughly the memory, in bytes, that building ``spec`` and tracing it once at batch 1
    takes (what :func:`count_fvcore` does), from the spec alone and without walking every
    block (a scaled spec may have astronomically many): its float32 weights, plus
    :data:`LIVE_MAPS` times its widest feature map (the stem's output, or a block's widest
    inner map at that block's input size). A lower bound, to refuse a network that cannot fit
    before building it."""
    import dataclasses

    r = _resolution(spec, resolution)
    # the blocks after a stage's first are identical: count two, multiply the second
    kept = [min(st.repeats, 2) for st in spec.stages]
    short = spec.replace(stages=tuple(dataclasses.replace(st, repeats=k)
                                      for st, k in zip(spec.stages, kept)))
    parts = count_blocks(short, r)
    params = count_analytic(short, r).params
    hw = parts[0][1].hw
    widest = spec.stem.channels * hw[0] * hw[1]
    i = 1
    for st, k in zip(spec.stages, kept):
        for j in range(k):
            a, t = parts[i]
            widest = max(widest, max(mid_channels(a), a.out_channels) * hw[0] * hw[1])
            if j == 1:
                params += (st.repeats - 2) * t.params
            hw = t.hw
            i += 1
    return FLOAT_BYTES * (params + LIVE_MAPS * widest)


def stage_table(spec: ArchSpec, resolution: int | None = None) -> list[dict[str, object]]:
    """One row per stage: its settings, output size, params and MACs (analytic)."""
    r = _resolution(spec, resolution)
    parts = count_blocks(spec, r)
    rows: list[dict[str, object]] = []
    stem = parts[0][1]
    rows.append({"stage": "stem", "block": "conv", "repeats": 1, "kernel": spec.stem.kernel,
                 "stride": spec.stem.stride, "expand": "", "se": "", "skip": "",
                 "out_channels": spec.stem.channels, "out_size": stem.hw[0],
                 "params": stem.params, "macs": stem.macs})
    i = 1
    for si, s in enumerate(spec.stages):
        chunk = parts[i:i + s.repeats]
        i += s.repeats
        rows.append({"stage": str(si), "block": s.block, "repeats": s.repeats,
                     "kernel": s.kernel, "stride": s.stride, "expand": s.expand_ratio,
                     "se": s.se_ratio, "skip": s.skip, "out_channels": s.out_channels,
                     "out_size": chunk[-1][1].hw[0],
                     "params": sum(t.params for _, t in chunk),
                     "macs": sum(t.macs for _, t in chunk)})
    total = count_analytic(spec, r)
    used_p = sum(int(row["params"]) for row in rows)
    used_m = sum(int(row["macs"]) for row in rows)
    rows.append({"stage": "head", "block": "conv1x1+pool+fc" if spec.head_channels else "pool+fc",
                 "repeats": 1, "kernel": 1, "stride": 1, "expand": "", "se": "", "skip": "",
                 "out_channels": spec.num_classes, "out_size": 1,
                 "params": total.params - used_p, "macs": total.macs - used_m})
    return rows


def count(spec: ArchSpec, resolution: int | None = None, *, method: str = "analytic") -> Counts:
    """Params and MACs; ``method`` is 'analytic' (fast, exact) or 'fvcore' (traced)."""
    methods = {"analytic": count_analytic, "fvcore": count_fvcore}
    if method not in methods:
        raise UnknownNameError(f"unknown counting method {method!r}; known: {', '.join(methods)}")
    return methods[method](spec, resolution)
