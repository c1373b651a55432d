"""The search objective (MnasNet Eq. 2; EfficientNet Sec. 4): ACC(m) x [MACs(m)/T]^w.

Pure arithmetic on a count, so it lives in space/: both stages score with it and the dashboards
draw its iso-reward curves.

w = a if MACs(m) <= T else b. The EfficientNet paper uses the soft constraint a = b = -0.07 with
T = 400M; MnasNet's hard constraint is a = 0, b = -1. w must not be positive: a positive w would
reward larger models.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .registry import Registry

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12}
_TARGET_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([kKmMgGbBtT]?)\s*$")


def parse_macs(text: str | int | float, *, flag: str = "--target-flops") -> int:
    """'400M', '0.4G', '4e8', '400000000' -> 400000000 multiply-adds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _TARGET_RE.match(str(text))
        if not m:
            raise ValueError(f"{flag} must be a number of multiply-adds such as 400M, 0.4G, 4e8 or "
                             f"400000000, but got {text!r}")
        value = float(m.group(1)) * 10 ** int(m.group(2) or 0) * _SUFFIX[m.group(3).lower()]
    if not math.isfinite(value) or round(value) < 1:
        raise ValueError(f"`target_macs > 0` must hold, but got target_macs={text!r}; "
                         f"pass e.g. {flag} 400M")
    return int(round(value))


@dataclass(frozen=True)
class Objective:
    target_macs: int
    a: float = -0.07
    b: float = -0.07

    def __post_init__(self) -> None:
        if self.target_macs <= 0:
            raise ValueError(f"`target_macs > 0` must hold, but got target_macs={self.target_macs}")
        for n in ("a", "b"):
            v = getattr(self, n)
            if not math.isfinite(v) or v > 0:
                raise ValueError(f"`{n} <= 0` must hold (a positive exponent rewards bigger "
                                 f"models), but got {n}={v}; the paper uses -0.07")

    def exponent(self, macs: int) -> float:
        return self.a if macs <= self.target_macs else self.b

    def reward(self, accuracy: float, macs: int) -> float:
        if macs <= 0:
            raise ValueError(f"`macs > 0` must hold, but got macs={macs}")
        return float(accuracy) * (macs / self.target_macs) ** self.exponent(macs)


# The exponents (a, b) of each named constraint.
CONSTRAINTS: Registry[tuple[float, float]] = Registry("constraint")
CONSTRAINTS.add("soft", (-0.07, -0.07))  # EfficientNet Sec. 4
CONSTRAINTS.add("hard", (0.0, -1.0))  # MnasNet Eq. 2 with a hard latency/MACs bound


def make_objective(target_macs: int, *, constraint: str = "soft", a: float | None = None,
                   b: float | None = None) -> Objective:
    da, db = CONSTRAINTS.get(constraint)
    return Objective(target_macs, da if a is None else a, db if b is None else b)
