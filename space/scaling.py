"""Compound scaling (EfficientNet paper, Sec. 3.3, Eq. 3): arithmetic on specs.

depth d = alpha^phi, width w = beta^phi, resolution r = gamma^phi, with
alpha * beta^2 * gamma^2 ~= 2 so that each unit of phi roughly doubles the multiply-adds.
One rounding rule for channels (the official ``round_filters``: divisor 8, never more than 10%
down) and one for repeats (``ceil``), each stated once here.
"""
from __future__ import annotations

import math

from .spec import ArchSpec, StageSpec, StemSpec

DIVISOR = 8


def round_filters(channels: int, width: float, *, divisor: int = DIVISOR) -> int:
    """Official EfficientNet ``round_filters``; width 1.0 leaves channels untouched."""
    if width == 1.0:
        return channels
    f = channels * width
    new = max(divisor, int(f + divisor / 2) // divisor * divisor)
    if new < 0.9 * f:  # never round down by more than 10%
        new += divisor
    return int(new)


def round_repeats(repeats: int, depth: float) -> int:
    """Official EfficientNet ``round_repeats``: ceil(depth * repeats)."""
    if depth == 1.0:
        return repeats
    return int(math.ceil(depth * repeats))


def round_resolution(resolution: int, factor: float) -> int:
    return int(round(resolution * factor))


def _check_positive(**values: float) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0 or v != v:
            raise ValueError(f"`{name} > 0` must hold, but got {name}={v!r}")


def scale(spec: ArchSpec, *, depth: float = 1.0, width: float = 1.0, resolution: float = 1.0,
          name: str | None = None) -> ArchSpec:
    """Scale a spec's depth (repeats), width (channels) and input resolution by factors."""
    _check_positive(depth=depth, width=width, resolution=resolution)
    stages = tuple(
        StageSpec(block=s.block, repeats=round_repeats(s.repeats, depth), kernel=s.kernel,
                  stride=s.stride, out_channels=round_filters(s.out_channels, width),
                  expand_ratio=s.expand_ratio, se_ratio=s.se_ratio, skip=s.skip)
        for s in spec.stages
    )
    stem = StemSpec(channels=round_filters(spec.stem.channels, width), kernel=spec.stem.kernel,
                    stride=spec.stem.stride, maxpool=spec.stem.maxpool)
    head = None if spec.head_channels is None else round_filters(spec.head_channels, width)
    meta = dict(spec.meta)
    meta["scaled_from"] = spec.name
    meta["scale"] = {"depth": depth, "width": width, "resolution": resolution}
    return spec.replace(
        name=name or f"{spec.name}-d{depth:g}-w{width:g}-r{resolution:g}",
        stem=stem, stages=stages, head_channels=head,
        resolution=round_resolution(spec.resolution, resolution), meta=meta,
    )


def check_coefficients(alpha: float, beta: float, gamma: float, phi: float) -> None:
    for n, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 1:
            raise ValueError(f"`{n} >= 1` must hold (EfficientNet Eq. 3), but got {n}={v!r}")
    if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not phi >= 0:
        raise ValueError(f"`phi >= 0` must hold, but got phi={phi!r}; pass e.g. --phi 1")


def compound(spec: ArchSpec, alpha: float, beta: float, gamma: float, phi: float,
             *, name: str | None = None) -> ArchSpec:
    """Compound-scale a base: depth alpha^phi, width beta^phi, resolution gamma^phi."""
    check_coefficients(alpha, beta, gamma, phi)
    out = scale(spec, depth=alpha ** phi, width=beta ** phi, resolution=gamma ** phi,
                name=name or f"{spec.name}-phi{phi:g}")
    meta = dict(out.meta)
    meta["compound"] = {"alpha": alpha, "beta": beta, "gamma": gamma, "phi": phi}
    return out.replace(meta=meta)


def flops_factor(alpha: float, beta: float, gamma: float) -> float:
    """alpha * beta^2 * gamma^2: the multiply-add growth per unit of phi before rounding."""
    return alpha * beta ** 2 * gamma ** 2
