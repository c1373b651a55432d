"""The search objective (MnasNet Eq. 2; EfficientNet Sec. 4): ACC(m) x [COST(m)/T]^w.

Pure arithmetic on a count, so it lives in space/: both stages score with it and the dashboards
draw its iso-reward curves.

The cost is a **metric** from :data:`METRICS`: ``macs`` (multiply-adds at the deployment
resolution, EfficientNet's FLOPS; T from ``--target-flops``) or ``latency`` (milliseconds on the
user's own device, predicted from a latency table as MnasNet measured it on a phone; T from
``--target-latency``). The formula, its soft and hard forms and the w defaults are the same for
both (MnasNet Eq. 2 is written for latency).

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
from typing import Callable

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
        # a float exponent: '1e400' is inf (refused below), not an OverflowError
        value = float(f"{m.group(1)}e{m.group(2) or 0}") * _SUFFIX[m.group(3).lower()]
    if not math.isfinite(value):
        raise ValueError(f"the target must be finite, but got {flag} {text}; pass e.g. "
                         f"{flag} 400M")
    if round(value) < 1:
        raise ValueError(f"`target_macs > 0` must hold, but got target_macs={text!r}; "
                         f"pass e.g. {flag} 400M")
    return int(round(value))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_LATENCY_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*(us|ms|s)?\s*")


def parse_latency(text: str | float, *, flag: str = "--target-latency") -> float:
    """'20ms', '1500us', '0.02s', '20' (ms) -> milliseconds (a positive finite number)."""
    m = _LATENCY_RE.fullmatch(str(text))
    if not m:
        raise ValueError(f"{flag} must be a time such as 20ms, 1500us or 0.02s, but got "
                         f"{text!r}")
    value = float(f"{m.group(1)}e{m.group(2) or 0}") * _UNITS[m.group(3) or "ms"]
    if not math.isfinite(value):
        raise ValueError(f"the target must be finite, but got {flag} {text}; pass e.g. "
                         f"{flag} 20ms")
    if value <= 0:
        raise ValueError(f"`target_latency > 0` must hold, but got {text!r}; pass e.g. "
                         f"{flag} 20ms")
    return value


@dataclass(frozen=True)
class Metric:
    """A cost the objective can target: its trial attribute, unit, flag and parser."""

    name: str  # the key in METRICS, and the trial attribute holding the value ("macs", ...)
    attr: str  # the trial's user attribute / trials.csv column with the candidate's value
    unit: str
    flag: str  # the command-line flag that sets T
    parse: Callable[[str | float], float]
    example: str  # a target to suggest in errors

    def format(self, value: float) -> str:
        if self.unit == "MACs":
            return f"{value / 1e6:.1f}M MACs"
        return f"{value:.3g} {self.unit}"


METRICS: Registry[Metric] = Registry("objective metric")
METRICS.add("macs", Metric("macs", "macs", "MACs", "--target-flops",
                           lambda t: float(parse_macs(t)), "400M"))
METRICS.add("latency", Metric("latency", "latency_ms", "ms", "--target-latency", parse_latency,
                              "20ms"))


@dataclass(frozen=True)
class Objective:
    """ACC x (COST/T)^w with w = a if COST <= T else b; ``metric`` names the cost
    (:data:`METRICS`), ``target`` is T in its unit (MACs, or ms)."""

    target: float
    a: float = -0.07
    b: float = -0.07
    floor: float = 0.0  # fraction of T below which the reward falls as COST/(floor T); 0: none
    metric: str = "macs"

    def __post_init__(self) -> None:
        m = METRICS.get(self.metric)  # an unknown name lists the known ones
        if isinstance(self.target, bool) or not isinstance(self.target, (int, float)) \
                or not math.isfinite(self.target) or self.target <= 0:
            raise ValueError(f"`target > 0` must hold, but got target={self.target!r} "
                             f"({m.unit}); pass e.g. {m.flag} {m.example}")
        for n in ("a", "b"):
            v = getattr(self, n)
            if not math.isfinite(v) or v > 0:
                raise ValueError(f"`{n} <= 0` must hold (a positive exponent rewards bigger "
                                 f"models), but got {n}={v}; the paper uses -0.07")
        if not (math.isfinite(self.floor) and 0 <= self.floor < 1):
            raise ValueError(f"`0 <= floor < 1` must hold (a fraction of the target), but got "
                             f"floor={self.floor}; the hard constraint uses 0.7")

    @property
    def target_macs(self) -> int | None:
        """T in MACs for a MACs objective, else None."""
        return int(self.target) if self.metric == "macs" else None

    def exponent(self, cost: float) -> float:
        return self.a if cost <= self.target else self.b

    def reward(self, accuracy: float, cost: float) -> float:
        """The reward of ``accuracy`` at ``cost`` (MACs, or ms, as :attr:`metric` says)."""
        if not cost > 0:
            raise ValueError(f"`{self.metric} > 0` must hold, but got {self.metric}={cost}")
        r = float(accuracy) * (cost / self.target) ** self.exponent(cost)
        low = self.floor * self.target
        return r * cost / low if cost < low else r

    def to_dict(self) -> dict[str, float | str]:
        """What summary.json records; a MACs objective also keeps its ``target_macs``."""
        d = {"metric": self.metric, "target": self.target, "a": self.a, "b": self.b,
             "floor": self.floor}
        return d | ({"target_macs": self.target_macs} if self.metric == "macs" else {})


# The exponents (a, b) and the floor (a fraction of T) of each named constraint.
CONSTRAINTS: Registry[tuple[float, float, float]] = Registry("constraint")
CONSTRAINTS.add("soft", (-0.07, -0.07, 0.0))  # EfficientNet Sec. 4
CONSTRAINTS.add("hard", (0.0, -1.0, 0.7))  # MnasNet Eq. 2's hard bound, plus a floor at 0.7 T


def make_objective(target: float, *, constraint: str = "soft", a: float | None = None,
                   b: float | None = None, metric: str = "macs") -> Objective:
    da, db, floor = CONSTRAINTS.get(constraint)
    return Objective(target, da if a is None else a, db if b is None else b, floor, metric)
