"""The search objective (MnasNet Eq. 2; EfficientNet Sec. 4): ACC(m) x [MACs(m)/T]^w.

Pure arithmetic on a count, so it lives in space/: both stages score with it and the dashboards
draw its iso-reward curves.

w = a if MACs(m) <= T else b. The EfficientNet paper uses the soft constraint a = b = -0.07 with
T = 400M; MnasNet's hard constraint is a = 0, b = -1. w must not be positive: a positive w would
reward larger models.

The hard constraint here also has a **floor**: below ``floor`` x T (0.7 T) the reward is
multiplied by MACs / (floor x T). With a = 0 alone, a network far below T scores its accuracy
unpenalised, and on a short proxy small networks train as well as big ones, so the search landed
at a fifth to a third of T; the floor makes "use the budget" part of the hard constraint, so the
found network lands in [0.7 T, T] (MnasNet's hard constraint is a target, not only a cap).
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
    floor: float = 0.0  # fraction of T below which the reward falls as MACs/(floor T); 0: none

    def __post_init__(self) -> None:
        if self.target_macs <= 0:
            raise ValueError(f"`target_macs > 0` must hold, but got target_macs={self.target_macs}")
        for n in ("a", "b"):
            v = getattr(self, n)
            if not math.isfinite(v) or v > 0:
                raise ValueError(f"`{n} <= 0` must hold (a positive exponent rewards bigger "
                                 f"models), but got {n}={v}; the paper uses -0.07")
        if not (math.isfinite(self.floor) and 0 <= self.floor < 1):
            raise ValueError(f"`0 <= floor < 1` must hold (a fraction of the target), but got "
                             f"floor={self.floor}; the hard constraint uses 0.7")

    def exponent(self, macs: int) -> float:
        return self.a if macs <= self.target_macs else self.b

    def reward(self, accuracy: float, macs: int) -> float:
        if macs <= 0:
            raise ValueError(f"`macs > 0` must hold, but got macs={macs}")
        r = float(accuracy) * (macs / self.target_macs) ** self.exponent(macs)
        low = self.floor * self.target_macs
        return r * macs / low if macs < low else r


# The exponents (a, b) and the floor (a fraction of T) of each named constraint.
CONSTRAINTS: Registry[tuple[float, float, float]] = Registry("constraint")
CONSTRAINTS.add("soft", (-0.07, -0.07, 0.0))  # EfficientNet Sec. 4
CONSTRAINTS.add("hard", (0.0, -1.0, 0.7))  # MnasNet Eq. 2's hard bound, plus a floor at 0.7 T


def make_objective(target_macs: int, *, constraint: str = "soft", a: float | None = None,
                   b: float | None = None) -> Objective:
    da, db, floor = CONSTRAINTS.get(constraint)
    return Objective(target_macs, da if a is None else a, db if b is None else b, floor)
