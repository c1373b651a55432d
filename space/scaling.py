"""Compound scaling (EfficientNet paper, Sec. 3.3, Eq. 3): arithmetic on specs.

depth d = alpha^phi, width w = beta^phi, resolution r = gamma^phi, with
alpha * beta^2 * gamma^2 ~= 2 so that each unit of phi roughly doubles the multiply-adds.
One rounding rule for channels (the official ``round_filters``: divisor 8, never more than 10%
down) and one for repeats (``ceil``), each stated once here.
"""
from __future__ import annotations

import math
import sys

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


# ln of the largest float: a factor whose log exceeds it is inf, and int(inf) raises.
_LOG_FLOAT_MAX = math.log(sys.float_info.max)
NOMINAL_MACS_FACTOR = 2.0  # Eq. 3's target: each unit of phi doubles the multiply-adds


def max_phi(alpha: float, beta: float, gamma: float, *, spec: ArchSpec | None = None,
            macs: float | None = None) -> int:
    """The largest whole phi whose scaled numbers are finite floats (any larger one overflows).

    They are depth alpha^phi times the most repeats of a stage, width beta^phi times the widest
    layer, resolution gamma^phi times the input size, and the multiply-add growth (both
    ``(alpha beta^2 gamma^2)^phi`` and the nominal ``2^phi``) times ``macs``. Without ``spec``
    (``macs``) those sizes are taken as 1, so only the factors themselves must be finite.
    Coefficients must be >= 1 (see :func:`check_coefficients`).
    """
    repeats = channels = resolution = 1.0
    if spec is not None:
        repeats = max(s.repeats for s in spec.stages)
        channels = max([spec.stem.channels, spec.head_channels or 1,
                        *(s.out_channels * max(1.0, s.expand_ratio) for s in spec.stages)])
        resolution = spec.resolution
    bounds = ((alpha, repeats), (beta, channels), (gamma, resolution),
              (flops_factor(alpha, beta, gamma), macs or 1.0), (NOMINAL_MACS_FACTOR, macs or 1.0))
    bounds = tuple((factor, size) for factor, size in bounds if factor > 1)
    phi = math.floor(min((_LOG_FLOAT_MAX - math.log(size)) / math.log(factor)
                         for factor, size in bounds))
    while phi > 0 and not all(_finite(factor, phi, size) for factor, size in bounds):
        phi -= 1  # the logs round: ln(float max) / ln 2 is 1024.0, but 2.0 ** 1024 overflows
    return phi


def _finite(factor: float, phi: float, size: float) -> bool:
    try:
        return math.isfinite(factor ** phi * size)
    except OverflowError:
        return False


def check_coefficients(alpha: float, beta: float, gamma: float, phi: float, *,
                       spec: ArchSpec | None = None, macs: float | None = None) -> None:
    """Eq. 3's rules: alpha, beta, gamma >= 1 and 0 <= phi <= :func:`max_phi` (for ``spec``
    and ``macs`` when given), so that every scaled number is finite."""
    for n, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 1 \
                or not math.isfinite(v):
            raise ValueError(f"`{n} >= 1` must hold (EfficientNet Eq. 3), but got {n}={v!r}")
    if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not phi >= 0:
        raise ValueError(f"`phi >= 0` must hold, but got phi={phi!r}; pass e.g. --phi 1")
    limit = max_phi(alpha, beta, gamma, spec=spec, macs=macs)
    if not phi <= limit:
        of = f" of {spec.name}" if spec is not None else ""
        raise ValueError(
            f"`phi <= {limit}` must hold for alpha={alpha:g}, beta={beta:g}, gamma={gamma:g}: "
            f"a larger phi overflows the scaled depth, width, resolution or MACs{of}, but got "
            f"phi={phi:g}; pass a phi in 0..{limit}, e.g. --phi 1 (the paper's B0..B7 are "
            f"phi 0..7)")


def compound(spec: ArchSpec, alpha: float, beta: float, gamma: float, phi: float,
             *, name: str | None = None) -> ArchSpec:
    """Compound-scale a base: depth alpha^phi, width beta^phi, resolution gamma^phi."""
    check_coefficients(alpha, beta, gamma, phi, spec=spec)
    out = scale(spec, depth=alpha ** phi, width=beta ** phi, resolution=gamma ** phi,
                name=name or f"{spec.name}-phi{phi:g}")
    meta = dict(out.meta)
    meta["compound"] = {"alpha": alpha, "beta": beta, "gamma": gamma, "phi": phi}
    return out.replace(meta=meta)


def flops_factor(alpha: float, beta: float, gamma: float) -> float:
    """alpha * beta^2 * gamma^2: the multiply-add growth per unit of phi before rounding."""
    return alpha * beta ** 2 * gamma ** 2
