"""The scaled family (EfficientNet Sec. 3.3 step 2 and Table 1's B0..B7): frozen specs per phi.

"STEP 2: we then fix alpha, beta, gamma as constants and scale up baseline network with
different phi using Equation 3, to obtain EfficientNet-B1 to B7." Each member is
:func:`space.compound` of the base: channels rounded by ``round_filters`` (divisor 8, never more
than 10% down), repeats by ``ceil``, resolution ``round(base resolution * gamma^phi)``. Each
spec's ``meta`` carries its params and MACs (analytic counter, which equals fvcore exactly, see
:mod:`space.counting`), its coefficients and phi.

``family.csv`` reports each member's measured MACs ratio to the base against the nominal 2^phi
(``ratio_vs_nominal`` = ratio / 2^phi), and puts the family next to the paper's B0..B7
(REFERENCE.md) when the base is EfficientNet-B0; for any other base the ``paper_*`` columns stay
empty. With ``gridsearch --latency`` it also holds each member's measured latency on this machine
(``latency_ms``, the median of the timed passes, and ``latency_iqr_ms``, their interquartile
range; :mod:`gridsearch.latency`); without it those two columns stay empty.

Depth rounding (:data:`ROUNDINGS`, ``--rounding``): ``paper`` is the official ``ceil`` of
:func:`space.scaling.round_repeats`, so B0..B7 stay exactly the paper's; but ``ceil(1.2 * 1)``
doubles every one-block stage, and EfficientNet-B0 with the paper's coefficients measures 2.55x
its MACs at phi 1 where Eq. 3 promises 2x. ``nearest`` keeps the member's channels and resolution
and picks, stage by stage, ``floor`` or ``ceil`` of ``depth * repeats`` (at least 1), the
combination whose measured ratio lands nearest 2^phi (ties: the paper's). It is a second rule
for repeats on purpose, kept here beside the family that needs it rather than in
:mod:`space.scaling`, whose one rule the rest of the project relies on.
"""
from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import space  # count_analytic and build_bytes as space.X: on first use (they import torch)
from space.registry import Registry
from space.scaling import NOMINAL_MACS_FACTOR, compound, max_phi
from space.spec import ArchSpec, save_spec
from space.zoo import ZOO, get_model

from .grid import Point

FAMILY_DIR = "family"
FAMILY_TABLE = "family"
FAMILY_COLUMNS = ["phi", "name", "depth", "width", "resolution", "params", "macs", "macs_ratio",
                  "formula_ratio", "nominal_ratio", "ratio_vs_nominal", "rounding", "repeats",
                  "latency_ms", "latency_iqr_ms", "paper_name", "paper_params", "paper_macs",
                  "paper_width", "paper_depth", "paper_resolution"]
PAPER_BASE = "efficientnet-b0"
MAX_NEAREST_STAGES = 16  # nearest rounding tries 2^k floor/ceil combinations over k stages


def _paper_rounding(base: ArchSpec, point: Point, phi: int) -> ArchSpec:
    return compound(base, point.alpha, point.beta, point.gamma, phi)


def _nearest_rounding(base: ArchSpec, point: Point, phi: int) -> ArchSpec:
    """The paper's member with each stage's repeats floor- or ceil-rounded, whichever
    combination measures nearest 2^phi times the base's MACs (ties: the paper's ceil)."""
    paper = _paper_rounding(base, point, phi)
    depth = point.alpha ** phi
    options = []
    for s in base.stages:
        exact = depth * s.repeats
        up = paper.stages[len(options)].repeats  # ceil, as the paper rounds
        down = max(1, math.floor(exact))
        options.append((up,) if down == up else (up, down))
    free = sum(len(o) > 1 for o in options)
    if free > MAX_NEAREST_STAGES:
        raise ValueError(f"--rounding nearest tries 2^{free} depth roundings for {base.name}'s "
                         f"{free} fractional stages (at most 2^{MAX_NEAREST_STAGES}); pass "
                         f"--rounding paper")
    goal = NOMINAL_MACS_FACTOR ** phi * space.count_analytic(base).macs
    best, best_d = paper, None
    for repeats in itertools.product(*options):  # the all-ceil paper combination comes first
        spec = paper.replace(stages=tuple(replace(st, repeats=r)
                                          for st, r in zip(paper.stages, repeats)))
        d = abs(math.log(space.count_analytic(spec).macs / goal))
        if best_d is None or d < best_d - 1e-12:
            best, best_d = spec, d
    return best


# --rounding: how a member's repeats are rounded; name -> (base, point, phi) -> scaled spec.
ROUNDINGS: Registry[Callable[[ArchSpec, Point, int], ArchSpec]] = Registry("rounding")
ROUNDINGS.add("paper", _paper_rounding)
ROUNDINGS.add("nearest", _nearest_rounding)


class PaperRow(NamedTuple):
    """One row of the paper's B0..B7 table (REFERENCE.md: params and FLOPS from the paper,
    width/depth/resolution from the official TF builder, which hand-sets them)."""

    name: str
    params: float
    macs: float
    width: float
    depth: float
    resolution: int


PAPER_FAMILY: dict[int, PaperRow] = {
    0: PaperRow("B0", 5.3e6, 0.39e9, 1.0, 1.0, 224),
    1: PaperRow("B1", 7.8e6, 0.70e9, 1.0, 1.1, 240),
    2: PaperRow("B2", 9.2e6, 1.0e9, 1.1, 1.2, 260),
    3: PaperRow("B3", 12e6, 1.8e9, 1.2, 1.4, 300),
    4: PaperRow("B4", 19e6, 4.2e9, 1.4, 1.8, 380),
    5: PaperRow("B5", 30e6, 9.9e9, 1.6, 2.2, 456),
    6: PaperRow("B6", 43e6, 19e9, 1.8, 2.6, 528),
    7: PaperRow("B7", 66e6, 37e9, 2.0, 3.1, 600),
}


def check_phis(phis: tuple[int, int], *, point: Point | None = None,
               base: ArchSpec | None = None, macs: float | None = None) -> tuple[int, int]:
    """A ``--family LO-HI`` range: integers with ``0 <= LO <= HI``, and with ``point`` given,
    ``HI <= space.scaling.max_phi`` (for ``base`` and its ``macs`` when given), beyond which the
    scaled numbers overflow."""
    if not isinstance(phis, (tuple, list)) or len(phis) != 2 or any(
            isinstance(p, bool) or not isinstance(p, int) for p in phis):
        raise ValueError(f"--family must be two integers LO-HI, but got {phis!r}; "
                         f"pass e.g. --family 0-7")
    lo, hi = phis
    if not 0 <= lo <= hi:
        raise ValueError(f"--family {lo}-{hi}: `0 <= LO <= HI` must hold; pass e.g. --family 0-7")
    if point is not None:
        limit = max_phi(point.alpha, point.beta, point.gamma, spec=base, macs=macs)
        if hi > limit:
            of = f" of {base.name}" if base is not None else ""
            raise ValueError(
                f"--family {lo}-{hi}: `HI <= {limit}` must hold for alpha={point.alpha:g}, "
                f"beta={point.beta:g}, gamma={point.gamma:g} (a larger phi overflows the scaled "
                f"depth, width, resolution or MACs{of}); pass e.g. --family 0-7")
    return int(lo), int(hi)


def available_memory() -> int | None:
    """Bytes of memory a new allocation can have here (Linux's MemAvailable, else the free
    physical pages); None when the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.3g} GiB"


def phi_limit(base: ArchSpec, point: Point, *, memory: int | None) -> tuple[int, str]:
    """The largest whole phi that ``point`` may scale ``base`` to, and why not one more.

    Past :func:`space.scaling.max_phi` the scaled numbers overflow; with ``memory`` (bytes),
    the network must also fit when built (:func:`space.counting.build_bytes`, counted from
    the spec, so nothing too big is ever built): the run builds the phi network to count it
    with fvcore, and every family member when it times them."""
    macs = space.count_analytic(base).macs
    top = max_phi(point.alpha, point.beta, point.gamma, spec=base, macs=macs)
    overflow = (f"a larger phi overflows the scaled depth, width, resolution or MACs of "
                f"{base.name}")

    def need(phi: int) -> int:
        return space.build_bytes(compound(base, point.alpha, point.beta, point.gamma, phi))

    if memory is None or need(top) <= memory:
        return top, overflow
    lo, hi = 0, top  # need(hi) > memory; find the largest phi below hi that fits
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if need(mid) <= memory else (lo, mid)
    limit = lo if need(lo) <= memory else -1
    return limit, (f"building the phi-{limit + 1} network of {base.name} (to count or time "
                   f"it) needs about {_gib(need(limit + 1))}, more than the {_gib(memory)} "
                   f"of memory available here")


def check_scale(base: ArchSpec, point: Point, phi: float, *, family: tuple[int, int],
                times_family: bool, memory: int | None) -> None:
    """``--phi`` and ``--family`` against the one true bound of :func:`phi_limit`, stated
    once: the phi network is always built (its fvcore count); the family's members only when
    they are timed (``times_family``), else they need only finite numbers."""
    limit, why = phi_limit(base, point, memory=memory)
    coef = f"alpha={point.alpha:g}, beta={point.beta:g}, gamma={point.gamma:g}"
    if limit < 0:
        raise ValueError(f"{base.name} scaled by {coef} cannot be built here: {why}; use a "
                         f"machine with more memory or a smaller --base")
    if phi > limit:
        raise ValueError(f"`phi <= {limit}` must hold for {coef}: {why}, but got "
                         f"phi={phi:g}; pass a phi in 0..{limit}, e.g. --phi 1 (the paper's "
                         f"B0..B7 are phi 0..7)")
    lo, hi = family
    family_limit, family_why = (limit, why) if times_family else phi_limit(base, point,
                                                                           memory=None)
    if hi > family_limit:
        raise ValueError(f"--family {lo}-{hi}: `HI <= {family_limit}` must hold for {coef} "
                         f"({family_why}); pass e.g. --family 0-{min(7, family_limit)}")


def is_paper_base(base: ArchSpec) -> bool:
    """Whether ``base`` builds EfficientNet-B0 (whatever it is named)."""
    return base.arch_hash() == get_model(PAPER_BASE).arch_hash()


def member_name(base: ArchSpec, phi: int, member: ArchSpec | None = None) -> str:
    """``<base>-b<phi>``, with a base's own ``-b0`` dropped (``nas-b0`` -> ``nas-b3``). A name
    that a different zoo model already has gets ``-compound`` added, so the compound-scaled B1
    is never mistaken for the official, hand-set ``efficientnet-b1``."""
    stem = base.name[:-3] if base.name.endswith("-b0") else base.name
    name = f"{stem}-b{phi}"
    if name in ZOO and (member is None or get_model(name).arch_hash() != member.arch_hash()):
        name = f"{name}-compound"
    return name


@dataclass(frozen=True)
class Member:
    phi: int
    spec: ArchSpec

    @property
    def params(self) -> int:
        return int(self.spec.meta["params"])

    @property
    def macs(self) -> int:
        return int(self.spec.meta["macs"])


def scale_family(base: ArchSpec, point: Point, *, phis: tuple[int, int],
                 provenance: Mapping[str, Any] | None = None,
                 rounding: str = "paper") -> tuple[Member, ...]:
    """The family for phi = LO..HI: frozen specs carrying params, MACs, coefficients, phi and
    the measured MACs ratio against 2^phi; ``rounding`` names the depth rounding
    (:data:`ROUNDINGS`)."""
    round_member = ROUNDINGS.get(rounding)
    base_counts = space.count_analytic(base)
    lo, hi = check_phis(phis, point=point, base=base, macs=base_counts.macs)
    members = []
    for phi in range(lo, hi + 1):
        scaled = round_member(base, point, phi)
        counts = space.count_analytic(scaled)
        meta = {
            "stage": 2, "phi": phi,
            "compound": {"alpha": point.alpha, "beta": point.beta, "gamma": point.gamma,
                         "phi": phi},
            # rounded so that 1.2^3 reads 1.728, not 1.7279999999999998
            "depth": round(point.alpha ** phi, 10), "width": round(point.beta ** phi, 10),
            "params": counts.params, "macs": counts.macs,
            "macs_counter": "analytic (equals fvcore)",
            "macs_ratio": counts.macs / base_counts.macs,
            "formula_ratio": point.product ** phi,
            "nominal_ratio": NOMINAL_MACS_FACTOR ** phi,
            "rounding": rounding, "repeats": [st.repeats for st in scaled.stages],
            "base": {"name": base.name, "arch_hash": base.arch_hash(),
                     "macs": base_counts.macs, "params": base_counts.params,
                     "resolution": base.resolution},
            **(provenance or {}),
        }
        spec = scaled.replace(name=member_name(base, phi, scaled), meta=meta)
        members.append(Member(phi=phi, spec=spec))
    return tuple(members)


def family_rows(base: ArchSpec, members: Sequence[Member]) -> list[dict[str, Any]]:
    """``family.csv``'s rows: the family, its measured latency where it was timed
    (``meta["latency"]``, :mod:`gridsearch.latency`), and the paper's row beside it for an
    EfficientNet-B0 base (empty otherwise, and beyond B7)."""
    paper = is_paper_base(base)
    rows = []
    for m in members:
        ref = PAPER_FAMILY.get(m.phi) if paper else None
        latency = m.spec.meta.get("latency") or {}
        rows.append({
            "phi": m.phi, "name": m.spec.name,
            "depth": m.spec.meta["depth"], "width": m.spec.meta["width"],
            "resolution": m.spec.resolution, "params": m.params, "macs": m.macs,
            "macs_ratio": m.spec.meta["macs_ratio"],
            "formula_ratio": m.spec.meta["formula_ratio"],
            "nominal_ratio": m.spec.meta["nominal_ratio"],
            "ratio_vs_nominal": m.spec.meta["macs_ratio"] / m.spec.meta["nominal_ratio"],
            "rounding": m.spec.meta["rounding"],
            "repeats": "-".join(str(r) for r in m.spec.meta["repeats"]),
            # gridsearch --latency (gridsearch.latency); empty when not measured
            "latency_ms": latency.get("median_ms", math.nan),
            "latency_iqr_ms": latency.get("iqr_ms", math.nan),
            "paper_name": ref.name if ref else None,
            "paper_params": ref.params if ref else math.nan,
            "paper_macs": ref.macs if ref else math.nan,
            "paper_width": ref.width if ref else math.nan,
            "paper_depth": ref.depth if ref else math.nan,
            "paper_resolution": ref.resolution if ref else None,
        })
    return rows


def family_frame(rows: list[dict[str, Any]]):
    import pandas as pd

    df = pd.DataFrame(rows, columns=FAMILY_COLUMNS)
    for c in ("params", "macs", "paper_resolution"):
        df[c] = df[c].astype("Int64")
    return df


def write_family(run_dir: Path, base: ArchSpec, members: Sequence[Member]) -> list[Path]:
    """``family/b<phi>.json`` per member and ``family.csv``/``family.parquet``."""
    from results.rundir import write_table

    paths = [save_spec(m.spec, run_dir / FAMILY_DIR / f"b{m.phi}.json") for m in members]
    write_table(family_frame(family_rows(base, members)), run_dir, FAMILY_TABLE)
    return paths
